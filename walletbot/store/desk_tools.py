"""Queries of the agents' tools: transfer, internal notes, capacity, auto-assignment, presence.

Same conventions as :mod:`walletbot.store.tickets`: keyword-only, ``conn``
first, the caller owns the transaction, values always bound.

Capacity is checked and used in one transaction under a lock, so two claims
or transfers that each see an agent one ticket below the cap cannot both
land: on PostgreSQL a transaction-scoped advisory lock per agent (READ
COMMITTED then shows the winner's commit to the count that follows), on
SQLite the database's write lock, taken before the count (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Dict, List, Mapping, Optional, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from walletbot.privacy import mask_pii
from walletbot.store import queries
from walletbot.store import tickets as ticket_queries
from walletbot.store.rows import Ticket, TicketEvent, TicketNote
from walletbot.store.schema import agent_presence, ticket_events, ticket_notes, tickets, utcnow

MAX_REASON = 200
MAX_NOTE = 1000
MAX_NOTES = 200
# Advisory lock key spaces (pg_advisory_xact_lock(int, int)): "desk" + an agent's
# hash; "asgn" + 0 for the auto-assigner.
_AGENT_LOCKS = 0x6465736B
_ASSIGNER_LOCK = 0x6173676E
# Queued tickets one auto-assignment round looks at (oldest first).
_ASSIGN_LOOKAHEAD = 20

# Outcomes of claim_within_cap and transfer_ticket.
CLAIMED, TAKEN, FULL = "claimed", "taken", "full"
TRANSFERRED, REQUEUED = "transferred", "requeued"
FORBIDDEN, CLOSED, ALREADY_QUEUED, SAME_AGENT, CHANGED = (
    "forbidden", "closed", "already_queued", "same_agent", "changed",
)


def _signed32(value: int) -> int:
    return value - 2**32 if value >= 2**31 else value


def _write_lock(conn: Connection, space: int, key: str) -> None:
    """Serialises this transaction against others that take the same lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:space, :key)"),
                     {"space": space, "key": _signed32(zlib.crc32(key.encode("utf-8")))})
    elif conn.dialect.name == "sqlite":
        # pysqlite opens its transaction only at the first write; until then a
        # count would read outside any lock. Inside one, the write lock is ours.
        if not conn.connection.dbapi_connection.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def lock_agent(*, conn: Connection, login: str) -> None:
    """Holds ``login``'s capacity lock until the transaction ends."""
    _write_lock(conn, _AGENT_LOCKS, login)


def agent_load(*, conn: Connection, login: str) -> int:
    """Tickets the agent holds now (assigned, not resolved)."""
    stmt = sa.select(sa.func.count()).select_from(tickets).where(
        tickets.c.status == "assigned", tickets.c.agent == login)
    return int(conn.execute(stmt).scalar_one())


def agent_loads(*, conn: Connection) -> Dict[str, int]:
    """Held tickets per agent login (agents holding none are absent)."""
    stmt = (sa.select(tickets.c.agent, sa.func.count()).where(tickets.c.status == "assigned")
            .group_by(tickets.c.agent))
    return {agent: int(count) for agent, count in conn.execute(stmt) if agent}


