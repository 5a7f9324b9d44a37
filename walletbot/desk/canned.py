"""Canned replies (快捷回复) in the desk: ``GET api/canned?ticket=<id>``.

The replies come from the file trainers keep (:mod:`walletbot.desk.canned_replies`),
read and linted once at start-up: a file with an error stops the desk from
starting, with every error in the message, as a broken agents file does. The
route fills the variables in for the ticket the agent works on, on the server,
so the console only ever inserts finished text.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

from sanic.request import Request
from sanic.response import HTTPResponse

from walletbot.desk.canned_replies import (
    CannedLibrary, configured_paths, load, ticket_variables,
)
from walletbot.desk.routing import DeskRoutes, error, ok
from walletbot.store import queries
from walletbot.store.rows import Ticket

logger = logging.getLogger(__name__)


def _user_name(conn: Any, *, user_id: Optional[str]) -> Optional[str]:
    """The bare name (the desk's own view marks a frozen account; a reply must not)."""
    user = queries.get_user(conn=conn, user_id=user_id) if user_id else None
    return None if user is None else user.name


def load_configured() -> CannedLibrary:
    """The configured replies; raises CannedRepliesError (a ValueError) on any error."""
    path, placeholders = configured_paths()
    library = load(path, placeholders=placeholders)
    for warning in library.warnings:
        logger.warning("canned replies: %s", warning)
    return library


def register(bp: Any, routes: DeskRoutes) -> None:
    """Adds ``GET api/canned``; reads the replies now, so a broken file fails start-up."""
    library = load_configured()
    channel = routes.channel

    @bp.route("/api/canned", methods=["GET"])
    @routes.authed
    async def canned(request: Request, claims: Dict[str, Any]) -> HTTPResponse:
        """The replies filled in for ``?ticket=<id>`` (the ticket's number, user and agent)."""
        raw = request.args.get("ticket", "")
        if not raw:
            return error("请指定工单（ticket 参数）", 400)
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
            return error("工单编号格式错误，应为数字", 400)
        ticket: Optional[Ticket] = await channel.desk.ticket(raw)
        if ticket is None:
            return error("工单不存在", 404)
        user_name = await channel.desk.wallet.run(_user_name, user_id=ticket.user_id)
        account = channel.directory.accounts.get(claims["sub"])
        agent_name = claims.get("name") or (account.name if account else "") or claims["sub"]
        variables = ticket_variables(user_name=user_name, ticket_number=ticket.number,
                                     agent_name=agent_name)
        return ok({"ticket": ticket.ticket_id, "replies": library.filled(variables)})
