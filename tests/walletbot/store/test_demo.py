"""The seeded demo data is exactly design.md §4."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import sqlalchemy as sa

from walletbot.store import bindings, get_transaction, get_user, transactions

UTC = timezone.utc
SHANGHAI = timezone(timedelta(hours=8))

# order_id: (user, type, amount, status, method, destination, failure_reason, note)
EXPECTED = {
    "TU202611200001": ("U1001", "topup", "500.00", "success", "alipay", None, None, None),
    "TU202611210003": ("U1001", "topup", "200.00", "pending", "bank_transfer", None, None,
                       "等待银行确认到账"),
    "WD202611180002": ("U1001", "withdraw", "1000.00", "processing", "bank_card",
                       "尾号6789的银行卡", None, None),
    "WD202611010004": ("U1001", "withdraw", "300.00", "failed", "bank_card", None,
                       "银行卡信息有误（户名或卡号不匹配）", "资金已退回钱包余额"),
    "TR202611190005": ("U1001", "transfer", "88.00", "success", "balance", "李四", None, None),
    "RF202611150006": ("U1001", "refund", "59.90", "processing", "merchant", None, None,
                       "商户退款处理中"),
    "TU202611220007": ("U1002", "topup", "1000.00", "success", "wechat_pay", None, None, None),
}


def test_demo_users(conn):
    zhang, li = get_user(conn=conn, user_id="U1001"), get_user(conn=conn, user_id="U1002")
    assert (zhang.name, zhang.frozen, zhang.frozen_at) == ("张三", False, None)
    assert (li.name, li.frozen, li.frozen_at) == ("李四", False, None)
    assert zhang.created_at.tzinfo == UTC


def test_demo_bindings(conn):
    rows = conn.execute(sa.select(bindings.c.channel, bindings.c.sender_id,
                                  bindings.c.user_id)).all()
    assert sorted(map(tuple, rows)) == sorted([
        ("rest", "zhangsan", "U1001"), ("wechat", "o_demo_zhangsan", "U1001"),
        ("web", "zhangsan", "U1001"),
        ("rest", "lisi", "U1002"), ("wechat", "o_demo_lisi", "U1002"), ("web", "lisi", "U1002"),
    ])


def test_demo_transactions_exactly(conn):
    ids = conn.execute(sa.select(transactions.c.order_id)).scalars().all()
    assert sorted(ids) == sorted(EXPECTED)
    for order_id, expected in EXPECTED.items():
        user_id, tx_type, amount, status, method, destination, reason, note = expected
        tx = get_transaction(conn=conn, order_id=order_id, user_id=user_id)
        assert tx is not None, order_id
        assert (tx.user_id, tx.tx_type, tx.status, tx.method, tx.currency) == (
            user_id, tx_type, status, method, "CNY"), order_id
        assert isinstance(tx.amount, Decimal) and str(tx.amount) == amount, order_id
        assert (tx.destination, tx.failure_reason, tx.note) == (destination, reason, note)
        day = datetime.strptime(order_id[2:10], "%Y%m%d")
        assert tx.created_at == datetime(day.year, day.month, day.day, 10, tzinfo=SHANGHAI)
        assert tx.created_at.tzinfo == UTC and tx.updated_at.tzinfo == UTC
        assert timedelta(0) < tx.updated_at - tx.created_at <= timedelta(hours=3), order_id


def test_overdue_withdrawal_is_dated_for_the_working_day_rule(conn):
    tx = get_transaction(conn=conn, order_id="WD202611180002", user_id="U1001")
    assert tx.created_at == datetime(2026, 11, 18, 2, 0, tzinfo=UTC)  # 10:00 Shanghai
    assert tx.amount == Decimal("1000.00") and str(tx.amount) == "1000.00"
