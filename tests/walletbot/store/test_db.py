"""Engine, URL and schema set-up (init_db) on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

import walletbot.store
from walletbot.store import (
    DEFAULT_URL,
    bindings,
    init_db,
    seed_demo,
    make_engine,
    set_frozen,
    transactions,
    users,
    wallet_db_url,
)
from walletbot.store import db as db_module
from walletbot.store import queries as queries_module
from walletbot.store import schema
from walletbot.store import tickets as tq


def _counts(engine: Engine) -> tuple:
    with engine.connect() as conn:
        return tuple(
            conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (users, bindings, transactions)
        )


# --- URL and engine ---------------------------------------------------------


def test_url_defaults_to_sqlite_under_var():
    assert wallet_db_url({}) == DEFAULT_URL == "sqlite:///var/wallet.db"
    assert wallet_db_url({"WALLET_DB_URL": "  "}) == DEFAULT_URL


def test_url_from_environment():
    url = "postgresql://wallet@db.internal:5432/wallet"
    assert wallet_db_url({"WALLET_DB_URL": url}) == url
    assert wallet_db_url({"WALLET_DB_URL": "postgres://u@h/d"}) == "postgresql://u@h/d"


def test_url_reads_os_environ(monkeypatch):
    monkeypatch.setenv("WALLET_DB_URL", "sqlite:///elsewhere.db")
    assert wallet_db_url() == "sqlite:///elsewhere.db"


def test_default_engine_creates_var_folder_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WALLET_DB_URL", raising=False)
    engine = make_engine()
    try:
        assert (tmp_path / "var").is_dir()
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        assert (tmp_path / "var" / "wallet.db").is_file()
    finally:
        engine.dispose()


def test_sqlite_engine_creates_nested_parent_folders(tmp_path):
    path = tmp_path / "a" / "b" / "wallet.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        init_db(engine)
        assert path.is_file()
    finally:
        engine.dispose()


def test_in_memory_sqlite_is_shared_across_threads():
    engine = make_engine("sqlite://")
    try:
        init_db(engine)
        seed_demo(engine)
        seen = []
        thread = threading.Thread(target=lambda: seen.append(_counts(engine)))
        thread.start()
        thread.join()
        assert seen == [(2, 6, 7)]
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["mysql://u@h/d", "not a url"])
def test_engine_refuses_unsupported_urls_with_a_hint(url):
    with pytest.raises(ValueError, match="WALLET_DB_URL"):
        make_engine(url)


def test_postgresql_engine_pings_pool_connections():
    engine = make_engine("postgresql+psycopg2://u:p@127.0.0.1:1/d")  # not connected
    assert engine.pool._pre_ping is True


def test_importing_the_package_creates_no_engine():
    for module in (walletbot.store, db_module, queries_module):
        assert not any(isinstance(v, (Engine, sa.engine.Connection)) for v in vars(module).values())


# --- init_db on both backends -----------------------------------------------


def test_init_db_creates_tables_and_indexes(bare_engine):
    init_db(bare_engine)
    inspector = sa.inspect(bare_engine)
    assert {"users", "bindings", "transactions", "tickets", "feedback", "audit_log"} <= set(
        inspector.get_table_names())
    assert ("created_at",) in {tuple(ix["column_names"]) for ix in inspector.get_indexes("audit_log")}
    assert inspector.get_pk_constraint("bindings")["constrained_columns"] == [
        "channel", "sender_id"]
    indexes = {tuple(ix["column_names"]) for ix in inspector.get_indexes("transactions")}
    assert ("user_id", "tx_type", "created_at") in indexes
    assert ("user_id", "created_at") in indexes
    fks = inspector.get_foreign_keys("transactions")
    assert [(fk["referred_table"], fk["constrained_columns"]) for fk in fks] == [
        ("users", ["user_id"])]


def test_init_db_creates_tables_and_seeds_nothing(bare_engine):
    # The production profile's set-up: no demo users, bindings or orders.
    init_db(bare_engine)
    assert _counts(bare_engine) == (0, 0, 0)


def test_init_db_and_seed_demo_twice_are_idempotent(bare_engine):
    init_db(bare_engine)
    seed_demo(bare_engine)
    first = _counts(bare_engine)
    init_db(bare_engine)
    seed_demo(bare_engine)
    assert first == _counts(bare_engine) == (2, 6, 7)


def test_init_db_concurrently_from_two_threads(db_url):
    engines = [make_engine(db_url), make_engine(db_url)]  # like two processes
    barrier = threading.Barrier(len(engines))
    errors = []

    def run(engine: Engine) -> None:
        try:
            barrier.wait(timeout=10)
            init_db(engine)
            seed_demo(engine)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert _counts(engines[0]) == (2, 6, 7)
    finally:
        for engine in engines:
            engine.dispose()


def test_seeding_again_keeps_changed_rows(engine):
    with engine.begin() as conn:
        assert set_frozen(conn=conn, user_id="U1001") is True
    init_db(engine)
    seed_demo(engine)
    with engine.connect() as conn:
        row = conn.execute(sa.select(users).where(users.c.user_id == "U1001")).one()
    assert row.frozen is True and row.frozen_at.tzinfo == timezone.utc


def test_foreign_keys_are_enforced(engine):
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            conn.execute(sa.insert(bindings).values(
                channel="rest", sender_id="ghost", user_id="U9999"))


def test_check_constraints_refuse_unknown_types(engine):
    from datetime import datetime
    from decimal import Decimal

    now = datetime.now(timezone.utc)
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            conn.execute(sa.insert(transactions).values(
                order_id="XX1", user_id="U1001", tx_type="loan", amount=Decimal("1.00"),
                method="balance", status="success", created_at=now, updated_at=now))



def test_init_db_adds_new_ticket_columns_to_an_older_database(bare_engine):
    # A tickets table as the schema had it before the service-level clocks.
    old = sa.MetaData()
    columns = [c.copy() for c in schema.tickets.columns if c.name not in {
        "queued_at", "claimed_at", "first_reply_at", "agent_replied_at", "overdue_at",
        "wait_notice_at"}]
    sa.Table("users", old, *[c.copy() for c in schema.users.columns])
    sa.Table("tickets", old, *columns)
    old.create_all(bare_engine)
    with bare_engine.begin() as conn:
        then = datetime(2026, 11, 1, tzinfo=timezone.utc)
        conn.execute(sa.insert(old.tables["tickets"]).values(
            channel="web", sender_id="old", category="complain", priority=3, status="queued",
            transcript="[]", created_at=then, updated_at=then))
    init_db(bare_engine)
    init_db(bare_engine)  # and again: nothing left to add
    present = {c["name"] for c in sa.inspect(bare_engine).get_columns("tickets")}
    assert {"queued_at", "claimed_at", "overdue_at", "wait_notice_at"} <= present
    with bare_engine.begin() as conn:
        ticket = tq.list_tickets(conn=conn)[0]
        assert ticket.queued_at is None and ticket.in_queue_since == ticket.created_at
        assert tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="agent1")
