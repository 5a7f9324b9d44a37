"""What the desk reads and changes in the wallet DB: tickets, the user, their orders.

The desk's HTTP API (:mod:`walletbot.desk.api`) goes through this service and
never runs store queries itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from walletbot.store import queries
from walletbot.store import tickets as ticket_queries
from walletbot.store.rows import Ticket
from walletbot.store.service import WalletService, default_service
from walletbot.transactions.describe import STATUS_NAMES, TYPE_NAMES

MAX_TICKETS = 200
RECENT_ORDERS = 10


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

    async def touch(self, ticket: Ticket) -> None:
        """Records activity on the ticket (an agent replied)."""
        await self.wallet.run(ticket_queries.touch_ticket, ticket_id=ticket.ticket_id)

    async def resolve(self, ticket: Ticket, *, agent: str) -> bool:
        """Closes ``agent``'s ticket; False if it is not theirs or not open."""
        return await self.wallet.run(ticket_queries.resolve_ticket, ticket_id=ticket.ticket_id,
                                     agent=agent)
