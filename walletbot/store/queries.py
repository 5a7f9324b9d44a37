"""Queries on the wallet database.

Every function takes keyword arguments only, ``conn`` (a SQLAlchemy
``Connection``) first, and leaves transaction control to the caller
(``with engine.begin() as conn: ...``). Values are always bound parameters.
"""

from __future__ import annotations

import functools
from typing import Any, List, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from walletbot.store.rows import CHANNELS, TX_TYPES, Transaction, User
from walletbot.store.schema import bindings, transactions, users, utcnow

MAX_RECENT = 50

_USER_COLUMNS = (users.c.user_id, users.c.name, users.c.frozen, users.c.frozen_at,
                 users.c.created_at)
_MAX_ID_LENGTH = {
    "user_id": users.c.user_id.type.length,
    "sender_id": bindings.c.sender_id.type.length,
    "order_id": transactions.c.order_id.type.length,
}


@functools.lru_cache(maxsize=None)
def _user_for_sender_stmt() -> Any:
    # Built once: building a statement and its cache key cost twice its run on
    # SQLite, and every action that needs the user runs this one (bench/RESULTS.md).
    return (
        sa.select(*_USER_COLUMNS)
        .select_from(bindings.join(users, bindings.c.user_id == users.c.user_id))
        .where(bindings.c.channel == sa.bindparam("channel"),
               bindings.c.sender_id == sa.bindparam("sender_id"))
    )


@functools.lru_cache(maxsize=None)
def _transaction_stmt() -> Any:
    return sa.select(transactions).where(
        transactions.c.order_id == sa.bindparam("order_id"),
        transactions.c.user_id == sa.bindparam("user_id"),
    )


def _user(row: Any) -> User:
    m = row._mapping
    return User(
        user_id=m["user_id"],
        name=m["name"],
        frozen=bool(m["frozen"]),
        frozen_at=m["frozen_at"],
        created_at=m["created_at"],
    )


