"""Queries on handoff tickets and user feedback.

Same conventions as :mod:`walletbot.store.queries`: keyword-only, ``conn``
first, the caller owns the transaction, values always bound.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from walletbot.privacy import mask_pii
from walletbot.store.rows import (
    TICKET_CATEGORIES, TICKET_EVENTS, TICKET_STATUSES, Ticket, TicketEvent,
)
from walletbot.store.schema import feedback, ticket_events, tickets, utcnow

OPEN_STATUSES: Tuple[str, ...] = ("queued", "assigned")
_MAX_SENDER = tickets.c.sender_id.type.length


def _ticket(row: Any) -> Ticket:
    m = row._mapping
    try:
        transcript = tuple(json.loads(m["transcript"] or "[]"))
    except ValueError:
        transcript = ()
    return Ticket(
        ticket_id=m["ticket_id"],
        channel=m["channel"],
        sender_id=m["sender_id"],
        user_id=m["user_id"],
        category=m["category"],
        priority=m["priority"],
        status=m["status"],
        agent=m["agent"],
        summary=m["summary"],
        transcript=transcript,
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        resolved_at=m["resolved_at"],
        queued_at=m["queued_at"],
        claimed_at=m["claimed_at"],
        first_reply_at=m["first_reply_at"],
        agent_replied_at=m["agent_replied_at"],
        overdue_at=m["overdue_at"],
        wait_notice_at=m["wait_notice_at"],
    )


def add_event(
    *, conn: Connection, ticket_id: int, event: str, actor: Optional[str] = None,
    target: Optional[str] = None, reason: Optional[str] = None, at: Optional[Any] = None,
) -> int:
    """Records a step of a ticket's life; ``reason`` is PII-masked on the way in.

    Returns:
        The event id.

    Raises:
        ValueError: Unknown event.
    """
    if event not in TICKET_EVENTS:
        raise ValueError(f"unknown ticket event {event!r}: use one of {', '.join(TICKET_EVENTS)}")
    result = conn.execute(sa.insert(ticket_events).values(
        ticket_id=ticket_id, event=event, actor=actor, target=target,
        reason=mask_pii(reason) if reason else None, created_at=at or utcnow(),
    ))
    return int(result.inserted_primary_key[0])


def events_of(*, conn: Connection, ticket_id: int) -> List[TicketEvent]:
    """The ticket's events, oldest first."""
    stmt = (sa.select(ticket_events).where(ticket_events.c.ticket_id == ticket_id)
            .order_by(ticket_events.c.event_id))
    return [TicketEvent(**dict(row._mapping)) for row in conn.execute(stmt)]


