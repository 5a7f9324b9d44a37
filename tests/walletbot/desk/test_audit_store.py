"""The audit log's table and queries (walletbot/store/audit.py) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from walletbot.desk.service import attempted_login
from walletbot.store import audit
from walletbot.store.db import init_db, make_engine
from walletbot.store.rows import AUDIT_EVENTS, AuditEntry
from walletbot.store.schema import audit_log


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = (f"sqlite:///{tmp_path / 'wallet.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_server").new_url())
    engine = make_engine(url)
    init_db(engine)
    yield engine
    engine.dispose()


def test_entries_are_recorded_and_listed_newest_first(engine):
    start = datetime(2026, 11, 24, 8, tzinfo=timezone.utc)
    with engine.begin() as conn:
        ids = [audit.record_event(conn=conn, event=event, actor="agent1", address="10.0.0.1",
                                  ticket_id=3 if event in ("claim", "reply", "resolve") else None,
                                  user_id="U1001" if event == "account_unfreeze" else None,
                                  at=start + timedelta(minutes=i))
               for i, event in enumerate(AUDIT_EVENTS)]
    with engine.connect() as conn:
        entries = audit.list_events(conn=conn)
        assert [e.audit_id for e in entries] == sorted(ids, reverse=True)
        assert all(isinstance(e, AuditEntry) for e in entries)
        newest = entries[0]
        assert newest.event == "account_unfreeze" and newest.user_id == "U1001"
        assert newest.created_at == start + timedelta(minutes=len(AUDIT_EVENTS) - 1)
        assert newest.created_at.tzinfo == timezone.utc
        assert [e.event for e in audit.list_events(conn=conn, limit=2)] == list(AUDIT_EVENTS[::-1][:2])
        older = audit.list_events(conn=conn, before_id=ids[2])
        assert [e.audit_id for e in older] == [ids[1], ids[0]]
        replies = audit.list_events(conn=conn, event="reply")
        assert len(replies) == 1 and replies[0].ticket_id == 3


def test_bad_entries_are_refused_and_long_values_cut(engine):
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="unknown audit event"):
            audit.record_event(conn=conn, event="message", actor="agent1")
        with pytest.raises(ValueError, match="actor"):
            audit.record_event(conn=conn, event="claim", actor="")
        with pytest.raises(TypeError):
            audit.record_event(conn=conn, event="claim", actor="a", ticket_id="3")
        with pytest.raises(ValueError):
            audit.list_events(conn=conn, event="nope")
        audit.record_event(conn=conn, event="login_failure", actor="x" * 500, address="y" * 500)
    with engine.connect() as conn:
        entry = audit.list_events(conn=conn, limit=10_000)[0]
    assert len(entry.actor) == 64 and len(entry.address) == 64
    with pytest.raises(sa.exc.IntegrityError):  # the database refuses other events too
        with engine.begin() as conn:
            conn.execute(sa.insert(audit_log).values(event="message", actor="a",
                                                     created_at=datetime.now(timezone.utc)))


def test_the_table_has_no_column_for_text():
    assert set(audit_log.c.keys()) == {"audit_id", "created_at", "event", "actor", "address",
                                       "ticket_id", "user_id"}


def test_attempted_logins_are_masked_unless_they_are_agents():
    assert attempted_login("agent1", known=True) == "agent1"
    assert attempted_login("my-secret-password", known=False) == "?my***"
    assert attempted_login("13812345678", known=False) == "?13***"
    assert attempted_login("", known=False) == attempted_login(None, known=False) == "?"
    assert attempted_login(["x"], known=False) == "?"


def test_an_existing_database_gains_the_table_at_start_up(engine):
    from walletbot.store.schema import metadata, users

    with engine.begin() as conn:
        audit_log.drop(conn)  # a wallet DB of the previous version
        conn.execute(sa.insert(users).values(user_id="U7", name="老用户",
                                             created_at=datetime.now(timezone.utc)))
    assert "audit_log" not in sa.inspect(engine).get_table_names()
    init_db(engine)
    assert "audit_log" in sa.inspect(engine).get_table_names()
    with engine.begin() as conn:
        audit.record_event(conn=conn, event="login_success", actor="agent1")
        assert conn.execute(sa.select(users.c.name).where(users.c.user_id == "U7")).scalar_one() == "老用户"
    assert metadata.tables["audit_log"] is audit_log
