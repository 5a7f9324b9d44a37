"""The rows behind the supervisor's figures (walletbot/store/report.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from walletbot.desk.scripted import Ticket, add_ticket, set_presence
from walletbot.store.report import report_rows

START = datetime(2026, 5, 1, 16, 0, tzinfo=timezone.utc)  # 2026-05-02 00:00 in Shanghai
END = START + timedelta(days=1)


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def test_report_rows_select_the_period_and_the_state_now(conn):
    before = add_ticket(conn=conn, ticket=Ticket(
        "web", "a", "fallback", at(-2), agent="agent1", claimed_at=at(1), replied_at=at(1.1)))
    inside = add_ticket(conn=conn, ticket=Ticket(
        "wechat", "b", "complain", at(2), agent="agent2", claimed_at=at(3), resolved_at=at(4),
        score=4))
    queued = add_ticket(conn=conn, ticket=Ticket("web", "c", "request_human", at(5),
                                                 overdue_at=at(5.5)))
    old = add_ticket(conn=conn, ticket=Ticket(
        "web", "d", "transaction", at(-30), agent="agent1", claimed_at=at(-29),
        resolved_at=at(-28), score=1))
    after = add_ticket(conn=conn, ticket=Ticket("rest", "e", "request_human", at(25)))
    set_presence(conn=conn, login="agent1", seen=at(6), available=False)

    rows = report_rows(conn=conn, start=START, end=END)

    assert [(t.ticket_id, t.channel, t.sender_id, t.category) for t in rows.opened] == [
        (inside, "wechat", "b", "complain"), (queued, "web", "c", "request_human")]
    assert all(t.created_at.tzinfo is not None for t in rows.opened)
    # Every event of a ticket with an event in the period, the earlier ones too.
    assert [(e.ticket_id, e.event) for e in rows.events] == [
        (before, "opened"), (before, "claimed"),
        (inside, "opened"), (inside, "claimed"), (inside, "resolved"),
        (queued, "opened"), (queued, "overdue")]
    assert old not in {e.ticket_id for e in rows.events} and after not in {
        e.ticket_id for e in rows.events}
    assert [(s.ticket_id, s.score) for s in rows.scores] == [(inside, 4)]
    assert rows.queued_now == 2 and rows.overdue_now == 1  # c (overdue) and e
    assert rows.load == {"agent1": 1}
    assert [(p.login, p.last_seen_at, p.available) for p in rows.presence] == [
        ("agent1", at(6), False)]
