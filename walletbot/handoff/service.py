"""Opening handoff tickets (and freezing accounts) for the action server."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterable, Optional

from sqlalchemy.engine import Connection

from walletbot import settings
from walletbot.conversation import ConversationId
from walletbot.handoff.hours import ServiceHours
from walletbot.handoff.levels import ServiceLevels
from walletbot.handoff.notify import TicketNotifier
from walletbot.handoff.transcript import summary_line, transcript_lines
from walletbot.ops import metrics
from walletbot.store import queries
from walletbot.store import sla as sla_queries
from walletbot.store import tickets as ticket_queries
from walletbot.store.rows import Ticket
from walletbot.store.schema import utcnow
from walletbot.store.service import WalletService, default_service


@dataclass(frozen=True)
class Escalation:
    """The outcome of an escalation, for telling the user.

    Attributes:
        ticket: The conversation's open ticket.
        created: Whether this escalation opened it (False: it was open already).
        position: Place in the queue, 1-based (0 once an agent has it).
        open_now: Whether agents are on duty now.
        opens_at: When agents next start (equal to now while open).
        frozen: For account freezes: whether the account is frozen now.
        wait_minutes: The expected wait told to the user (0: not queued, or
            agents are off duty), from recent handling times (walletbot/store/sla.py).
    """

    ticket: Ticket
    created: bool
    position: int
    open_now: bool
    opens_at: datetime
    frozen: bool = False
    wait_minutes: int = 0


def _open_and_place(conn: Connection, *, estimate: Optional[Dict[str, Any]] = None,
                    **kwargs: Any) -> tuple:
    ticket, created = ticket_queries.open_ticket(conn=conn, **kwargs)
    position = ticket_queries.queue_position(conn=conn, ticket=ticket)
    if estimate is None or position == 0:
        return ticket, created, position, 0
    # The same round trip: the estimate, and that the user is told it now (the
    # desk's wait updates compare against it).
    now = utcnow()
    told = sla_queries.estimate_wait(conn=conn, ticket=ticket, now=now, **estimate)
    sla_queries.record_wait_told(conn=conn, ticket_id=ticket.ticket_id, minutes=told.minutes,
                                 now=now)
    ticket = ticket_queries.get_ticket(conn=conn, ticket_id=ticket.ticket_id) or ticket
    return ticket, created, position, told.minutes


def _freeze_open_and_place(conn: Connection, *, user_id: Optional[str], **kwargs: Any) -> tuple:
    # One transaction: the account is never frozen without the ticket that
    # tells an agent why, nor the other way round.
    if user_id is not None:
        queries.set_frozen(conn=conn, user_id=user_id, frozen=True)
    return _open_and_place(conn, user_id=user_id, **kwargs)


class HandoffService:
    """Escalates conversations to the human queue."""

    def __init__(
        self,
        wallet: Optional[WalletService] = None,
        *,
        hours: Optional[ServiceHours] = None,
        notifier: Optional[TicketNotifier] = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        levels: Optional[ServiceLevels] = None,
    ) -> None:
        config = settings.current() if hours is None or notifier is None else None
        self.wallet = wallet or default_service()
        self.hours = hours or ServiceHours.parse(config.service_hours, config.service_timezone)
        self.notifier = notifier or TicketNotifier(config.desk_webhook_url)
        self.clock = clock
        # The wait estimate's fallback, and which agents count as online.
        self.levels = levels or ServiceLevels.current()
        self.seen_within = timedelta(seconds=(config or settings.current()).desk_presence_seconds)

    async def escalate(
        self,
        *,
        conversation: ConversationId,
        category: str,
        priority: int,
        events: Iterable[Dict[str, Any]],
        user_id: Optional[str] = None,
        freeze: bool = False,
    ) -> Escalation:
        """Opens (or finds) the conversation's ticket; optionally freezes the account.

        Args:
            conversation: The conversation to hand over.
            category: Ticket category.
            priority: 1 urgent, 2 high, 3 normal.
            events: Tracker events so far; become the masked transcript.
            user_id: The identified wallet user, if any.
            freeze: Freeze ``user_id``'s account in the same transaction.

        Raises:
            WalletUnavailable: The wallet DB is down.
        """
        lines = transcript_lines(events)
        kwargs = dict(
            channel=conversation.channel, sender_id=conversation.sender,
            category=category, priority=priority,
            summary=summary_line(lines) or None, transcript=lines,
        )
        now = self.clock()
        open_now = self.hours.is_open(now)
        # Outside service hours the user leaves a message: no wait to estimate.
        kwargs["estimate"] = dict(fallback_minutes=self.levels.fallback_minutes,
                                  seen_within=self.seen_within) if open_now else None
        if freeze:
            ticket, created, position, minutes = await self.wallet.run(
                _freeze_open_and_place, user_id=user_id, **kwargs
            )
        else:
            ticket, created, position, minutes = await self.wallet.run(
                _open_and_place, user_id=user_id, **kwargs
            )
        if created:
            self.notifier.notify(ticket)
            metrics.handoff_opened(conversation.channel, category)
        return Escalation(
            ticket=ticket, created=created, position=position,
            open_now=open_now, opens_at=self.hours.next_opening(now),
            frozen=freeze and user_id is not None, wait_minutes=minutes,
        )

    async def has_open_ticket(self, conversation: ConversationId) -> bool:
        """Whether a human has the conversation (the ticket row is the one source of truth).

        Raises:
            WalletUnavailable: The wallet DB is down.
        """
        ticket = await self.wallet.read(ticket_queries.open_ticket_for,
                                       channel=conversation.channel, sender_id=conversation.sender)
        return ticket is not None

    async def rate_latest(self, *, conversation: ConversationId, score: int) -> Optional[Ticket]:
        """Stores a 1–5 score for the conversation's latest unrated resolved ticket.

        Returns:
            The rated ticket, or None if there was none (the score is then kept
            as general feedback).
        """
        return await self.wallet.run(_rate_latest, channel=conversation.channel,
                                     sender_id=conversation.sender, score=score)

    async def suggest(self, *, conversation: ConversationId, text: str) -> int:
        """Keeps a user's suggestion; returns its feedback id."""
        return await self.wallet.run(
            ticket_queries.add_feedback, channel=conversation.channel,
            sender_id=conversation.sender, comment=text,
        )


def _rate_latest(conn: Connection, *, channel: str, sender_id: str, score: int) -> Optional[Ticket]:
    ticket = ticket_queries.latest_unrated_ticket(conn=conn, channel=channel, sender_id=sender_id)
    ticket_queries.add_feedback(
        conn=conn, channel=channel, sender_id=sender_id, score=score,
        ticket_id=None if ticket is None else ticket.ticket_id,
    )
    return ticket


@functools.lru_cache(maxsize=1)
def default_handoff() -> HandoffService:
    """The action server's service (built on first use)."""
    return HandoffService()
