"""Service-level queries: overdue tickets, silent claims, wait updates, wait estimates.

Every timer fires through a conditional UPDATE whose WHERE repeats what made
it due: when two replicas run the same tick at once, the database lets one
UPDATE change the row and the other finds nothing left to change (rowcount 0),
so exactly one replica announces, requeues or writes to the user. Candidates
are updated in ticket-id order, so two replicas never wait on each other's
rows in opposite orders.

Same conventions as :mod:`walletbot.store.tickets`: keyword-only, ``conn``
first, the caller owns the transaction, values always bound.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from walletbot.store import tickets as ticket_queries
from walletbot.store.rows import Ticket, TicketEvent
from walletbot.store.schema import agent_presence, ticket_events, tickets

# The wait estimate reads the handling times of tickets resolved this recently...
HISTORY = timedelta(hours=24)
HISTORY_LIMIT = 200
# ...and needs this many of them; with fewer it assumes the configured fallback.
MIN_SAMPLES = 3
MAX_NOTICES = 50
_since = sa.func.coalesce(tickets.c.queued_at, tickets.c.created_at)


@dataclass(frozen=True)
class Estimate:
    """A queued ticket's place and expected wait.

    Attributes:
        position: 1-based place among queued tickets.
        minutes: Expected minutes until an agent takes it (at least 1).
        handling_minutes: The per-ticket handling time the estimate used.
        agents: Available agents it counted (at least 1).
        measured: Whether the handling time was measured (False: the fallback).
    """

    position: int
    minutes: int
    handling_minutes: float
    agents: int
    measured: bool

    @property
    def ahead(self) -> int:
        """Users waiting before this one."""
        return max(0, self.position - 1)


@dataclass(frozen=True)
class WaitNotice:
    """A wait update this call won the right to send."""

    ticket: Ticket
    estimate: Estimate
    overdue: bool


def _due_in_queue(now: datetime, targets: Mapping[int, timedelta]) -> Any:
    return sa.or_(*(sa.and_(tickets.c.priority == priority, _since <= now - target)
                    for priority, target in sorted(targets.items())))


def mark_overdue(*, conn: Connection, now: datetime, targets: Mapping[int, timedelta],
                 reasons: Mapping[int, str]) -> List[Ticket]:
    """Marks queued tickets past their priority's target as overdue, with an event each.

    Args:
        conn: Open connection.
        now: The current time (UTC, aware).
        targets: ``{priority: longest wait}``.
        reasons: ``{priority: reason}`` for the ``overdue`` event.

    Returns:
        The tickets this call marked (each is marked by exactly one caller).
    """
    due = sa.and_(tickets.c.status == "queued", tickets.c.overdue_at.is_(None),
                  _due_in_queue(now, targets))
    ids = conn.execute(sa.select(tickets.c.ticket_id).where(due)
                       .order_by(tickets.c.ticket_id)).scalars().all()
    marked = []
    for ticket_id in ids:
        won = conn.execute(sa.update(tickets).where(tickets.c.ticket_id == ticket_id, due)
                           .values(overdue_at=now)).rowcount == 1
        if not won:
            continue
        ticket = ticket_queries.get_ticket(conn=conn, ticket_id=ticket_id)
        ticket_queries.add_event(conn=conn, ticket_id=ticket_id, event="overdue", actor="system",
                                 reason=reasons.get(ticket.priority), at=now)
        marked.append(ticket)
    return marked


def _silent_claim(now: datetime, target: timedelta) -> Any:
    # No reply of the current agent since the claim (an earlier agent's reply
    # is older than claimed_at and does not count).
    return sa.and_(
        tickets.c.status == "assigned", tickets.c.claimed_at.is_not(None),
        tickets.c.claimed_at <= now - target,
        sa.or_(tickets.c.agent_replied_at.is_(None),
               tickets.c.agent_replied_at < tickets.c.claimed_at),
    )


def requeue_silent(*, conn: Connection, now: datetime, target: timedelta,
                   reason: str) -> List[Tuple[Ticket, str]]:
    """Returns claimed tickets whose agent has not replied within ``target`` to the queue.

    One UPDATE per ticket sets it queued, without agent, with fresh queue
    clocks, for the claim it found (same agent, same claim time); a
    ``requeued`` event (actor ``system``, target the agent) says why.

    Returns:
        ``(ticket as requeued, agent it was taken from)`` for each ticket this call moved.
    """
    silent = _silent_claim(now, target)
    found = conn.execute(
        sa.select(tickets.c.ticket_id, tickets.c.agent, tickets.c.claimed_at).where(silent)
        .order_by(tickets.c.ticket_id)
    ).all()
    moved = []
    for ticket_id, agent, claimed_at in found:
        stmt = (
            sa.update(tickets)
            .where(tickets.c.ticket_id == ticket_id, silent, tickets.c.agent == agent,
                   tickets.c.claimed_at == claimed_at)
            .values(status="queued", agent=None, queued_at=now, overdue_at=None,
                    claimed_at=None, updated_at=now)
        )
        if conn.execute(stmt).rowcount != 1:
            continue
        ticket_queries.add_event(conn=conn, ticket_id=ticket_id, event="requeued", actor="system",
                                 target=agent, reason=reason, at=now)
        moved.append((ticket_queries.get_ticket(conn=conn, ticket_id=ticket_id), agent))
    return moved


def handling_minutes(*, conn: Connection, now: datetime,
                     history: timedelta = HISTORY) -> Optional[float]:
    """Median minutes from claim to resolution of tickets resolved within ``history``.

    None with fewer than :data:`MIN_SAMPLES` such tickets. The median, because
    one ticket left open over lunch must not double everybody's estimate.
    """
    stmt = (
        sa.select(tickets.c.claimed_at, tickets.c.resolved_at)
        .where(tickets.c.status == "resolved", tickets.c.resolved_at >= now - history,
               tickets.c.claimed_at.is_not(None))
        .order_by(tickets.c.resolved_at.desc()).limit(HISTORY_LIMIT)
    )
    spans = [(resolved - claimed).total_seconds() / 60 for claimed, resolved in conn.execute(stmt)
             if resolved >= claimed]
    return statistics.median(spans) if len(spans) >= MIN_SAMPLES else None


def agents_available(*, conn: Connection, now: datetime, seen_within: timedelta) -> int:
    """Agents switched to available whose console was seen within ``seen_within`` (at least 1)."""
    stmt = sa.select(sa.func.count()).select_from(agent_presence).where(
        agent_presence.c.available.is_(sa.true()),
        agent_presence.c.last_seen_at >= now - seen_within)
    return max(1, int(conn.execute(stmt).scalar_one()))


@dataclass(frozen=True)
class Pace:
    """How fast the desk works now: the inputs of every estimate in one tick."""

    handling_minutes: float
    agents: int
    measured: bool

    def estimate(self, position: int) -> Estimate:
        """The estimate for a ticket at ``position`` (1-based)."""
        minutes = max(1, math.ceil(position * self.handling_minutes / self.agents))
        return Estimate(position=position, minutes=minutes, handling_minutes=self.handling_minutes,
                        agents=self.agents, measured=self.measured)


def pace(*, conn: Connection, now: datetime, fallback_minutes: float,
         seen_within: timedelta) -> Pace:
    """Measured handling time (or ``fallback_minutes``) and available agents."""
    measured = handling_minutes(conn=conn, now=now)
    return Pace(handling_minutes=fallback_minutes if measured is None else measured,
                agents=agents_available(conn=conn, now=now, seen_within=seen_within),
                measured=measured is not None)


def estimate_wait(*, conn: Connection, ticket: Ticket, now: datetime, fallback_minutes: float,
                  seen_within: timedelta) -> Estimate:
    """The queued ticket's place and expected wait (place 0 and 0 minutes once claimed)."""
    position = ticket_queries.queue_position(conn=conn, ticket=ticket)
    if position == 0:
        return Estimate(0, 0, 0.0, 1, False)
    return pace(conn=conn, now=now, fallback_minutes=fallback_minutes,
                seen_within=seen_within).estimate(position)