def _insert(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(tickets)


@functools.lru_cache(maxsize=None)
def _open_ticket_for_stmt() -> Any:
    # Built once: every turn asks (is a human handling the conversation?).
    return sa.select(tickets).where(
        tickets.c.channel == sa.bindparam("channel"),
        tickets.c.sender_id == sa.bindparam("sender_id"),
        tickets.c.status.in_(OPEN_STATUSES),
    )


def open_ticket_for(*, conn: Connection, channel: str, sender_id: str) -> Optional[Ticket]:
    """The conversation's open (queued or assigned) ticket, if any."""
    row = conn.execute(_open_ticket_for_stmt(), {"channel": channel, "sender_id": sender_id}) \
        .first()
    return None if row is None else _ticket(row)


def open_ticket(
    *,
    conn: Connection,
    channel: str,
    sender_id: str,
    category: str,
    priority: int,
    user_id: Optional[str] = None,
    summary: Optional[str] = None,
    transcript: Sequence[Dict[str, Any]] = (),
) -> Tuple[Ticket, bool]:
    """Opens a ticket for the conversation unless one is open already.

    A concurrent request for the same conversation cannot open a second one:
    a partial unique index allows one open ticket per (channel, sender), and
    the insert skips on conflict. An already open ticket is raised to the
    higher priority of the two.

    Args:
        conn: Open connection.
        channel: Rasa input channel name.
        sender_id: The channel's sender id.
        category: One of :data:`~walletbot.store.rows.TICKET_CATEGORIES`.
        priority: 1 urgent, 2 high, 3 normal.
        user_id: The bound wallet user, if any.
        summary: One masked line for the queue.
        transcript: Masked conversation so far.

    Returns:
        ``(ticket, created)``: the open ticket and whether this call opened it.

    Raises:
        ValueError: Unknown category, priority out of range, bad sender id.
    """
    if category not in TICKET_CATEGORIES:
        raise ValueError(f"unknown category {category!r}: use one of {', '.join(TICKET_CATEGORIES)}")
    if isinstance(priority, bool) or priority not in (1, 2, 3):
        raise ValueError(f"priority must be 1, 2 or 3, got {priority!r}")
    if not isinstance(sender_id, str) or not 0 < len(sender_id) <= _MAX_SENDER:
        raise ValueError(f"sender_id must be 1 to {_MAX_SENDER} characters")
    now = utcnow()
    stmt = _insert(conn).values(
        channel=channel, sender_id=sender_id, user_id=user_id, category=category,
        priority=priority, status="queued", summary=summary,
        transcript=json.dumps(list(transcript), ensure_ascii=False),
        created_at=now, updated_at=now, queued_at=now,
    ).on_conflict_do_nothing(
        index_elements=[tickets.c.channel, tickets.c.sender_id],
        index_where=tickets.c.status != "resolved",
    )
    created = conn.execute(stmt).rowcount > 0
    ticket = open_ticket_for(conn=conn, channel=channel, sender_id=sender_id)
    if ticket is None:  # pragma: no cover - resolved between insert and select
        raise RuntimeError("the conversation's ticket vanished; retry")
    if created:
        add_event(conn=conn, ticket_id=ticket.ticket_id, event="opened", actor="system",
                  reason=category, at=now)
    if not created and priority < ticket.priority:
        conn.execute(
            sa.update(tickets).where(tickets.c.ticket_id == ticket.ticket_id)
            .values(priority=priority, updated_at=now)
        )
        ticket = get_ticket(conn=conn, ticket_id=ticket.ticket_id)
    return ticket, created


def get_ticket(*, conn: Connection, ticket_id: int) -> Optional[Ticket]:
    """The ticket with this id, or None."""
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, int):
        raise TypeError(f"ticket_id must be an int, not {type(ticket_id).__name__}")
    row = conn.execute(sa.select(tickets).where(tickets.c.ticket_id == ticket_id)).first()
    return None if row is None else _ticket(row)


def list_tickets(
    *, conn: Connection, statuses: Sequence[str] = OPEN_STATUSES, limit: int = 200
) -> List[Ticket]:
    """Tickets in queue order: priority first (urgent on top), then oldest first."""
    unknown = set(statuses) - set(TICKET_STATUSES)
    if unknown:
        raise ValueError(f"unknown status {sorted(unknown)}: use {', '.join(TICKET_STATUSES)}")
    stmt = (
        sa.select(tickets)
        .where(tickets.c.status.in_(list(statuses)))
        .order_by(tickets.c.priority, tickets.c.created_at, tickets.c.ticket_id)
        .limit(limit)
    )
    return [_ticket(row) for row in conn.execute(stmt)]


def queue_position(*, conn: Connection, ticket: Ticket) -> int:
    """1-based place among queued tickets (0 when the ticket is not queued)."""
    if ticket.status != "queued":
        return 0
    ahead = sa.or_(
        tickets.c.priority < ticket.priority,
        sa.and_(
            tickets.c.priority == ticket.priority,
            sa.or_(
                tickets.c.created_at < ticket.created_at,
                sa.and_(tickets.c.created_at == ticket.created_at,
                        tickets.c.ticket_id < ticket.ticket_id),
            ),
        ),
    )
    stmt = sa.select(sa.func.count()).select_from(tickets).where(
        tickets.c.status == "queued", ahead
    )
    return int(conn.execute(stmt).scalar_one()) + 1


