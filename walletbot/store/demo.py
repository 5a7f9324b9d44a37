"""Demo users, bindings and transactions (design.md §4), seeded by ``seed_demo`` outside production.

Times are written in Asia/Shanghai (UTC+8, no DST since 1991) and stored as UTC.
A transaction is created on its order id's date at 10:00 Shanghai time.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Optional, Tuple

from walletbot.store.rows import Transaction, TxStatus, TxType, User

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


def _shanghai(year: int, month: int, day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(timezone.utc)


def _tx(
    order_id: str,
    user_id: str,
    tx_type: TxType,
    amount: str,
    method: str,
    status: TxStatus,
    *,
    updated_after: timedelta,
    failure_reason: Optional[str] = None,
    destination: Optional[str] = None,
    note: Optional[str] = None,
) -> Transaction:
    date = order_id[2:10]  # e.g. "WD202611180002" -> "20261118"
    created = _shanghai(int(date[:4]), int(date[4:6]), int(date[6:8]))
    return Transaction(
        order_id=order_id,
        user_id=user_id,
        tx_type=tx_type,
        amount=Decimal(amount),
        currency="CNY",
        method=method,
        status=status,
        created_at=created,
        updated_at=created + updated_after,
        failure_reason=failure_reason,
        destination=destination,
        note=note,
    )


DEMO_USERS: Tuple[User, ...] = (
    User(user_id="U1001", name="张三", frozen=False, frozen_at=None,
         created_at=_shanghai(2026, 1, 5, 9, 30)),
    User(user_id="U1002", name="李四", frozen=False, frozen_at=None,
         created_at=_shanghai(2026, 2, 10, 14, 0)),
)

# (channel, sender_id, user_id)
DEMO_BINDINGS: Tuple[Tuple[str, str, str], ...] = (
    ("rest", "zhangsan", "U1001"),
    ("wechat", "o_demo_zhangsan", "U1001"),
    ("web", "zhangsan", "U1001"),
    ("rest", "lisi", "U1002"),
    ("wechat", "o_demo_lisi", "U1002"),
    ("web", "lisi", "U1002"),
)

DEMO_TRANSACTIONS: Tuple[Transaction, ...] = (
    _tx("TU202611200001", "U1001", "topup", "500.00", "alipay", "success",
        updated_after=timedelta(minutes=1)),
    _tx("TU202611210003", "U1001", "topup", "200.00", "bank_transfer", "pending",
        updated_after=timedelta(minutes=1),
        note="等待银行确认到账"),
    _tx("WD202611180002", "U1001", "withdraw", "1000.00", "bank_card", "processing",
        updated_after=timedelta(minutes=5),
        destination="尾号6789的银行卡"),
    _tx("WD202611010004", "U1001", "withdraw", "300.00", "bank_card", "failed",
        updated_after=timedelta(hours=2),
        failure_reason="银行卡信息有误（户名或卡号不匹配）",
        note="资金已退回钱包余额"),
    _tx("TR202611190005", "U1001", "transfer", "88.00", "balance", "success",
        updated_after=timedelta(seconds=30),
        destination="李四"),
    _tx("RF202611150006", "U1001", "refund", "59.90", "merchant", "processing",
        updated_after=timedelta(minutes=10),
        note="商户退款处理中"),
    _tx("TU202611220007", "U1002", "topup", "1000.00", "wechat_pay", "success",
        updated_after=timedelta(minutes=1)),
)