def record_wait_told(*, conn: Connection, ticket_id: int, minutes: Optional[int],
                     now: datetime) -> None:
    """Notes that the user was just told ``minutes`` (the handoff message, a requeue).

    ``None``: they were told something without a wait (off duty); the next
    update once agents are on duty is then news.
    """
    conn.execute(sa.update(tickets).where(tickets.c.ticket_id == ticket_id)
                 .values(wait_notice_at=now, wait_estimate_minutes=minutes))


def estimate_moved(told: Optional[int], new: int) -> bool:
    """Whether ``new`` differs enough from the ``told`` minutes to be worth a message.

    At least 2 minutes and a third of what was told: 30 → 22 is news, 30 → 28 is not.
    """
    if told is None:
        return True
    return abs(new - told) >= max(2.0, told / 3)


def claim_wait_notices(*, conn: Connection, now: datetime, interval: timedelta,
                       fallback_minutes: float, seen_within: timedelta,
                       limit: int = 500) -> List[WaitNotice]:
    """Wait updates due now, each claimed by this call before it is sent.

    A queued ticket gets one when its user was not told anything within
    ``interval`` and either it went overdue since they were last told, or the
    estimate moved (:func:`estimate_moved`) from what they were last told.
    Nothing else: a user whose wait stands still is not told so again and again.
    """
    # Queue order, as queue_position counts it: the index is the place.
    queued = ticket_queries.list_tickets(conn=conn, statuses=("queued",), limit=limit)
    if not queued:
        return []
    told_by_id = told_minutes(conn=conn, ticket_ids=[t.ticket_id for t in queued])
    speed = pace(conn=conn, now=now, fallback_minutes=fallback_minutes, seen_within=seen_within)
    cutoff = now - interval
    due = []
    for position, ticket in enumerate(queued, start=1):
        told = told_by_id.get(ticket.ticket_id)
        if ticket.wait_notice_at is not None and ticket.wait_notice_at > cutoff:
            continue
        estimate = speed.estimate(position)
        went_overdue = ticket.overdue_at is not None and (
            ticket.wait_notice_at is None or ticket.wait_notice_at < ticket.overdue_at)
        if went_overdue or estimate_moved(told, estimate.minutes):
            due.append(WaitNotice(ticket=ticket, estimate=estimate,
                                  overdue=ticket.overdue_at is not None))
    won = []
    for notice in sorted(due, key=lambda n: n.ticket.ticket_id):
        stmt = (
            sa.update(tickets)
            .where(tickets.c.ticket_id == notice.ticket.ticket_id, tickets.c.status == "queued",
                   sa.or_(tickets.c.wait_notice_at.is_(None), tickets.c.wait_notice_at <= cutoff))
            .values(wait_notice_at=now, wait_estimate_minutes=notice.estimate.minutes)
        )
        if conn.execute(stmt).rowcount == 1:
            won.append(notice)
    return won


