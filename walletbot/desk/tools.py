"""Agents' tools: transfer, internal notes, unfreeze, capacity and auto-assignment.

Each tool has its own module (:mod:`~walletbot.desk.transfer`,
:mod:`~walletbot.desk.notes`, :mod:`~walletbot.desk.unfreeze`,
:mod:`~walletbot.desk.assign`; presence in :mod:`~walletbot.desk.presence`).
This one registers them and serves what the console shows beside a ticket:
``GET api/tickets/<id>/tools`` (whether the user is frozen, the verification
methods for security agents, and the ticket's latest change of hands with its
reason).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from sanic.request import Request
from sanic.response import HTTPResponse

from walletbot.desk import assign, notes, transfer, unfreeze
from walletbot.desk.routing import DeskRoutes, ok
from walletbot.store import desk_tools, queries
from walletbot.store.rows import Ticket


def _side(conn: Any, *, ticket: Ticket) -> Dict[str, Any]:
    user = queries.get_user(conn=conn, user_id=ticket.user_id) if ticket.user_id else None
    return {"frozen": None if user is None else user.frozen,
            "handover": desk_tools.latest_handover(conn=conn, ticket_id=ticket.ticket_id)}


def register(bp: Any, routes: DeskRoutes) -> None:
    """Adds the tools' routes to the desk blueprint."""
    channel = routes.channel
    assigner = assign.register(bp, routes)
    transfer.register(bp, routes, on_requeue=assigner.kick)
    notes.register(bp, routes)
    unfreeze.register(bp, routes)

    def name(login: Optional[str]) -> Optional[str]:
        account = channel.directory.accounts.get(login or "")
        return account.name if account else login

    @bp.route("/api/tickets/<ticket_id>/tools", methods=["GET"])
    @routes.authed
    @routes.with_ticket
    async def tools(request: Request, claims: Dict[str, Any], ticket: Ticket) -> HTTPResponse:
        me = channel.directory.accounts[claims["sub"]]
        side = await channel.desk.wallet.run(_side, ticket=ticket)
        event = side["handover"]
        security = me.has_role(unfreeze.ROLE)
        body: Dict[str, Any] = {
            "frozen": side["frozen"],
            "can_transfer": ticket.status != "resolved" and (
                me.is_supervisor or (ticket.status == "assigned" and ticket.agent == me.login)),
            "can_unfreeze": bool(security and side["frozen"] and ticket.status == "assigned"
                                 and ticket.agent == me.login),
            "checks": ([{"id": k, "label": v} for k, v in unfreeze.checks().items()]
                       if security else []),
            "handover": None if event is None else {
                "event": event.event, "actor": event.actor, "actor_name": name(event.actor),
                "target": event.target, "target_name": name(event.target),
                "reason": event.reason, "at": event.created_at.isoformat(),
            },
        }
        return ok(body)
