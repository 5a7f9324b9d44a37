"""What the desk reads and changes in the wallet DB: tickets, the user, their orders.

The desk's HTTP API (:mod:`walletbot.desk.api`) goes through this service and
never runs store queries itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from walletbot.privacy import mask_pii
from walletbot.store import audit as audit_queries
from walletbot.store import queries
from walletbot.store import tickets as ticket_queries
from walletbot.store.rows import AuditEntry, Ticket
from walletbot.store.service import WalletService, WalletUnavailable, default_service
from walletbot.transactions.describe import STATUS_NAMES, TYPE_NAMES

logger = logging.getLogger(__name__)

MAX_TICKETS = 200
RECENT_ORDERS = 10
AUDIT_PAGE = 100


def attempted_login(name: Any, *, known: bool) -> str:
    """Who to write in the audit log for a login attempt.

    An agent's login as it is; any other name (a typo, a probe, or a password
    typed into the wrong field) only as ``?`` and its first two characters,
    PII-masked: enough to tell attempts apart, too little to leak a secret.
    """
    if not isinstance(name, str) or not name.strip():
        return "?"
    if known:
        return name
    return "?" + mask_pii(name.strip())[:2] + "***"


@dataclass(frozen=True)
class TicketContext:
    """What an agent sees beside a ticket's transcript.

    Attributes:
        user_name: The wallet user's name (marked when frozen), None if unidentified.
        transactions: Their recent orders, as the desk shows them.
        csat: The score the user gave for this ticket, if any.
    """

    user_name: Optional[str]
    transactions: List[Dict[str, Any]]
    csat: Optional[int]


def _transactions(conn: Any, *, user_id: Optional[str]) -> List[Dict[str, Any]]:
    if not user_id:
        return []
    return [
        {
            "order_id": t.order_id, "type": TYPE_NAMES.get(t.tx_type, t.tx_type),
            "amount": f"{t.amount:.2f}", "status": STATUS_NAMES.get(t.status, t.status),
            "created_at": t.created_at.isoformat(),
        }
        for t in queries.recent_transactions(conn=conn, user_id=user_id, limit=RECENT_ORDERS)
    ]


def _user_name(conn: Any, *, user_id: Optional[str]) -> Optional[str]:
    user = queries.get_user(conn=conn, user_id=user_id) if user_id else None
    return None if user is None else user.name + ("（已冻结）" if user.frozen else "")


def _context(conn: Any, *, ticket: Ticket) -> TicketContext:
    return TicketContext(
        user_name=_user_name(conn, user_id=ticket.user_id),
        transactions=_transactions(conn, user_id=ticket.user_id),
        csat=ticket_queries.feedback_for_ticket(conn=conn, ticket_id=ticket.ticket_id),
    )


class DeskService:
    """Ticket work for agents, as coroutines (queries run off the event loop).

    Raises (every method):
        WalletUnavailable: The wallet DB is down.
    """

    def __init__(self, wallet: Optional[WalletService] = None) -> None:
        self._wallet = wallet

    @property
    def wallet(self) -> WalletService:
        return self._wallet or default_service()

    async def tickets(self, *, statuses: Sequence[str]) -> List[Ticket]:
        """The newest tickets in these statuses."""
        return await self.wallet.run(ticket_queries.list_tickets, statuses=tuple(statuses),
                                     limit=MAX_TICKETS)

    async def ticket(self, ticket_id: str) -> Optional[Ticket]:
        """The ticket with this id as typed in a URL; None if malformed or missing."""
        if not ticket_id.isdigit() or len(ticket_id) > 12:
            return None
        return await self.wallet.run(ticket_queries.get_ticket, ticket_id=int(ticket_id))

    async def context(self, ticket: Ticket) -> TicketContext:
        """The user, their orders and the score beside ``ticket``."""
        return await self.wallet.run(_context, ticket=ticket)

    async def claim(self, ticket: Ticket, *, agent: str) -> bool:
        """Assigns a queued ticket to ``agent``; False if someone else was first."""
        return await self.wallet.run(ticket_queries.claim_ticket, ticket_id=ticket.ticket_id,
                                     agent=agent)

    async def touch(self, ticket: Ticket, *, agent: Optional[str] = None) -> bool:
        """Records an agent reply; with ``agent``, only while the ticket is still theirs."""
        return await self.wallet.run(ticket_queries.touch_ticket, ticket_id=ticket.ticket_id,
                                     agent=agent)

    async def resolve(self, ticket: Ticket, *, agent: str) -> bool:
        """Closes ``agent``'s ticket; False if it is not theirs or not open."""
        return await self.wallet.run(ticket_queries.resolve_ticket, ticket_id=ticket.ticket_id,
                                     agent=agent)

    async def audit(self, event: str, *, actor: str, address: Optional[str],
                    ticket_id: Optional[int] = None, user_id: Optional[str] = None) -> None:
        """Adds an audit entry. Never give it message text: it has no place for any.

        A wallet DB failure is logged, not raised: the agent's action stands.
        """
        try:
            await self.wallet.run(audit_queries.record_event, event=event, actor=actor,
                                  address=address, ticket_id=ticket_id, user_id=user_id)
        except WalletUnavailable:
            logger.error("audit entry %s of %s not written: wallet DB unavailable", event, actor)

    async def audit_entries(self, *, limit: int = AUDIT_PAGE,
                            before_id: Optional[int] = None) -> List[AuditEntry]:
        """The newest audit entries first (``before_id``: the page after)."""
        return await self.wallet.run(audit_queries.list_events, limit=limit, before_id=before_id)
