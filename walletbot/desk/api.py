"""The agent desk: a Chinese web console and a JSON API at ``/webhooks/desk/``.

Agents log in (accounts from ``DESK_AGENTS_FILE``, scrypt hashes), get an
expiring signed session (HttpOnly cookie, or a Bearer token for API clients),
and work the ticket queue: claim, read the live transcript and the user's
recent transactions, reply, resolve. Every route but the login page, the
static files and the health check refuses requests without a valid session.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from walletbot.desk.auth import AgentAccount, AgentDirectory, SessionSigner
from walletbot.desk.relay import Relay
from walletbot.desk.service import DeskService
from walletbot.store.rows import Ticket
from walletbot.store.service import WalletService, WalletUnavailable

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = {
    "desk.js": "text/javascript; charset=utf-8",
    "desk.css": "text/css; charset=utf-8",
}
COOKIE = "desk_session"
MAX_REPLY_CHARS = 2000
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _error(message: str, status: int) -> HTTPResponse:
    return response.json({"error": message}, status=status, headers=_HEADERS)


def _ok(body: Dict[str, Any], status: int = 200) -> HTTPResponse:
    return response.json(body, status=status, headers=_HEADERS)


def ticket_json(ticket: Ticket) -> Dict[str, Any]:
    """A ticket as the desk API returns it (no transcript)."""
    return {
        "id": ticket.ticket_id,
        "number": ticket.number,
        "channel": ticket.channel,
        "sender_id": ticket.sender_id,
        "conversation_id": str(ticket.conversation),
        "user_id": ticket.user_id,
        "category": ticket.category,
        "priority": ticket.priority,
        "status": ticket.status,
        "agent": ticket.agent,
        "summary": ticket.summary,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
        "resolved_at": ticket.resolved_at.isoformat() if ticket.resolved_at else None,
    }


class DeskInput(InputChannel):
    """Agent console and API. Receives no user messages itself."""

    @classmethod
    def name(cls) -> Text:
        return "desk"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = credentials or {}
        return cls(
            secret=str(credentials.get("secret") or ""),
            agents_file=str(credentials.get("agents_file") or ""),
            session_hours=float(credentials.get("session_hours") or 8),
        )

    def __init__(
        self,
        *,
        secret: str,
        agents_file: str = "",
        session_hours: float = 8.0,
        directory: Optional[AgentDirectory] = None,
        wallet: Optional[WalletService] = None,
    ) -> None:
        self.signer = SessionSigner(secret, hours=session_hours)
        self.agents_file = agents_file
        self._directory = directory
        self.desk = DeskService(wallet)

    @property
    def directory(self) -> AgentDirectory:
        """The agent accounts (read on first use)."""
        if self._directory is None:
            self._directory = AgentDirectory.from_file(Path(self.agents_file))
        return self._directory

    def session(self, request: Request) -> Optional[Dict[str, Any]]:
        """The agent's session claims from the cookie or a Bearer token."""
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer "):] if header.startswith("Bearer ") else request.cookies.get(COOKIE)
        claims = self.signer.verify(token)
        if claims is None or claims.get("sub") not in self.directory.accounts:
            return None
        return claims

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("desk_webhook", __name__)
        # Fail at start-up, not at the first login, when the accounts are broken.
        self.directory  # noqa: B018

        def relay(request: Request) -> Relay:
            return Relay(request.app.ctx.agent, getattr(request.app.ctx, "input_channels", []))

        def authed(handler: Callable[..., Awaitable[HTTPResponse]]) -> Callable[..., Awaitable[HTTPResponse]]:
            async def wrapped(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
                claims = self.session(request)
                if claims is None:
                    return _error("未登录或登录已过期，请重新登录", 401)
                if request.method == "POST" and not (request.content_type or "").startswith(
                    "application/json"
                ):
                    # Cross-site forms cannot send JSON without a CORS preflight.
                    return _error("请求需为 application/json", 415)
                try:
                    return await handler(request, claims, *args, **kwargs)
                except WalletUnavailable:
                    return _error("工单数据库暂时不可用，请稍后重试", 503)

            wrapped.__name__ = handler.__name__
            return wrapped

        @bp.route("/health", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/static/<name:path>", methods=["GET"])
        async def static(_: Request, name: str) -> HTTPResponse:
            if name not in STATIC_FILES:
                return _error("not found", 404)
            return response.raw((STATIC_DIR / name).read_bytes(),
                                content_type=STATIC_FILES[name], headers=_HEADERS)

        @bp.route("/", methods=["GET"])
        async def console(request: Request) -> HTTPResponse:
            if self.session(request) is None:
                return response.redirect("login", headers=_HEADERS)
            return response.html((STATIC_DIR / "desk.html").read_text(encoding="utf-8"),
                                 headers=_HEADERS)

        @bp.route("/login", methods=["GET"])
        async def login_page(request: Request) -> HTTPResponse:
            html = (STATIC_DIR / "desk_login.html").read_text(encoding="utf-8")
            failed = "1" if request.args.get("failed") else ""
            return response.html(html.replace("{{FAILED}}", failed), headers=_HEADERS)

        async def check_login(login: Any, password: Any) -> Optional[AgentAccount]:
            # scrypt is deliberately slow: keep it off the event loop.
            return await asyncio.get_running_loop().run_in_executor(
                None, self.directory.authenticate, login, password
            )

        @bp.route("/login", methods=["POST"])
        async def login(request: Request) -> HTTPResponse:
            wants_json = (request.content_type or "").startswith("application/json")
            try:
                body = (request.json if wants_json else request.form) or {}
            except Exception:
                body = None
            if not hasattr(body, "get"):
                return _error("请求格式错误", 400)
            account = await check_login(body.get("login"), body.get("password"))
            if account is None:
                await asyncio.sleep(0.3)  # slows down password guessing
                if wants_json:
                    return _error("账号或密码错误", 401)
                return response.redirect("login?failed=1", status=303, headers=_HEADERS)
            token = self.signer.issue(account)
            reply = (_ok({"token": token, "login": account.login, "name": account.name})
                     if wants_json else response.redirect("./", status=303, headers=_HEADERS))
            reply.cookies[COOKIE] = token
            cookie = reply.cookies[COOKIE]
            cookie["httponly"] = True
            cookie["samesite"] = "Strict"
            cookie["path"] = "/webhooks/desk"
            cookie["max-age"] = self.signer.lifetime
            return reply

        @bp.route("/logout", methods=["POST"])
        async def logout(_: Request) -> HTTPResponse:
            reply = _ok({"ok": True})
            reply.cookies[COOKIE] = ""
            reply.cookies[COOKIE]["max-age"] = 0
            reply.cookies[COOKIE]["path"] = "/webhooks/desk"
            return reply

        @bp.route("/api/me", methods=["GET"])
        @authed
        async def me(request: Request, claims: Dict[str, Any]) -> HTTPResponse:
            return _ok({"login": claims["sub"], "name": claims.get("name")})

        @bp.route("/api/tickets", methods=["GET"])
        @authed
        async def tickets(request: Request, claims: Dict[str, Any]) -> HTTPResponse:
            statuses = ("resolved",) if request.args.get("status") == "resolved" else ("queued", "assigned")
            rows = await self.desk.tickets(statuses=statuses)
            return _ok({"tickets": [ticket_json(t) for t in rows]})

        load = self.desk.ticket

        def with_ticket(handler: Callable[..., Awaitable[HTTPResponse]]) -> Callable[..., Awaitable[HTTPResponse]]:
            """Passes the ticket named in the URL to ``handler``; 404 if there is none."""
            async def wrapped(request: Request, claims: Dict[str, Any], ticket_id: str) -> HTTPResponse:
                ticket = await load(ticket_id)
                if ticket is None:
                    return _error("工单不存在", 404)
                return await handler(request, claims, ticket)

            wrapped.__name__ = handler.__name__
            return wrapped

        @bp.route("/api/tickets/<ticket_id>", methods=["GET"])
        @authed
        @with_ticket
        async def ticket_detail(request: Request, claims: Dict[str, Any], ticket: Ticket) -> HTTPResponse:
            lines, paused = await relay(request).conversation(ticket.conversation)
            context = await self.desk.context(ticket)
            body = ticket_json(ticket)
            body.update({
                "user_name": context.user_name, "transactions": context.transactions,
                "csat": context.csat, "paused": paused,
                "transcript": lines or list(ticket.transcript),
            })
            return _ok(body)

        @bp.route("/api/tickets/<ticket_id>/claim", methods=["POST"])
        @authed
        @with_ticket
        async def claim(request: Request, claims: Dict[str, Any], ticket: Ticket) -> HTTPResponse:
            won = await self.desk.claim(ticket, agent=claims["sub"])
            if not won:
                current = await load(str(ticket.ticket_id))
                who = current.agent if current else None
                return _error(f"工单已被{who or '其他客服'}认领或已结束", 409)
            await relay(request).announce_join(ticket.conversation, login=claims["sub"],
                                               name=claims.get("name") or claims["sub"])
            return _ok(ticket_json(await load(str(ticket.ticket_id))))

        @bp.route("/api/tickets/<ticket_id>/reply", methods=["POST"])
        @authed
        @with_ticket
        async def reply(request: Request, claims: Dict[str, Any], ticket: Ticket) -> HTTPResponse:
            if ticket.status != "assigned" or ticket.agent != claims["sub"]:
                return _error("只能回复自己认领中的工单", 409)
            try:
                body = request.json
            except Exception:
                body = None
            text = body.get("text") if isinstance(body, dict) else None
            if not isinstance(text, str) or not text.strip():
                return _error("回复内容不能为空", 400)
            if len(text) > MAX_REPLY_CHARS:
                return _error(f"回复不能超过{MAX_REPLY_CHARS}字", 400)
            await relay(request).say(ticket.conversation, text=text.strip(), login=claims["sub"],
                                     name=claims.get("name") or claims["sub"])
            await self.desk.touch(ticket)
            return _ok({"ok": True})

        @bp.route("/api/tickets/<ticket_id>/resolve", methods=["POST"])
        @authed
        @with_ticket
        async def resolve(request: Request, claims: Dict[str, Any], ticket: Ticket) -> HTTPResponse:
            done = await self.desk.resolve(ticket, agent=claims["sub"])
            if not done:
                return _error("只能结束自己认领中的工单", 409)
            await relay(request).resume(ticket.conversation)
            return _ok(ticket_json(await load(str(ticket.ticket_id))))

        return bp