def requeue_notices(*, conn: Connection, agent: str, after_id: Optional[int] = None,
                    since: Optional[datetime] = None,
                    limit: int = MAX_NOTICES) -> List[TicketEvent]:
    """``requeued`` events of tickets taken from ``agent`` by the timer, oldest first.

    Args:
        after_id: Only events after this id (the console's cursor).
        since: Only events at or after this time (a console's first look).
    """
    stmt = sa.select(ticket_events).where(ticket_events.c.event == "requeued",
                                          ticket_events.c.actor == "system",
                                          ticket_events.c.target == agent)
    if after_id is not None:
        stmt = stmt.where(ticket_events.c.event_id > after_id)
    if since is not None:
        stmt = stmt.where(ticket_events.c.created_at >= since)
    stmt = stmt.order_by(ticket_events.c.event_id.desc()).limit(limit)
    return [TicketEvent(**dict(row._mapping)) for row in reversed(conn.execute(stmt).all())]


def last_event_id(*, conn: Connection) -> int:
    """The newest ticket event's id (0 without events): where a console starts reading."""
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(ticket_events.c.event_id), 0)))
               .scalar_one())


def told_minutes(*, conn: Connection, ticket_ids: Sequence[int]) -> Mapping[int, Optional[int]]:
    """The wait each ticket's user was last told, by ticket id."""
    if not ticket_ids:
        return {}
    stmt = sa.select(tickets.c.ticket_id, tickets.c.wait_estimate_minutes).where(
        tickets.c.ticket_id.in_(list(ticket_ids)))
    return {ticket_id: minutes for ticket_id, minutes in conn.execute(stmt)}
