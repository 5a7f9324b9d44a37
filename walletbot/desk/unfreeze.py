"""Lifting a freeze the bot applied, by a security agent, after verifying the user.

``POST api/tickets/<id>/unfreeze {"user_id", "verification", "confirmed": true}``.
Only an agent with the ``security`` role, only for the user bound to the
ticket, only while that account is frozen, only on a ticket the agent holds
(the identity check happens in that conversation), and only with one of the
configured verification methods (``DESK_UNFREEZE_VERIFICATIONS``; the product
sources describe none, so the shipped list is a marked placeholder) and the
agent's confirmation. The unfreeze is audited (``account_unfreeze``), noted on
the ticket with the method, and the user is told.
"""

from __future__ import annotations

import logging
from typing import Any, Dict

from sanic.request import Request
from sanic.response import HTTPResponse

from walletbot import settings
from walletbot.desk.routing import DeskRoutes, error, json_body, ok
from walletbot.store import desk_tools
from walletbot.store.rows import Ticket

logger = logging.getLogger(__name__)

ROLE = "security"
USER_TEXT = ("您的OK钱包账户已解除冻结，付款、转账和提现已恢复。为了账户安全，建议您修改登录密码和"
             "支付密码，并开启双因素认证。")
NOTE_TEXT = "已解除账户冻结。身份核验方式：{method}。"


def checks() -> Dict[str, str]:
    """The configured verification methods, id → label."""
    return dict(settings.current().desk_unfreeze_checks)


def register(bp: Any, routes: DeskRoutes) -> None:
    """Adds the unfreeze route."""
    channel = routes.channel

    @bp.route("/api/tickets/<ticket_id>/unfreeze", methods=["POST"])
    @routes.authed
    @routes.with_ticket
    async def unfreeze(request: Request, claims: Dict[str, Any], ticket: Ticket) -> HTTPResponse:
        agent = channel.directory.accounts[claims["sub"]]
        if not agent.has_role(ROLE):
            return error("只有安全专员（security 角色）可以解除账户冻结", 403)
        methods = checks()
        if not methods:
            return error("尚未配置身份核验方式，暂不能在工作台解除冻结，请联系管理员", 409)
        if not ticket.user_id:
            return error("该工单未绑定OK钱包账户，无法解除冻结", 409)
        body = json_body(request)
        if body.get("user_id") != ticket.user_id:
            return error("只能为本工单绑定的用户解除冻结", 403)
        if ticket.status != "assigned" or ticket.agent != agent.login:
            return error("请先认领该工单，在对话中核验用户身份后再解除冻结", 409)
        method = body.get("verification")
        if not isinstance(method, str) or method not in methods:
            return error("请选择身份核验方式", 400)
        if body.get("confirmed") is not True:
            return error("请勾选确认已按所选方式核验用户身份", 400)
        outcome = await channel.desk.wallet.run(
            desk_tools.lift_freeze, user_id=ticket.user_id, ticket_id=ticket.ticket_id,
            agent=agent.login, note=NOTE_TEXT.format(method=methods[method]))
        if outcome == desk_tools.NOT_HELD:
            return error("工单已被退回队列或转接，未解除冻结", 409)
        if outcome != desk_tools.UNFROZEN:
            return error("该账户当前未被冻结", 409)
        await channel.desk.audit("account_unfreeze", actor=agent.login,
                                 address=channel.client_address(request),
                                 ticket_id=ticket.ticket_id, user_id=ticket.user_id)
        try:
            await routes.relay(request).say(ticket.conversation, text=USER_TEXT,
                                            login=agent.login, name=agent.name)
        except Exception:  # noqa: BLE001 - the account is unfrozen; the agent tells them
            logger.exception("could not tell the user of ticket %s about the unfreeze",
                             ticket.ticket_id)
        return ok({"ok": True, "frozen": False})
