"""Queries of walletbot.store on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from walletbot.store import (
    bind_sender,
    get_transaction,
    get_user,
    get_user_for_sender,
    init_db,
    seed_demo,
    make_engine,
    recent_transactions,
    set_frozen,
    transactions,
    users,
)

UTC = timezone.utc
INJECTIONS = [
    "' OR '1'='1",
    "WD202611180002' --",
    "WD202611180002'; DROP TABLE transactions; --",
    '" OR ""="',
    "%",
    "WD%",
]


def _add_tx(conn, order_id, *, user_id="U1001", tx_type="topup", amount=Decimal("1.00"),
            created_at=None, status="success"):
    created_at = created_at or datetime.now(UTC)
    conn.execute(sa.insert(transactions).values(
        order_id=order_id, user_id=user_id, tx_type=tx_type, amount=amount,
        method="balance", status=status, created_at=created_at, updated_at=created_at))


# --- users and bindings -----------------------------------------------------


def test_get_user(conn):
    assert get_user(conn=conn, user_id="U1001").name == "张三"
    assert get_user(conn=conn, user_id="U9999") is None
    assert get_user(conn=conn, user_id="") is None


@pytest.mark.parametrize("channel,sender_id,user_id", [
    ("rest", "zhangsan", "U1001"), ("wechat", "o_demo_zhangsan", "U1001"),
    ("web", "zhangsan", "U1001"), ("rest", "lisi", "U1002"),
    ("wechat", "o_demo_lisi", "U1002"), ("web", "lisi", "U1002"),
])
def test_get_user_for_sender(conn, channel, sender_id, user_id):
    assert get_user_for_sender(conn=conn, channel=channel, sender_id=sender_id).user_id == user_id


def test_unbound_sender_is_none(conn):
    assert get_user_for_sender(conn=conn, channel="wechat", sender_id="zhangsan") is None
    assert get_user_for_sender(conn=conn, channel="rest", sender_id="nobody") is None
    assert get_user_for_sender(conn=conn, channel="rest", sender_id="x" * 500) is None
    for injected in INJECTIONS:
        assert get_user_for_sender(conn=conn, channel="rest", sender_id=injected) is None


def test_unknown_channel_is_refused(conn):
    with pytest.raises(ValueError, match="rest, wechat, web"):
        get_user_for_sender(conn=conn, channel="sms", sender_id="zhangsan")


def test_bind_sender_inserts_and_is_idempotent(engine):
    with engine.begin() as conn:
        bind_sender(conn=conn, channel="wechat", sender_id="o_new", user_id="U1002")
        bind_sender(conn=conn, channel="wechat", sender_id="o_new", user_id="U1002")
    with engine.connect() as conn:
        assert get_user_for_sender(conn=conn, channel="wechat", sender_id="o_new").user_id == "U1002"
        assert get_user_for_sender(conn=conn, channel="web", sender_id="o_new") is None


def test_bind_sender_rebinds_to_another_user(engine):
    with engine.begin() as conn:
        bind_sender(conn=conn, channel="rest", sender_id="lisi", user_id="U1001")
    with engine.connect() as conn:
        assert get_user_for_sender(conn=conn, channel="rest", sender_id="lisi").user_id == "U1001"
        count = conn.execute(sa.text(
            "SELECT count(*) FROM bindings WHERE channel = 'rest' AND sender_id = 'lisi'"
        )).scalar_one()
    assert count == 1


def test_bind_sender_validates(conn):
    with pytest.raises(ValueError, match="no user 'U9999'"):
        bind_sender(conn=conn, channel="rest", sender_id="x", user_id="U9999")
    with pytest.raises(ValueError, match="unknown channel"):
        bind_sender(conn=conn, channel="sms", sender_id="x", user_id="U1001")
    with pytest.raises(ValueError, match="sender_id"):
        bind_sender(conn=conn, channel="rest", sender_id="", user_id="U1001")
    with pytest.raises(TypeError):
        bind_sender(conn=conn, channel="rest", sender_id=42, user_id="U1001")


def test_bind_sender_stores_injection_looking_ids_literally(engine):
    with engine.begin() as conn:
        bind_sender(conn=conn, channel="web", sender_id="' OR '1'='1", user_id="U1002")
    with engine.connect() as conn:
        assert get_user_for_sender(conn=conn, channel="web", sender_id="' OR '1'='1").user_id == "U1002"
        assert get_user_for_sender(conn=conn, channel="web", sender_id="zhangsan").user_id == "U1001"


def test_query_functions_are_keyword_only(conn):
    with pytest.raises(TypeError):
        get_user(conn, "U1001")  # type: ignore[misc]
    with pytest.raises(TypeError):
        get_transaction(conn, "WD202611180002", "U1001")  # type: ignore[misc]


# --- transactions -----------------------------------------------------------


def test_get_transaction_of_the_owner(conn):
    tx = get_transaction(conn=conn, order_id="WD202611180002", user_id="U1001")
    assert (tx.order_id, tx.status, tx.destination) == (
        "WD202611180002", "processing", "尾号6789的银行卡")
    assert tx.amount == Decimal("1000.00") and str(tx.amount) == "1000.00"


def test_another_users_order_looks_like_a_missing_one(conn):
    foreign = get_transaction(conn=conn, order_id="TU202611220007", user_id="U1001")
    missing = get_transaction(conn=conn, order_id="TU209901010099", user_id="U1001")
    assert foreign is None and missing is None
    assert get_transaction(conn=conn, order_id="WD202611180002", user_id="U1002") is None
    assert get_transaction(conn=conn, order_id="WD202611180002", user_id="U9999") is None
    assert get_transaction(conn=conn, order_id="", user_id="U1001") is None


def test_get_transaction_is_one_query_with_both_conditions(engine):
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as conn:
            get_transaction(conn=conn, order_id="TU202611220007", user_id="U1001")
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    queries = [s for s in statements if "transactions" in s[0]]
    assert len(queries) == 1
    statement, parameters = queries[0]
    assert "order_id" in statement and "user_id" in statement
    assert "TU202611220007" not in statement  # bound, not spliced in
    values = parameters.values() if isinstance(parameters, dict) else parameters
    assert {"TU202611220007", "U1001"} <= set(values)


@pytest.mark.parametrize("injected", INJECTIONS)
def test_injection_looking_ids_find_nothing_and_break_nothing(engine, injected):
    with engine.connect() as conn:
        assert get_transaction(conn=conn, order_id=injected, user_id="U1001") is None
        assert get_transaction(conn=conn, order_id="WD202611180002", user_id=injected) is None
        assert recent_transactions(conn=conn, user_id=injected) == []
        assert get_user(conn=conn, user_id=injected) is None
    with engine.begin() as conn:
        assert set_frozen(conn=conn, user_id=injected) is False
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(transactions)).scalar_one() == 7
        assert conn.execute(sa.select(sa.func.count()).select_from(users)
                            .where(users.c.frozen.is_(True))).scalar_one() == 0
        assert get_transaction(conn=conn, order_id="WD202611180002", user_id="U1001") is not None


def test_recent_transactions_newest_first(conn):
    ids = [t.order_id for t in recent_transactions(conn=conn, user_id="U1001", limit=50)]
    assert ids == ["TU202611210003", "TU202611200001", "TR202611190005", "WD202611180002",
                   "RF202611150006", "WD202611010004"]
    assert [t.order_id for t in recent_transactions(conn=conn, user_id="U1001")] == ids[:5]
    assert [t.order_id for t in recent_transactions(conn=conn, user_id="U1002")] == [
        "TU202611220007"]
    assert recent_transactions(conn=conn, user_id="U9999") == []


def test_recent_transactions_type_filter_and_limit(conn):
    withdrawals = recent_transactions(conn=conn, user_id="U1001", tx_type="withdraw")
    assert [t.order_id for t in withdrawals] == ["WD202611180002", "WD202611010004"]
    topups = recent_transactions(conn=conn, user_id="U1001", tx_type="topup", limit=1)
    assert [t.order_id for t in topups] == ["TU202611210003"]
    assert recent_transactions(conn=conn, user_id="U1002", tx_type="refund") == []


def test_recent_transactions_orders_by_instant_not_local_time(conn):
    # 2026-11-21 09:00 UTC = 17:00 Shanghai; 2026-11-21 17:30 Shanghai is later.
    _add_tx(conn, "TU202611210098", created_at=datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
    later = datetime(2026, 11, 21, 17, 30, tzinfo=timezone(timedelta(hours=8)))
    _add_tx(conn, "TU202611210099", created_at=later)
    ids = [t.order_id for t in recent_transactions(conn=conn, user_id="U1001", limit=3)]
    assert ids == ["TU202611210099", "TU202611210098", "TU202611210003"]


@pytest.mark.parametrize("limit", [0, -1, 51, 1000, True, 2.5, "5", None])
def test_recent_transactions_refuses_bad_limits(conn, limit):
    with pytest.raises(ValueError, match="limit must be an int from 1 to 50"):
        recent_transactions(conn=conn, user_id="U1001", limit=limit)


@pytest.mark.parametrize("tx_type", ["loan", "TOPUP", "", "topup' OR '1'='1"])
def test_recent_transactions_refuses_unknown_types(conn, tx_type):
    with pytest.raises(ValueError, match="topup, withdraw, transfer, refund"):
        recent_transactions(conn=conn, user_id="U1001", tx_type=tx_type)


def test_recent_transactions_limits_of_range_are_fine(conn):
    assert len(recent_transactions(conn=conn, user_id="U1001", limit=1)) == 1
    assert len(recent_transactions(conn=conn, user_id="U1001", limit=50)) == 6


# --- freezing ---------------------------------------------------------------


def test_set_frozen_and_unfreeze(engine):
    before = datetime.now(UTC)
    with engine.begin() as conn:
        assert set_frozen(conn=conn, user_id="U1001") is True
        assert set_frozen(conn=conn, user_id="U1001", frozen=True) is False  # already
    with engine.connect() as conn:
        user = get_user(conn=conn, user_id="U1001")
        assert user.frozen is True
        assert user.frozen_at.tzinfo == UTC and user.frozen_at >= before - timedelta(seconds=1)
        assert get_user(conn=conn, user_id="U1002").frozen is False
    with engine.begin() as conn:
        assert set_frozen(conn=conn, user_id="U1001", frozen=False) is True
        assert set_frozen(conn=conn, user_id="U1001", frozen=False) is False
    with engine.connect() as conn:
        user = get_user(conn=conn, user_id="U1001")
        assert (user.frozen, user.frozen_at) == (False, None)


def test_set_frozen_unknown_user(conn):
    assert set_frozen(conn=conn, user_id="U9999") is False
    with pytest.raises(TypeError):
        set_frozen(conn=conn, user_id="U1001", frozen="yes")


def test_uncommitted_changes_roll_back(engine):
    with engine.connect() as conn:
        set_frozen(conn=conn, user_id="U1001")
        conn.rollback()
    with engine.connect() as conn:
        assert get_user(conn=conn, user_id="U1001").frozen is False


# --- types: datetimes and amounts ------------------------------------------


def test_datetimes_round_trip_as_utc(conn):
    local = datetime(2026, 12, 1, 8, 30, 15, tzinfo=timezone(timedelta(hours=8)))
    _add_tx(conn, "TU202612010050", created_at=local)
    tx = get_transaction(conn=conn, order_id="TU202612010050", user_id="U1001")
    assert tx.created_at == local
    assert tx.created_at.tzinfo == UTC and tx.created_at.hour == 0


def test_postgresql_datetimes_are_utc_whatever_the_session_time_zone(pg_server):
    engine = make_engine(pg_server.new_url())
    try:
        init_db(engine)
        seed_demo(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("SET TIME ZONE 'America/New_York'")
            tx = get_transaction(conn=conn, order_id="WD202611180002", user_id="U1001")
            stored = conn.exec_driver_sql(
                "SELECT created_at AT TIME ZONE 'UTC' FROM transactions"
                " WHERE order_id = 'WD202611180002'").scalar_one()
    finally:
        engine.dispose()
    assert tx.created_at == datetime(2026, 11, 18, 2, 0, tzinfo=UTC)
    assert tx.created_at.tzinfo == UTC
    assert stored == datetime(2026, 11, 18, 2, 0)  # timestamptz holds the instant


def test_sqlite_stores_utc_wall_time(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'wallet.db'}")
    try:
        init_db(engine)
        seed_demo(engine)
        with engine.connect() as conn:
            stored = conn.exec_driver_sql(
                "SELECT created_at FROM transactions WHERE order_id = 'WD202611180002'"
            ).scalar_one()
    finally:
        engine.dispose()
    assert stored.startswith("2026-11-18 02:00:00")


def test_naive_datetimes_are_refused(conn):
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        _add_tx(conn, "TU202612010051", created_at=datetime(2026, 12, 1, 8, 30))


def test_amounts_are_exact_decimals(conn):
    _add_tx(conn, "TU202612010052", amount=Decimal("9999999999.99"))
    _add_tx(conn, "TU202612010053", amount=Decimal("0.1"))
    _add_tx(conn, "TU202612010054", amount=3)
    big = get_transaction(conn=conn, order_id="TU202612010052", user_id="U1001").amount
    assert (big, str(big)) == (Decimal("9999999999.99"), "9999999999.99")
    assert str(get_transaction(conn=conn, order_id="TU202612010053", user_id="U1001").amount) == "0.10"
    assert str(get_transaction(conn=conn, order_id="TU202612010054", user_id="U1001").amount) == "3.00"


@pytest.mark.parametrize("amount,error", [(1.5, "floats lose cents"),
                                          (Decimal("1.005"), "more than two decimal")])
def test_inexact_amounts_are_refused(conn, amount, error):
    with pytest.raises(sa.exc.StatementError, match=error):
        _add_tx(conn, "TU202612010055", amount=amount)
