"""The desk's audit log: who did what, when and from where. Never message text.

Same conventions as :mod:`walletbot.store.queries`: keyword-only, ``conn``
first, the caller owns the transaction, values always bound. The columns hold
an event name from a fixed list, a login, an address and ids: there is no
column a message could land in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, List, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from walletbot.store.rows import AUDIT_EVENTS, AuditEntry
from walletbot.store.schema import audit_log, utcnow

MAX_LIST = 500
_ACTOR_LENGTH = audit_log.c.actor.type.length
_ADDRESS_LENGTH = audit_log.c.address.type.length
_USER_LENGTH = audit_log.c.user_id.type.length


def _entry(row: Any) -> AuditEntry:
    m = row._mapping
    return AuditEntry(
        audit_id=m["audit_id"], event=m["event"], actor=m["actor"], address=m["address"],
        created_at=m["created_at"], ticket_id=m["ticket_id"], user_id=m["user_id"],
    )


def record_event(
    *,
    conn: Connection,
    event: str,
    actor: str,
    address: Optional[str] = None,
    ticket_id: Optional[int] = None,
    user_id: Optional[str] = None,
    at: Optional[datetime] = None,
) -> int:
    """Adds one entry.

    Args:
        conn: Open connection.
        event: One of :data:`~walletbot.store.rows.AUDIT_EVENTS`.
        actor: The agent's login (or a masked attempted login); cut to 64 characters.
        address: The client address; cut to 64 characters.
        ticket_id: The ticket acted on, if any.
        user_id: The wallet user acted on (account unfreeze), if any.
        at: When it happened (timezone-aware); now by default.

    Returns:
        The entry's id.

    Raises:
        ValueError: Unknown event, or an empty actor.
    """
    if event not in AUDIT_EVENTS:
        raise ValueError(f"unknown audit event {event!r}: use one of {', '.join(AUDIT_EVENTS)}")
    if not isinstance(actor, str) or not actor:
        raise ValueError("actor must be a non-empty string")
    if ticket_id is not None and (isinstance(ticket_id, bool) or not isinstance(ticket_id, int)):
        raise TypeError(f"ticket_id must be an int, not {type(ticket_id).__name__}")
    result = conn.execute(
        sa.insert(audit_log).values(
            created_at=at or utcnow(), event=event, actor=actor[:_ACTOR_LENGTH],
            address=address[:_ADDRESS_LENGTH] if address else None,
            ticket_id=ticket_id, user_id=user_id[:_USER_LENGTH] if user_id else None,
        )
    )
    return int(result.inserted_primary_key[0])


def list_events(
    *,
    conn: Connection,
    limit: int = 100,
    before_id: Optional[int] = None,
    event: Optional[str] = None,
) -> List[AuditEntry]:
    """The newest entries first.

    Args:
        conn: Open connection.
        limit: At most this many (capped at 500).
        before_id: Only entries older than this id (the next page).
        event: Only this event.

    Raises:
        ValueError: Unknown event.
    """
    if event is not None and event not in AUDIT_EVENTS:
        raise ValueError(f"unknown audit event {event!r}: use one of {', '.join(AUDIT_EVENTS)}")
    stmt = sa.select(audit_log)
    if before_id is not None:
        stmt = stmt.where(audit_log.c.audit_id < before_id)
    if event is not None:
        stmt = stmt.where(audit_log.c.event == event)
    stmt = stmt.order_by(audit_log.c.audit_id.desc()).limit(max(1, min(int(limit), MAX_LIST)))
    return [_entry(row) for row in conn.execute(stmt)]
