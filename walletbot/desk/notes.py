"""Internal notes on a ticket: for agents only, never for the user.

``GET api/tickets/<id>/notes`` and ``POST api/tickets/<id>/notes {"text"}``:
any agent reads and adds notes on any ticket. A note is PII-masked and kept in
``ticket_notes`` only. This module never touches the relay, the tracker or the
ticket's transcript, which is what keeps notes away from the user.
"""

from __future__ import annotations

from typing import Any, Dict

from sanic.request import Request
from sanic.response import HTTPResponse

from walletbot.desk.routing import DeskRoutes, error, json_body, ok
from walletbot.store import desk_tools
from walletbot.store.rows import Ticket, TicketNote


def note_json(note: TicketNote, names: Dict[str, Any]) -> Dict[str, Any]:
    """A note as the desk API returns it."""
    account = names.get(note.agent)
    return {"id": note.note_id, "agent": note.agent,
            "agent_name": account.name if account else note.agent,
            "text": note.text, "at": note.created_at.isoformat()}


def register(bp: Any, routes: DeskRoutes) -> None:
    """Adds the notes routes."""
    channel = routes.channel

    @bp.route("/api/tickets/<ticket_id>/notes", methods=["GET"])
    @routes.authed
    @routes.with_ticket
    async def notes(request: Request, claims: Dict[str, Any], ticket: Ticket) -> HTTPResponse:
        rows = await channel.desk.wallet.run(desk_tools.notes_of, ticket_id=ticket.ticket_id)
        accounts = channel.directory.accounts
        return ok({"notes": [note_json(n, accounts) for n in rows]})

    @bp.route("/api/tickets/<ticket_id>/notes", methods=["POST"])
    @routes.authed
    @routes.with_ticket
    async def add_note(request: Request, claims: Dict[str, Any], ticket: Ticket) -> HTTPResponse:
        text = json_body(request).get("text")
        if not isinstance(text, str) or not text.strip():
            return error("备注内容不能为空", 400)
        if len(text.strip()) > desk_tools.MAX_NOTE:
            return error(f"备注不能超过{desk_tools.MAX_NOTE}字", 400)
        note = await channel.desk.wallet.run(desk_tools.add_note, ticket_id=ticket.ticket_id,
                                             agent=claims["sub"], text=text)
        return ok({"note": note_json(note, channel.directory.accounts)}, status=201)
