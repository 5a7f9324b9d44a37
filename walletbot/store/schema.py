"""Tables of the wallet database (SQLAlchemy Core).

Datetimes go through :class:`UTCDateTime`: PostgreSQL stores ``timestamptz``,
SQLite stores naive UTC text; both come back timezone-aware in UTC. Amounts go
through :class:`Money`: ``NUMERIC(12, 2)``, always a ``Decimal`` with two places.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from walletbot.store.rows import (
    AUDIT_EVENTS,
    CHANNELS,
    TICKET_CATEGORIES,
    TICKET_STATUSES,
    TX_STATUSES,
    TX_TYPES,
)

_CENT = Decimal("0.01")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timezone-aware datetime, stored as UTC on every backend.

    Naive datetimes are refused on the way in, because their zone is a guess.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value!r}: pass a timezone-aware one, "
                "e.g. datetime.now(timezone.utc)"
            )
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            # SQLite keeps text without an offset: store the UTC wall time.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Optional[datetime], dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Money(TypeDecorator):
    """``NUMERIC(12, 2)`` read and written as ``Decimal`` with exactly two places.

    On SQLite (no native decimal) the value travels as a float, which is exact
    to the cent for 12 digits, and is quantized back to a ``Decimal``.
    """

    impl = sa.Numeric(12, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Numeric(12, 2, asdecimal=False))
        return dialect.type_descriptor(sa.Numeric(12, 2))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
            raise TypeError(
                f"amount must be a Decimal, int or str, not {type(value).__name__} "
                "(floats lose cents)"
            )
        try:
            amount = Decimal(value)
            cents = amount.quantize(_CENT)
        except InvalidOperation:
            raise ValueError(f"amount {value!r} is not a number") from None
        if cents != amount:
            raise ValueError(f"amount {value!r} has more than two decimal places")
        if dialect.name == "sqlite":
            return float(cents)
        return cents

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            return Decimal(f"{value:.2f}")
        return Decimal(value).quantize(_CENT)


def _in(column: str, values: tuple) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("frozen", sa.Boolean(name="frozen_bool"), nullable=False,
              default=False, server_default=sa.false()),
    sa.Column("frozen_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
)

bindings = sa.Table(
    "bindings",
    metadata,
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("sender_id", sa.String(128), primary_key=True),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.user_id"),
              nullable=False, index=True),
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.CheckConstraint(_in("channel", CHANNELS), name="channel"),
)

transactions = sa.Table(
    "transactions",
    metadata,
    sa.Column("order_id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.user_id"), nullable=False),
    sa.Column("tx_type", sa.String(16), nullable=False),
    sa.Column("amount", Money(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False,
              default="CNY", server_default="CNY"),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("updated_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("failure_reason", sa.Text(), nullable=True),
    sa.Column("destination", sa.Text(), nullable=True),
    sa.Column("note", sa.Text(), nullable=True),
    sa.CheckConstraint(_in("tx_type", TX_TYPES), name="tx_type"),
    sa.CheckConstraint(_in("status", TX_STATUSES), name="status"),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    # "Recent transactions of a user" (newest first), optionally of one type.
    # Both start with user_id, so the user_id foreign key is indexed by them.
    sa.Index("ix_transactions_user_created", "user_id", "created_at"),
    sa.Index("ix_transactions_user_type_created", "user_id", "tx_type", "created_at"),
)

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("ticket_id", sa.Integer(), primary_key=True, autoincrement=True),
    # The Rasa input channel ("web", "wechat", "rest") and its sender id: where
    # agent replies go.
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("sender_id", sa.String(128), nullable=False),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.user_id"), nullable=True),
    sa.Column("category", sa.String(32), nullable=False),
    # 1 = urgent (stolen account), 2 = high, 3 = normal: the queue sorts ascending.
    sa.Column("priority", sa.SmallInteger(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, default="queued",
              server_default="queued"),
    sa.Column("agent", sa.String(64), nullable=True),
    sa.Column("summary", sa.Text(), nullable=True),
    # JSON list of {"role", "text", "time"}, PII masked, as of ticket creation.
    sa.Column("transcript", sa.Text(), nullable=False, default="[]",
              server_default="[]"),
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("updated_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("resolved_at", UTCDateTime(), nullable=True),
    # Service-level clocks (walletbot/desk/sla.py). Nullable because init_db adds
    # them to tickets of older databases; NULL queued_at reads as created_at.
    # queued_at: when it last entered the queue (opened, requeued, sent back).
    sa.Column("queued_at", UTCDateTime(), nullable=True),
    # claimed_at: when its current agent got it (claim, transfer, auto-assign).
    sa.Column("claimed_at", UTCDateTime(), nullable=True),
    # first_reply_at: the first agent reply ever; agent_replied_at: the latest.
    sa.Column("first_reply_at", UTCDateTime(), nullable=True),
    sa.Column("agent_replied_at", UTCDateTime(), nullable=True),
    # overdue_at: when the queued ticket was found past its target and announced
    # (cleared when it is requeued); wait_notice_at: the user's last wait update.
    sa.Column("overdue_at", UTCDateTime(), nullable=True),
    sa.Column("wait_notice_at", UTCDateTime(), nullable=True),
    # The wait (minutes) the user was last told, at handoff or in a wait update:
    # a new update goes out only when the estimate moved (walletbot/store/sla.py).
    sa.Column("wait_estimate_minutes", sa.Integer(), nullable=True),
    sa.CheckConstraint(_in("status", TICKET_STATUSES), name="status"),
    sa.CheckConstraint(_in("category", TICKET_CATEGORIES), name="category"),
    sa.CheckConstraint("priority BETWEEN 1 AND 3", name="priority"),
    # One open ticket per conversation, enforced by the database so that two
    # concurrent requests cannot both open one.
    sa.Index(
        "uq_tickets_open_conversation", "channel", "sender_id", unique=True,
        sqlite_where=sa.text("status != 'resolved'"),
        postgresql_where=sa.text("status != 'resolved'"),
    ),
    sa.Index("ix_tickets_queue", "status", "priority", "created_at"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("feedback_id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.ticket_id"),
              nullable=True, unique=True),
    sa.Column("channel", sa.String(32), nullable=False),
    sa.Column("sender_id", sa.String(128), nullable=False),
    # 1..5 for a satisfaction score; NULL for a free-text suggestion.
    sa.Column("score", sa.SmallInteger(), nullable=True),
    sa.Column("comment", sa.Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.CheckConstraint("score IS NULL OR score BETWEEN 1 AND 5", name="score"),
)

# The desk's audit log (walletbot/store/audit.py): logins, claims, replies,
# resolves, account unfreezes. No message text, ever; no foreign keys, so an
# entry outlives what it names.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("audit_id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("address", sa.String(64), nullable=True),
    sa.Column("ticket_id", sa.Integer(), nullable=True),
    sa.Column("user_id", sa.String(32), nullable=True),
    sa.CheckConstraint(_in("event", AUDIT_EVENTS), name="event"),
    sa.Index("ix_audit_log_created", "created_at"),
)


# What happened to a ticket, in order: opened, claimed, requeued, transferred,
# resolved (see TICKET_EVENTS). The dashboard's wait and handling times and the
# desk's "why did this come back" notices read it. ``reason`` is the agent's or
# the timer's reason, PII-masked; never a message to or from the user.
ticket_events = sa.Table(
    "ticket_events",
    metadata,
    sa.Column("event_id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.ticket_id"), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("event", sa.String(32), nullable=False),
    # Who did it: an agent's login, or "system" for timers and the bot.
    sa.Column("actor", sa.String(64), nullable=True),
    # Whom it concerns: the agent a ticket was transferred to or taken from.
    sa.Column("target", sa.String(64), nullable=True),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Index("ix_ticket_events_ticket", "ticket_id", "event_id"),
    sa.Index("ix_ticket_events_created", "created_at"),
)

# Agents' internal notes on a ticket: shown on the desk, never to the user,
# never in the transcript or the tracker (PII-masked like everything stored).
ticket_notes = sa.Table(
    "ticket_notes",
    metadata,
    sa.Column("note_id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.ticket_id"), nullable=False),
    sa.Column("agent", sa.String(64), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Index("ix_ticket_notes_ticket", "ticket_id", "note_id"),
)

# Which agents are at the desk: a console's poll refreshes last_seen_at (at
# most every few seconds per replica), and ``available`` is the agent's own
# 接单 / 暂停接单 switch. Auto-assignment and the dashboard's "agents online" read it.
agent_presence = sa.Table(
    "agent_presence",
    metadata,
    sa.Column("login", sa.String(64), primary_key=True),
    sa.Column("last_seen_at", UTCDateTime(), nullable=False, default=utcnow),
    sa.Column("available", sa.Boolean(name="available_bool"), nullable=False,
              default=True, server_default=sa.true()),
    # When the agent last got a ticket (claim, transfer, auto-assign): of two
    # equally loaded agents, auto-assignment picks who has waited longer.
    sa.Column("last_assigned_at", UTCDateTime(), nullable=True),
)
