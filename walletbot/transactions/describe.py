"""Chinese wording of a transaction's status, for the user who owns it.

Pure functions of a :class:`~walletbot.store.rows.Transaction` and "now", so
tests can pin the clock.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Optional

from walletbot.store.rows import Transaction

CHINA = timezone(timedelta(hours=8))

# Per the sources: a withdrawal usually arrives within 1-3 working days.
WITHDRAW_WORKING_DAYS = 3

TYPE_NAMES = {"topup": "充值", "withdraw": "提现", "transfer": "转账", "refund": "退款"}
METHOD_NAMES = {
    "alipay": "支付宝",
    "wechat_pay": "微信支付",
    "bank_transfer": "银行转账",
    "bank_card": "银行卡",
    "balance": "钱包余额",
    "merchant": "商户",
}
STATUS_NAMES = {
    "pending": "待确认",
    "processing": "处理中",
    "success": "已完成",
    "failed": "失败",
    "refunded": "已退回",
}
SUCCESS_NAMES = {"topup": "已到账", "withdraw": "已到账", "transfer": "已转账成功", "refund": "已退款到账"}


def add_working_days(start: date, days: int) -> date:
    """The date ``days`` working days (Mon-Fri) after ``start``.

    Public holidays are not known to the bot, so around holidays the real
    deadline can be later; the wording says "working days" for that reason.
    """
    current = start
    added = 0
    while added < days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            added += 1
    return current


def withdraw_deadline(tx: Transaction) -> date:
    """Last working day a withdrawal should normally arrive (China time)."""
    return add_working_days(tx.created_at.astimezone(CHINA).date(), WITHDRAW_WORKING_DAYS)


def is_overdue(tx: Transaction, now: datetime) -> bool:
    """An unfinished withdrawal past its 3-working-day window."""
    if tx.tx_type != "withdraw" or tx.status not in ("pending", "processing"):
        return False
    return now.astimezone(CHINA).date() > withdraw_deadline(tx)


def money(tx: Transaction) -> str:
    """``1000.00元``."""
    return f"{tx.amount:.2f}元"


def _day(moment: datetime) -> str:
    local = moment.astimezone(CHINA)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def short_line(tx: Transaction) -> str:
    """One line for a list: ``TU202611200001 充值 500.00元 已到账（11月20日）``."""
    status = SUCCESS_NAMES.get(tx.tx_type) if tx.status == "success" else STATUS_NAMES[tx.status]
    local = tx.created_at.astimezone(CHINA)
    return f"{tx.order_id} {TYPE_NAMES[tx.tx_type]} {money(tx)} {status}（{local.month}月{local.day}日）"


def describe(tx: Transaction, now: datetime) -> str:
    """A full answer about one transaction: what happened, when, and what next."""
    kind = TYPE_NAMES[tx.tx_type]
    via = METHOD_NAMES.get(tx.method, tx.method)
    lines = [f"订单 {tx.order_id}（{kind} {money(tx)}，{_day(tx.created_at)}提交）："]
    status_line = _status_line(tx, now, via)
    lines.append(status_line)
    if tx.note and tx.note not in status_line:
        lines.append(f"说明：{tx.note}。")
    return "\n".join(lines)


def _status_line(tx: Transaction, now: datetime, via: str) -> str:
    to = f"（提现到{tx.destination}）" if tx.destination and tx.tx_type == "withdraw" else ""
    if tx.status == "success":
        if tx.tx_type == "transfer":
            return f"已于{_day(tx.updated_at)}成功转给{tx.destination or '对方'}。如对方表示未收到，请让对方查看钱包的交易记录。"
        if tx.tx_type == "refund":
            return f"已于{_day(tx.updated_at)}退款到账。"
        return f"已于{_day(tx.updated_at)}{'通过' + via if tx.tx_type == 'topup' else ''}成功到账{to}。"
    if tx.status == "failed":
        reason = f"失败原因：{tx.failure_reason}。" if tx.failure_reason else ""
        advice = {
            "withdraw": "请核对绑定的银行卡信息（户名、卡号）后重新提交提现。",
            "topup": "请确认支付渠道扣款情况后重新充值；如已扣款未到账，请联系人工客服。",
            "transfer": "请核对收款方信息后重新转账。",
            "refund": "请联系商户或人工客服处理。",
        }[tx.tx_type]
        return f"处理失败。{reason}{advice}"
    if tx.status == "refunded":
        return "该笔交易已退回，资金已返还到您的钱包余额。"
    # pending / processing
    if tx.tx_type == "withdraw":
        deadline = withdraw_deadline(tx)
        if is_overdue(tx, now):
            return (
                f"目前仍在处理中{to}，已超过{WITHDRAW_WORKING_DAYS}个工作日"
                f"（正常应在{deadline.month}月{deadline.day}日前到账），属于超时未到账。"
            )
        return (
            f"正在处理中{to}。提现通常在1-3个工作日内到账，"
            f"预计最晚{deadline.month}月{deadline.day}日到账（以银行处理为准）。"
        )
    if tx.tx_type == "topup" and tx.method == "bank_transfer":
        return "正在等待银行确认到账。银行转账充值需要银行确认后才会入账，请确认转账时备注了您的账户名。"
    return f"当前状态：{STATUS_NAMES[tx.status]}，请耐心等待处理完成。"


def overdue_hint(tx: Transaction, now: datetime) -> Optional[str]:
    """The escalation offer for an overdue transaction, or None."""
    if is_overdue(tx, now):
        return "这笔提现已超时，需要为您转人工客服进一步核查吗？"
    return None
