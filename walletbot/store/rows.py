"""Typed, immutable rows returned by :mod:`walletbot.store.queries`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Dict, Literal, Optional, Tuple

if TYPE_CHECKING:
    from walletbot.conversation import ConversationId

Channel = Literal["rest", "wechat", "web"]
TxType = Literal["topup", "withdraw", "transfer", "refund"]
TxStatus = Literal["pending", "processing", "success", "failed", "refunded"]

CHANNELS: Tuple[str, ...] = ("rest", "wechat", "web")
TX_TYPES: Tuple[str, ...] = ("topup", "withdraw", "transfer", "refund")
TX_STATUSES: Tuple[str, ...] = ("pending", "processing", "success", "failed", "refunded")
TicketStatus = Literal["queued", "assigned", "resolved"]
TICKET_STATUSES: Tuple[str, ...] = ("queued", "assigned", "resolved")
# Why the conversation was escalated (from the intent that led there).
TICKET_CATEGORIES: Tuple[str, ...] = (
    "request_human", "fallback", "account_compromised", "complain", "transaction",
)
PRIORITY_URGENT, PRIORITY_HIGH, PRIORITY_NORMAL = 1, 2, 3
# What the ticket_events table records (walletbot/store/schema.py).
TICKET_EVENTS: Tuple[str, ...] = (
    "opened", "claimed", "assigned", "requeued", "transferred", "overdue", "resolved",
)
# What the desk's audit log records (walletbot/store/audit.py). Never message text.
AuditEvent = Literal[
    "login_success", "login_failure", "login_locked", "logout",
    "claim", "reply", "resolve", "end_session", "account_unfreeze",
]
AUDIT_EVENTS: Tuple[str, ...] = (
    "login_success", "login_failure", "login_locked", "logout",
    "claim", "reply", "resolve", "end_session", "account_unfreeze",
)


@dataclass(frozen=True)
class User:
    """A wallet user.

    Attributes:
        user_id: Stable id, e.g. ``"U1001"``.
        name: Display name.
        frozen: Whether the account is frozen (the user asked to freeze it).
        frozen_at: When it was frozen (UTC), ``None`` while not frozen.
        created_at: When the account was created (UTC).
    """

    user_id: str
    name: str
    frozen: bool
    frozen_at: Optional[datetime]
    created_at: datetime


@dataclass(frozen=True)
class Transaction:
    """One wallet transaction (top-up, withdrawal, transfer or refund).

    Attributes:
        order_id: Order number the user sees, e.g. ``"WD202611180002"``.
        user_id: Owner of the order.
        tx_type: One of :data:`TX_TYPES`.
        amount: Amount with two decimals, e.g. ``Decimal("1000.00")``.
        currency: ISO 4217 code, ``"CNY"``.
        method: How the money moved (``alipay``, ``wechat_pay``, ``bank_transfer``,
            ``bank_card``, ``balance``, ``merchant``).
        status: One of :data:`TX_STATUSES`.
        created_at: Creation time, timezone-aware UTC.
        updated_at: Last status change, timezone-aware UTC.
        failure_reason: Why it failed (Chinese, shown to the user), if it failed.
        destination: Where the money went, e.g. ``"尾号6789的银行卡"`` or ``"李四"``.
        note: Extra detail for the user (Chinese).
    """

    order_id: str
    user_id: str
    tx_type: TxType
    amount: Decimal
    currency: str
    method: str
    status: TxStatus
    created_at: datetime
    updated_at: datetime
    failure_reason: Optional[str] = None
    destination: Optional[str] = None
    note: Optional[str] = None


@dataclass(frozen=True)
class Ticket:
    """A handoff ticket: a conversation waiting for, or served by, a human agent.

    Attributes:
        ticket_id: Number told to the user.
        channel: Rasa input channel of the conversation (``web``, ``wechat``, ``rest``).
        sender_id: The channel's sender id (with ``channel``, the conversation: see
            :attr:`conversation`).
        user_id: The wallet user, if the sender is bound to one.
        category: One of :data:`TICKET_CATEGORIES`.
        priority: 1 urgent, 2 high, 3 normal.
        status: ``queued``, ``assigned`` or ``resolved``.
        agent: Login of the agent who claimed it.
        summary: One line for the queue (masked).
        transcript: Masked conversation up to the escalation, ``[{role, text, time}]``.
        created_at: When it was opened (UTC).
        updated_at: Last change (UTC).
        resolved_at: When an agent resolved it (UTC).
        queued_at: When it last entered the queue (UTC); ``created_at`` if never requeued.
        claimed_at: When its current agent got it (UTC), if assigned.
        first_reply_at: The first agent reply (UTC), if any.
        agent_replied_at: The latest agent reply (UTC), if any.
        overdue_at: When the queued ticket was marked overdue (UTC), if it is.
        wait_notice_at: When the user was last told an updated wait (UTC).
    """

    ticket_id: int
    channel: str
    sender_id: str
    user_id: Optional[str]
    category: str
    priority: int
    status: TicketStatus
    agent: Optional[str]
    summary: Optional[str]
    transcript: Tuple[Dict[str, Any], ...]
    created_at: datetime
    updated_at: datetime
    resolved_at: Optional[datetime]
    queued_at: Optional[datetime] = None
    claimed_at: Optional[datetime] = None
    first_reply_at: Optional[datetime] = None
    agent_replied_at: Optional[datetime] = None
    overdue_at: Optional[datetime] = None
    wait_notice_at: Optional[datetime] = None

    @property
    def number(self) -> str:
        """The ticket number as users and agents see it, e.g. ``"T000042"``."""
        return f"T{self.ticket_id:06d}"

    @property
    def in_queue_since(self) -> datetime:
        """When the ticket last entered the queue."""
        return self.queued_at or self.created_at

    @property
    def conversation(self) -> "ConversationId":
        """The conversation the ticket is about (its tracker is ``str()`` of this)."""
        from walletbot.conversation import ConversationId

        return ConversationId(self.channel, self.sender_id)


@dataclass(frozen=True)
class AuditEntry:
    """One line of the desk's audit log: who did what, when, from where.

    It never holds message text: a reply is recorded as the event and its
    ticket, not what was written.

    Attributes:
        audit_id: Increasing id (newest is largest).
        event: One of :data:`AUDIT_EVENTS`.
        actor: The agent's login; for a failed login, the attempted name masked
            and truncated unless it is an agent's login.
        address: The client address (the proxy's forwarded one when trusted).
        created_at: When it happened (UTC).
        ticket_id: The ticket acted on (claim, reply, resolve), if any.
        user_id: The wallet user acted on (account unfreeze), if any.
    """

    audit_id: int
    event: AuditEvent
    actor: str
    address: Optional[str]
    created_at: datetime
    ticket_id: Optional[int] = None
    user_id: Optional[str] = None


@dataclass(frozen=True)
class TicketEvent:
    """One step in a ticket's life (the ``ticket_events`` table).

    Attributes:
        event_id: Increasing id.
        ticket_id: The ticket.
        created_at: When (UTC).
        event: One of :data:`TICKET_EVENTS`.
        actor: The agent's login, or ``"system"``.
        target: The agent it concerns (transfer target, agent it was taken from).
        reason: Why (masked), if given.
    """

    event_id: int
    ticket_id: int
    created_at: datetime
    event: str
    actor: Optional[str] = None
    target: Optional[str] = None
    reason: Optional[str] = None


@dataclass(frozen=True)
class TicketNote:
    """An agent's internal note on a ticket; never shown to the user."""

    note_id: int
    ticket_id: int
    agent: str
    text: str
    created_at: datetime
