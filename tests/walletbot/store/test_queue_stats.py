"""The queue figures the metrics scrape reads (walletbot/store/queue_stats.py), on both backends."""

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from walletbot.store import tickets as ticket_queries
from walletbot.store.queue_stats import queue_figures
from walletbot.store.schema import tickets

NOW = datetime(2026, 11, 24, 4, 0, tzinfo=timezone.utc)


def open_at(conn, sender, *, queued_at=None, created_at=None):
    ticket, _ = ticket_queries.open_ticket(conn=conn, channel="rest", sender_id=sender,
                                           category="request_human", priority=3)
    values = {"queued_at": queued_at}
    if created_at is not None:
        values["created_at"] = created_at
    conn.execute(sa.update(tickets).where(tickets.c.ticket_id == ticket.ticket_id).values(**values))
    return ticket


def test_an_empty_queue(conn):
    figures = queue_figures(conn=conn)
    assert (figures.length, figures.oldest_since) == (0, None)


def test_length_and_the_oldest_wait_count_queued_tickets_only(conn):
    open_at(conn, "a", queued_at=NOW - timedelta(minutes=3))
    # Before the queued_at column existed: the ticket waits since it was opened.
    open_at(conn, "b", created_at=NOW - timedelta(minutes=9))
    claimed = open_at(conn, "c", queued_at=NOW - timedelta(hours=2))
    assert ticket_queries.claim_ticket(conn=conn, ticket_id=claimed.ticket_id, agent="agent1")
    figures = queue_figures(conn=conn)
    assert figures.length == 2
    assert figures.oldest_since == NOW - timedelta(minutes=9)
    assert figures.oldest_since.tzinfo is not None