def claim_ticket(*, conn: Connection, ticket_id: int, agent: str) -> bool:
    """Assigns a queued ticket to the agent. Of concurrent claims exactly one wins.

    Returns:
        Whether this agent got it (False: taken by someone else, resolved, missing).
    """
    now = utcnow()
    stmt = (
        sa.update(tickets)
        .where(tickets.c.ticket_id == ticket_id, tickets.c.status == "queued")
        .values(status="assigned", agent=agent, updated_at=now, claimed_at=now, overdue_at=None)
    )
    if conn.execute(stmt).rowcount != 1:
        return False
    add_event(conn=conn, ticket_id=ticket_id, event="claimed", actor=agent, target=agent, at=now)
    return True


def resolve_ticket(*, conn: Connection, ticket_id: int, agent: str) -> bool:
    """Resolves a ticket assigned to this agent.

    Returns:
        Whether it changed (False: not this agent's, not assigned, missing).
    """
    now = utcnow()
    stmt = (
        sa.update(tickets)
        .where(tickets.c.ticket_id == ticket_id, tickets.c.status == "assigned",
               tickets.c.agent == agent)
        .values(status="resolved", updated_at=now, resolved_at=now)
    )
    if conn.execute(stmt).rowcount != 1:
        return False
    add_event(conn=conn, ticket_id=ticket_id, event="resolved", actor=agent, at=now)
    return True


def touch_ticket(*, conn: Connection, ticket_id: int, agent: Optional[str] = None) -> bool:
    """Records an agent reply: the latest reply time, and the first one if it is the first.

    With ``agent``, only while the ticket is assigned to that agent, so a reply
    racing a requeue or a transfer is refused instead of recorded.

    Returns:
        Whether the ticket was updated.
    """
    now = utcnow()
    stmt = sa.update(tickets).where(tickets.c.ticket_id == ticket_id)
    if agent is not None:
        stmt = stmt.where(tickets.c.status == "assigned", tickets.c.agent == agent)
    result = conn.execute(stmt.values(
        updated_at=now, agent_replied_at=now,
        first_reply_at=sa.func.coalesce(tickets.c.first_reply_at, now),
    ))
    return result.rowcount == 1


def latest_unrated_ticket(*, conn: Connection, channel: str, sender_id: str) -> Optional[Ticket]:
    """The conversation's most recently resolved ticket that has no score yet."""
    rated = sa.select(feedback.c.ticket_id).where(feedback.c.ticket_id.is_not(None))
    stmt = (
        sa.select(tickets)
        .where(
            tickets.c.channel == channel,
            tickets.c.sender_id == sender_id,
            tickets.c.status == "resolved",
            tickets.c.ticket_id.not_in(rated),
        )
        .order_by(tickets.c.resolved_at.desc(), tickets.c.ticket_id.desc())
        .limit(1)
    )
    row = conn.execute(stmt).first()
    return None if row is None else _ticket(row)


def add_feedback(
    *,
    conn: Connection,
    channel: str,
    sender_id: str,
    score: Optional[int] = None,
    comment: Optional[str] = None,
    ticket_id: Optional[int] = None,
) -> int:
    """Stores a satisfaction score (1–5, optionally for a ticket) or a suggestion.

    Returns:
        The feedback id.

    Raises:
        ValueError: Score outside 1–5, or neither score nor comment given.
    """
    if score is not None and (isinstance(score, bool) or score not in range(1, 6)):
        raise ValueError(f"score must be 1 to 5, got {score!r}")
    if score is None and not comment:
        raise ValueError("give a score or a comment")
    result = conn.execute(
        sa.insert(feedback).values(
            ticket_id=ticket_id, channel=channel, sender_id=sender_id, score=score,
            comment=comment, created_at=utcnow(),
        )
    )
    return int(result.inserted_primary_key[0])


def feedback_for_ticket(*, conn: Connection, ticket_id: int) -> Optional[int]:
    """The score given for a ticket, or None."""
    stmt = sa.select(feedback.c.score).where(feedback.c.ticket_id == ticket_id)
    return conn.execute(stmt).scalar_one_or_none()
