"""Transfer a ticket to a colleague or back to the queue, with a reason.

``POST api/tickets/<id>/transfer {"to": "<login>" | null, "reason": "..."}``.
The agent holding the ticket may move it; a supervisor may move any open
ticket. The receiving agent must exist and be under their cap. The reason
(required, masked) is kept with the ticket's ``transferred`` / ``requeued``
event, where the receiving agent's console shows it; the user is told in one
short line.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Optional

from sanic.request import Request
from sanic.response import HTTPResponse

from walletbot.desk.api import ticket_json
from walletbot.desk.assign import cap_message
from walletbot.desk.routing import DeskRoutes, error, json_body, ok
from walletbot.store import desk_tools
from walletbot.store.rows import Ticket

logger = logging.getLogger(__name__)

TO_AGENT_TEXT = "已为您转接客服 {name}，请稍候。"
TO_QUEUE_TEXT = "已为您重新排队，稍后将由其他客服继续为您服务，请稍候。"
REFUSALS = {
    desk_tools.FORBIDDEN: ("只能转接自己处理中的工单（主管可转接任何未结束的工单）", 403),
    desk_tools.CLOSED: ("工单已结束，不能转接", 409),
    desk_tools.ALREADY_QUEUED: ("工单已在队列中", 409),
    desk_tools.SAME_AGENT: ("工单已由该客服处理", 409),
    desk_tools.CHANGED: ("工单刚刚被其他操作改变，请刷新后重试", 409),
}


def _request(body: Dict[str, Any], known: Callable[[str], bool]) -> Any:
    """``(to, reason)`` from the body, or an error response."""
    if "to" not in body:
        return error("请选择转接给哪位客服，或退回队列（to 为 null）", 400)
    to, reason = body.get("to"), body.get("reason")
    if to is not None and (not isinstance(to, str) or not to):
        return error("to 须为客服账号或 null（退回队列）", 400)
    if isinstance(to, str) and not known(to):
        return error("没有这个客服账号", 400)
    if not isinstance(reason, str) or not reason.strip():
        return error("请填写转接原因", 400)
    if len(reason.strip()) > desk_tools.MAX_REASON:
        return error(f"转接原因不能超过{desk_tools.MAX_REASON}字", 400)
    return to, reason.strip()


def register(bp: Any, routes: DeskRoutes, *, on_requeue: Optional[Callable[[], None]] = None) -> None:
    """Adds the transfer route; ``on_requeue()`` is called when a ticket went back to the queue."""
    channel = routes.channel
    accounts = channel.directory.accounts

    @bp.route("/api/tickets/<ticket_id>/transfer", methods=["POST"])
    @routes.authed
    @routes.with_ticket
    async def transfer(request: Request, claims: Dict[str, Any], ticket: Ticket) -> HTTPResponse:
        parsed = _request(json_body(request), lambda login: login in accounts)
        if isinstance(parsed, HTTPResponse):
            return parsed
        to, reason = parsed
        actor = accounts[claims["sub"]]
        target = accounts.get(to) if to else None
        result = await channel.desk.wallet.run(
            desk_tools.transfer_ticket, ticket_id=ticket.ticket_id, actor=actor.login, to=to,
            reason=reason, cap=target.max_tickets if target else 0,
            may_move_any=actor.is_supervisor,
        )
        if result.outcome == desk_tools.FULL and target is not None:
            return error(f"{target.name}{cap_message(target.max_tickets)}", 409)
        if not result.moved:
            message, status = REFUSALS[result.outcome]
            return error(message, status)
        relay = routes.relay(request)
        try:
            if target is None:
                await relay.say(ticket.conversation, text=TO_QUEUE_TEXT, login=actor.login,
                                name=actor.name, handoff="queued")
            else:
                await relay.say(ticket.conversation, text=TO_AGENT_TEXT.format(name=target.name),
                                login=actor.login, name=actor.name)
                await relay.announce_join(ticket.conversation, login=target.login,
                                          name=target.name)
        except Exception:  # noqa: BLE001 - the move stands; the console shows it
            logger.exception("could not tell the user of ticket %s about the transfer",
                             ticket.ticket_id)
        if target is None and on_requeue is not None:
            on_requeue()
        return ok(ticket_json(await channel.desk.ticket(str(ticket.ticket_id))))