def _insert_presence(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(agent_presence)


def _upsert_presence(conn: Connection, login: str, *, insert: Dict[str, Any],
                     update: Dict[str, Any]) -> None:
    stmt = _insert_presence(conn).values(login=login, **insert)
    conn.execute(stmt.on_conflict_do_update(index_elements=[agent_presence.c.login], set_=update))


def _mark_assigned(conn: Connection, login: str, now: datetime) -> None:
    _upsert_presence(conn, login, insert={"last_seen_at": now, "last_assigned_at": now},
                     update={"last_assigned_at": now})


def claim_within_cap(*, conn: Connection, ticket_id: int, agent: str, cap: int) -> str:
    """Claims a queued ticket unless the agent already holds ``cap`` tickets.

    Returns:
        :data:`CLAIMED`; :data:`FULL` (at the cap, nothing changed); or
        :data:`TAKEN` (someone was first, or it is resolved or missing).
    """
    lock_agent(conn=conn, login=agent)
    if agent_load(conn=conn, login=agent) >= cap:
        return FULL
    if not ticket_queries.claim_ticket(conn=conn, ticket_id=ticket_id, agent=agent):
        return TAKEN
    _mark_assigned(conn, agent, utcnow())
    return CLAIMED


@dataclass(frozen=True)
class TransferResult:
    """What :func:`transfer_ticket` did.

    Attributes:
        outcome: :data:`TRANSFERRED` or :data:`REQUEUED` when it changed, else
            why not: :data:`FORBIDDEN`, :data:`CLOSED`, :data:`ALREADY_QUEUED`,
            :data:`SAME_AGENT`, :data:`FULL`, :data:`CHANGED` (moved meanwhile).
        before: The ticket as it was (None when missing).
    """

    outcome: str
    before: Optional[Ticket] = None

    @property
    def moved(self) -> bool:
        return self.outcome in (TRANSFERRED, REQUEUED)


def _unchanged(ticket: Ticket) -> Any:
    """A WHERE clause true only while the ticket is as ``ticket`` shows it."""
    holder = (tickets.c.agent.is_(None) if ticket.agent is None
              else tickets.c.agent == ticket.agent)
    return sa.and_(tickets.c.ticket_id == ticket.ticket_id,
                   tickets.c.status == ticket.status, holder)


def transfer_ticket(
    *, conn: Connection, ticket_id: int, actor: str, to: Optional[str], reason: str,
    cap: int = 0, may_move_any: bool = False,
) -> TransferResult:
    """Hands an open ticket to agent ``to``, or back to the queue (``to=None``).

    The ticket's holder may move it; with ``may_move_any`` (a supervisor) so
    may the actor for any open ticket, queued or held. The update applies only
    if the ticket is still as read, so of a concurrent claim, transfer or
    resolve exactly one wins. ``reason`` is stored PII-masked with the event.

    Args:
        conn: Open connection.
        ticket_id: The ticket.
        actor: Login of the agent moving it.
        to: Login of the receiving agent (its account must exist: the caller
            checks), or None for the queue.
        reason: Why (1 to :data:`MAX_REASON` characters).
        cap: The receiving agent's concurrent-ticket cap (ignored for the queue).
        may_move_any: The actor may move tickets that are not theirs.

    Raises:
        ValueError: Empty or too long reason, or no positive cap for an agent.
    """
    reason = (reason or "").strip()
    if not 0 < len(reason) <= MAX_REASON:
        raise ValueError(f"reason must be 1 to {MAX_REASON} characters")
    if to is not None:
        if cap <= 0:
            raise ValueError("give the receiving agent's cap")
        lock_agent(conn=conn, login=to)
    ticket = ticket_queries.get_ticket(conn=conn, ticket_id=ticket_id)
    if ticket is None or ticket.status == "resolved":
        return TransferResult(CLOSED, ticket)
    held = ticket.status == "assigned" and ticket.agent == actor
    if not (held or may_move_any):
        return TransferResult(FORBIDDEN, ticket)
    if to is None and ticket.status == "queued":
        return TransferResult(ALREADY_QUEUED, ticket)
    if to is not None and ticket.status == "assigned" and ticket.agent == to:
        return TransferResult(SAME_AGENT, ticket)
    if to is not None and agent_load(conn=conn, login=to) >= cap:
        return TransferResult(FULL, ticket)
    now = utcnow()
    if to is None:
        values: Dict[str, Any] = dict(status="queued", agent=None, queued_at=now,
                                      claimed_at=None, overdue_at=None, updated_at=now)
    else:
        values = dict(status="assigned", agent=to, claimed_at=now, overdue_at=None,
                      updated_at=now)
    if conn.execute(sa.update(tickets).where(_unchanged(ticket)).values(**values)).rowcount != 1:
        return TransferResult(CHANGED, ticket)
    if to is None:
        ticket_queries.add_event(conn=conn, ticket_id=ticket_id, event="requeued", actor=actor,
                                 target=ticket.agent, reason=reason, at=now)
        return TransferResult(REQUEUED, ticket)
    ticket_queries.add_event(conn=conn, ticket_id=ticket_id, event="transferred", actor=actor,
                             target=to, reason=reason, at=now)
    _mark_assigned(conn, to, now)
    return TransferResult(TRANSFERRED, ticket)


def latest_handover(*, conn: Connection, ticket_id: int) -> Optional[TicketEvent]:
    """The ticket's newest change of hands (claim, assignment, transfer, requeue), if any."""
    stmt = (sa.select(ticket_events)
            .where(ticket_events.c.ticket_id == ticket_id,
                   ticket_events.c.event.in_(("claimed", "assigned", "transferred", "requeued")))
            .order_by(ticket_events.c.event_id.desc()).limit(1))
    row = conn.execute(stmt).first()
    return None if row is None else TicketEvent(**dict(row._mapping))


# --- internal notes ------------------------------------------------------------

def _note(row: Any) -> TicketNote:
    m = row._mapping
    return TicketNote(note_id=m["note_id"], ticket_id=m["ticket_id"], agent=m["agent"],
                      text=m["text"], created_at=m["created_at"])


def add_note(*, conn: Connection, ticket_id: int, agent: str, text: str) -> TicketNote:
    """Stores an agent's internal note, PII-masked. It is never shown to the user.

    Raises:
        ValueError: Empty, or longer than :data:`MAX_NOTE` characters.
    """
    text = (text or "").strip()
    if not 0 < len(text) <= MAX_NOTE:
        raise ValueError(f"a note must be 1 to {MAX_NOTE} characters")
    now = utcnow()
    result = conn.execute(sa.insert(ticket_notes).values(
        ticket_id=ticket_id, agent=agent, text=mask_pii(text), created_at=now))
    row = conn.execute(sa.select(ticket_notes).where(
        ticket_notes.c.note_id == result.inserted_primary_key[0])).first()
    return _note(row)


def notes_of(*, conn: Connection, ticket_id: int, limit: int = MAX_NOTES) -> List[TicketNote]:
    """The ticket's notes, oldest first (the newest ``limit``)."""
    stmt = (sa.select(ticket_notes).where(ticket_notes.c.ticket_id == ticket_id)
            .order_by(ticket_notes.c.note_id.desc()).limit(limit))
    return list(reversed([_note(row) for row in conn.execute(stmt)]))


# --- presence --------------------------------------------------------------------

@dataclass(frozen=True)
class Presence:
    """An agent's row in ``agent_presence``."""

    login: str
    last_seen_at: datetime
    available: bool
    last_assigned_at: Optional[datetime] = None

    def online(self, now: datetime, window: timedelta) -> bool:
        """Whether their console was seen within ``window``."""
        return self.last_seen_at >= now - window


def record_seen(*, conn: Connection, login: str, at: Optional[datetime] = None) -> None:
    """Notes that the agent's console is open (new agents start available)."""
    now = at or utcnow()
    _upsert_presence(conn, login, insert={"last_seen_at": now}, update={"last_seen_at": now})


def set_available(*, conn: Connection, login: str, available: bool) -> None:
    """The agent's own 接单 / 暂停接单 switch (also counts as seen)."""
    if not isinstance(available, bool):
        raise TypeError(f"available must be a bool, not {type(available).__name__}")
    now = utcnow()
    _upsert_presence(conn, login, insert={"last_seen_at": now, "available": available},
                     update={"last_seen_at": now, "available": available})


def presence_of(*, conn: Connection) -> Dict[str, Presence]:
    """Every agent's presence row, by login."""
    rows = conn.execute(sa.select(agent_presence))
    return {m["login"]: Presence(m["login"], m["last_seen_at"], bool(m["available"]),
                                 m["last_assigned_at"])
            for m in (row._mapping for row in rows)}


def desk_overview(*, conn: Connection) -> Tuple[Dict[str, Presence], Dict[str, int]]:
    """Presence and load of every agent, read together."""
    return presence_of(conn=conn), agent_loads(conn=conn)


# --- automatic assignment -----------------------------------------------------------

def _queued_candidates(conn: Connection) -> List[Tuple[int, Optional[str]]]:
    """``(ticket_id, agent it was last taken from)`` of the oldest queued tickets, in queue order."""
    taken_from = (
        sa.select(ticket_events.c.target)
        .where(ticket_events.c.ticket_id == tickets.c.ticket_id,
               ticket_events.c.event == "requeued")
        .order_by(ticket_events.c.event_id.desc()).limit(1)
        .scalar_subquery()
    )
    stmt = (
        sa.select(tickets.c.ticket_id, taken_from)
        .where(tickets.c.status == "queued")
        # The queue's one order (tickets.list_tickets, queue_position): a requeued
        # ticket keeps its place, as its user was told.
        .order_by(tickets.c.priority, tickets.c.created_at, tickets.c.ticket_id)
        .limit(_ASSIGN_LOOKAHEAD)
    )
    return [(int(ticket_id), target) for ticket_id, target in conn.execute(stmt)]


def _ranked_agents(conn: Connection, caps: Mapping[str, int], now: datetime,
                   window: timedelta) -> List[str]:
    """Available agents under their cap: least loaded first, then longest since an assignment."""
    presence, loads = desk_overview(conn=conn)
    epoch = datetime.min.replace(tzinfo=now.tzinfo)
    ready = [p for login, p in presence.items()
             if login in caps and p.available and p.online(now, window)
             and loads.get(login, 0) < caps[login]]
    ready.sort(key=lambda p: (loads.get(p.login, 0), p.last_assigned_at or epoch, p.login))
    return [p.login for p in ready]


def auto_assign_one(
    *, conn: Connection, caps: Mapping[str, int], window: timedelta,
    now: Optional[datetime] = None,
) -> Optional[Tuple[int, str]]:
    """Assigns the oldest queued ticket to the least-loaded available agent.

    Available: the agent's switch is on, their console was seen within
    ``window``, and they hold fewer tickets than their cap. A ticket is not
    given back to the agent it was last requeued from. One ticket per call (one
    transaction), so the caller loops; auto-assigners of all replicas are
    serialised by a lock, and the update applies only to a still-queued ticket,
    so a ticket is never assigned twice.

    Args:
        conn: Open connection.
        caps: The desk's agents (login → concurrent-ticket cap); others are ignored.
        window: How recently a console must have been seen.
        now: The current time (tests).

    Returns:
        ``(ticket_id, agent)`` of the assignment, or None when nothing fits.
    """
    now = now or utcnow()
    waiting = sa.select(tickets.c.ticket_id).where(tickets.c.status == "queued").limit(1)
    if conn.execute(waiting).first() is None:
        return None  # the usual tick: no lock taken, no writer held up
    _write_lock(conn, _ASSIGNER_LOCK, "")
    agents = _ranked_agents(conn, caps, now, window)
    if not agents:
        return None
    for ticket_id, taken_from in _queued_candidates(conn):
        for agent in agents:
            if agent == taken_from:
                continue
            # A claim by this agent may have landed since the ranking.
            lock_agent(conn=conn, login=agent)
            if agent_load(conn=conn, login=agent) >= caps[agent]:
                continue
            stmt = (sa.update(tickets)
                    .where(tickets.c.ticket_id == ticket_id, tickets.c.status == "queued")
                    .values(status="assigned", agent=agent, claimed_at=now, overdue_at=None,
                            updated_at=now))
            if conn.execute(stmt).rowcount != 1:
                break  # claimed meanwhile: the next ticket
            ticket_queries.add_event(conn=conn, ticket_id=ticket_id, event="assigned",
                                     actor="system", target=agent, at=now)
            _mark_assigned(conn, agent, now)
            return ticket_id, agent
    return None



# --- unfreezing ------------------------------------------------------------------

UNFROZEN, NOT_FROZEN, NO_USER, NOT_HELD = "unfrozen", "not_frozen", "no_user", "not_held"


def lift_freeze(*, conn: Connection, user_id: str, ticket_id: int, agent: str, note: str) -> str:
    """Unfreezes the user's account and leaves ``note`` (how it was verified) on the ticket.

    Returns:
        :data:`UNFROZEN`; :data:`NOT_FROZEN` (nothing changed, also when a
        colleague was first); :data:`NO_USER` (no such user); :data:`NOT_HELD`
        (the ticket is no longer ``agent``'s or no longer this user's: taken
        back or transferred since the caller looked).
    """
    held = conn.execute(sa.select(tickets.c.ticket_id).where(
        tickets.c.ticket_id == ticket_id, tickets.c.status == "assigned",
        tickets.c.agent == agent, tickets.c.user_id == user_id)).first()
    if held is None:
        return NOT_HELD
    user = queries.get_user(conn=conn, user_id=user_id)
    if user is None:
        return NO_USER
    if not user.frozen or not queries.set_frozen(conn=conn, user_id=user_id, frozen=False):
        return NOT_FROZEN
    add_note(conn=conn, ticket_id=ticket_id, agent=agent, text=note)
    return UNFROZEN
