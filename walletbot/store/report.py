"""What the supervisor's figures read from the wallet DB, in one transaction.

Same conventions as :mod:`walletbot.store.queries`: keyword-only, ``conn``
first, the caller owns the transaction, values always bound. The figures
themselves are computed in :mod:`walletbot.desk.report`; this module only
fetches the rows they are computed from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Dict, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from walletbot.store.rows import TicketEvent
from walletbot.store.schema import agent_presence, feedback, ticket_events, tickets


@dataclass(frozen=True)
class OpenedTicket:
    """A ticket opened in the period: what ties it to a conversation, and why."""

    ticket_id: int
    channel: str
    sender_id: str
    category: str
    created_at: datetime


@dataclass(frozen=True)
class Score:
    """A satisfaction score given for a ticket."""

    ticket_id: int
    score: int
    created_at: datetime


@dataclass(frozen=True)
class Presence:
    """An agent's last sign of life at the desk."""

    login: str
    last_seen_at: datetime
    available: bool


@dataclass(frozen=True)
class ReportRows:
    """The rows behind one report.

    Attributes:
        opened: Tickets created in the period.
        events: Every event of each ticket that has an event in the period,
            oldest first (a wait that ends in the period may start before it).
        scores: Ticket scores given in the period.
        queued_now: Tickets in the queue now.
        overdue_now: Queued tickets marked overdue now.
        presence: Every agent's presence row.
        load: Assigned tickets per agent now.
    """

    opened: Tuple[OpenedTicket, ...]
    events: Tuple[TicketEvent, ...]
    scores: Tuple[Score, ...]
    queued_now: int
    overdue_now: int
    presence: Tuple[Presence, ...]
    load: Dict[str, int]


def report_rows(*, conn: Connection, start: datetime, end: datetime) -> ReportRows:
    """The rows for a report of ``[start, end)`` (timezone-aware datetimes)."""
    opened = conn.execute(
        sa.select(tickets.c.ticket_id, tickets.c.channel, tickets.c.sender_id,
                  tickets.c.category, tickets.c.created_at)
        .where(tickets.c.created_at >= start, tickets.c.created_at < end)
        .order_by(tickets.c.ticket_id)
    )
    touched = (
        sa.select(ticket_events.c.ticket_id)
        .where(ticket_events.c.created_at >= start, ticket_events.c.created_at < end)
        .distinct()
    )
    events = conn.execute(
        sa.select(ticket_events).where(ticket_events.c.ticket_id.in_(touched))
        .order_by(ticket_events.c.ticket_id, ticket_events.c.event_id)
    )
    scores = conn.execute(
        sa.select(feedback.c.ticket_id, feedback.c.score, feedback.c.created_at)
        .where(feedback.c.ticket_id.is_not(None), feedback.c.score.is_not(None),
               feedback.c.created_at >= start, feedback.c.created_at < end)
        .order_by(feedback.c.feedback_id)
    )
    queued = sa.select(sa.func.count()).select_from(tickets).where(tickets.c.status == "queued")
    overdue = queued.where(tickets.c.overdue_at.is_not(None))
    load = conn.execute(
        sa.select(tickets.c.agent, sa.func.count())
        .where(tickets.c.status == "assigned", tickets.c.agent.is_not(None))
        .group_by(tickets.c.agent)
    )
    presence = conn.execute(sa.select(agent_presence).order_by(agent_presence.c.login))
    return ReportRows(
        opened=tuple(OpenedTicket(**dict(row._mapping)) for row in opened),
        events=tuple(TicketEvent(**dict(row._mapping)) for row in events),
        scores=tuple(Score(**dict(row._mapping)) for row in scores),
        queued_now=int(conn.execute(queued).scalar_one()),
        overdue_now=int(conn.execute(overdue).scalar_one()),
        presence=tuple(Presence(login=row.login, last_seen_at=row.last_seen_at,
                                available=bool(row.available)) for row in presence),
        load={agent: int(count) for agent, count in load},
    )