def _transaction(row: Any) -> Transaction:
    m = row._mapping
    return Transaction(
        order_id=m["order_id"],
        user_id=m["user_id"],
        tx_type=m["tx_type"],
        amount=m["amount"],
        currency=m["currency"],
        method=m["method"],
        status=m["status"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        failure_reason=m["failure_reason"],
        destination=m["destination"],
        note=m["note"],
    )


def _check_str(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")


def _findable(name: str, value: Any) -> bool:
    """Whether a lookup by this id can match at all (else: answer None, no query)."""
    _check_str(name, value)
    return 0 < len(value) <= _MAX_ID_LENGTH[name]


def _check_channel(channel: Any) -> None:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}: use one of {', '.join(CHANNELS)}")


def get_user(*, conn: Connection, user_id: str) -> Optional[User]:
    """The user with this id.

    Args:
        conn: Open connection.
        user_id: E.g. ``"U1001"``.

    Returns:
        The user, or ``None`` if there is none.
    """
    if not _findable("user_id", user_id):
        return None
    row = conn.execute(sa.select(*_USER_COLUMNS).where(users.c.user_id == user_id)).first()
    return None if row is None else _user(row)


def get_user_for_sender(*, conn: Connection, channel: str, sender_id: str) -> Optional[User]:
    """The user bound to a channel's sender id.

    Args:
        conn: Open connection.
        channel: ``"rest"``, ``"wechat"`` or ``"web"``.
        sender_id: The channel's id of the sender (REST sender, WeChat OpenID,
            web login subject).

    Returns:
        The bound user, or ``None`` if the sender is not bound.

    Raises:
        ValueError: Unknown channel.
    """
    _check_channel(channel)
    if not _findable("sender_id", sender_id):
        return None
    row = conn.execute(_user_for_sender_stmt(),
                       {"channel": channel, "sender_id": sender_id}).first()
    return None if row is None else _user(row)


def bind_sender(*, conn: Connection, channel: str, sender_id: str, user_id: str) -> None:
    """Binds a channel's sender id to a user; rebinding moves it to ``user_id``.

    Idempotent: binding the same sender to the same user again changes nothing.

    Args:
        conn: Open connection (commit it to keep the binding).
        channel: ``"rest"``, ``"wechat"`` or ``"web"``.
        sender_id: The channel's id of the sender.
        user_id: An existing user.

    Raises:
        ValueError: Unknown channel, empty or too long sender id, or no such user.
    """
    _check_channel(channel)
    if not _findable("sender_id", sender_id):
        raise ValueError(
            f"sender_id must be 1 to {_MAX_ID_LENGTH['sender_id']} characters, "
            f"got {len(sender_id)}"
        )
    if get_user(conn=conn, user_id=user_id) is None:
        raise ValueError(f"no user {user_id!r}: create the user before binding a sender to it")
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(bindings).values(
        channel=channel, sender_id=sender_id, user_id=user_id, created_at=utcnow()
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[bindings.c.channel, bindings.c.sender_id],
        set_={"user_id": stmt.excluded.user_id},
        where=bindings.c.user_id != stmt.excluded.user_id,
    )
    conn.execute(stmt)


def unbind_sender(*, conn: Connection, channel: str, sender_id: str) -> bool:
    """Removes a channel's sender binding (a web session at logout); idempotent.

    Args:
        conn: Open connection (commit it to make the removal stick).
        channel: ``"rest"``, ``"wechat"`` or ``"web"``.
        sender_id: The channel's id of the sender.

    Returns:
        Whether a binding was removed (False: there was none).

    Raises:
        ValueError: Unknown channel.
    """
    _check_channel(channel)
    if not _findable("sender_id", sender_id):
        return False
    result = conn.execute(
        sa.delete(bindings).where(bindings.c.channel == channel, bindings.c.sender_id == sender_id)
    )
    return bool(result.rowcount)


def get_transaction(*, conn: Connection, order_id: str, user_id: str) -> Optional[Transaction]:
    """The user's transaction with this order id.

    An order of another user is not found, exactly like a missing one, so
    nothing about other users' orders can leak.

    Args:
        conn: Open connection.
        order_id: E.g. ``"WD202611180002"`` (matched exactly).
        user_id: The asking user.

    Returns:
        The transaction, or ``None`` if the user has no order with this id.
    """
    if not (_findable("order_id", order_id) and _findable("user_id", user_id)):
        return None
    row = conn.execute(_transaction_stmt(), {"order_id": order_id, "user_id": user_id}).first()
    return None if row is None else _transaction(row)


def recent_transactions(
    *,
    conn: Connection,
    user_id: str,
    tx_type: Optional[str] = None,
    limit: int = 5,
) -> List[Transaction]:
    """The user's latest transactions, newest first.

    Args:
        conn: Open connection.
        user_id: The asking user.
        tx_type: Only this type (``topup``, ``withdraw``, ``transfer``,
            ``refund``); all types when ``None``.
        limit: How many at most, 1 to 50.

    Returns:
        Up to ``limit`` transactions, newest ``created_at`` first.

    Raises:
        ValueError: ``tx_type`` or ``limit`` out of range.
    """
    if tx_type is not None and tx_type not in TX_TYPES:
        raise ValueError(f"unknown tx_type {tx_type!r}: use one of {', '.join(TX_TYPES)} or None")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RECENT:
        raise ValueError(f"limit must be an int from 1 to {MAX_RECENT}, got {limit!r}")
    if not _findable("user_id", user_id):
        return []
    stmt = sa.select(transactions).where(transactions.c.user_id == user_id)
    if tx_type is not None:
        stmt = stmt.where(transactions.c.tx_type == tx_type)
    stmt = stmt.order_by(
        transactions.c.created_at.desc(), transactions.c.order_id.desc()
    ).limit(limit)
    return [_transaction(row) for row in conn.execute(stmt)]


def set_frozen(*, conn: Connection, user_id: str, frozen: bool = True) -> bool:
    """Freezes (or unfreezes) a user's account.

    Args:
        conn: Open connection (commit it to keep the change).
        user_id: The user.
        frozen: ``True`` to freeze (records ``frozen_at``), ``False`` to unfreeze.

    Returns:
        Whether a row changed: ``False`` if the user does not exist or already
        was in that state.
    """
    if not isinstance(frozen, bool):
        raise TypeError(f"frozen must be a bool, not {type(frozen).__name__}")
    if not _findable("user_id", user_id):
        return False
    stmt = (
        sa.update(users)
        .where(users.c.user_id == user_id, users.c.frozen != frozen)
        .values(frozen=frozen, frozen_at=utcnow() if frozen else None)
    )
    return conn.execute(stmt).rowcount > 0
