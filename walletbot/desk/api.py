"""The agent desk: a Chinese web console and a JSON API at ``/webhooks/desk/``.

Agents log in (accounts from ``DESK_AGENTS_FILE``, scrypt hashes), get an
expiring signed session (HttpOnly cookie, or a Bearer token for API clients),
and work the ticket queue: claim, read the live transcript and the user's
recent transactions, reply, resolve. Every route but the login page, the
static files and the health check refuses requests without a valid session.

Logins are throttled per attempted account and per client address
(:mod:`walletbot.desk.throttle`: back-off, then a lock), their passwords are
checked in a small pool of their own (:class:`~walletbot.desk.auth.PasswordChecker`),
logout revokes the session on every replica (:mod:`walletbot.desk.revocation`),
and logins, claims, replies and resolves go to the audit log, which admins
read at ``GET api/audit``.
"""

from __future__ import annotations

import asyncio
import html
import importlib
import logging
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional, Sequence, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from walletbot import settings
from walletbot.desk import assign
from walletbot.desk import sla
from walletbot.desk.addresses import TrustedProxies, client_address
from walletbot.desk.auth import (
    AgentAccount, AgentDirectory, LoginBusy, PasswordChecker, SessionSigner,
)
from walletbot.desk.presence import PresenceRecorder
from walletbot.desk.relay import Relay
from walletbot.desk.routing import HEADERS, DeskRoutes, error, ok
from walletbot.desk.revocation import Revocations, RevocationUnavailable, make_revocations
from walletbot.desk.service import AUDIT_PAGE, DeskService, attempted_login
from walletbot.desk.throttle import (
    DEFAULT_LOCK_MINUTES, DEFAULT_MAX_FAILURES, Throttle, Verdict, account_key, address_key,
    make_throttle,
)
from walletbot.handoff.levels import ServiceLevels
from walletbot.ops import metrics
from walletbot.privacy import mask_pii
from walletbot.store import desk_tools
from walletbot.store.audit import MAX_LIST as MAX_AUDIT
from walletbot.store.rows import AuditEntry, Ticket
from walletbot.store.service import WalletService, WalletUnavailable

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
_JS, _CSS = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
STATIC_FILES = {
    "desk.js": _JS, "desk.css": _CSS,
    # One script and one stylesheet per feature (see FEATURES).
    "desk_sla.js": _JS, "desk_sla.css": _CSS,
    "desk_tools.js": _JS, "desk_tools.css": _CSS,
    "desk_canned.js": _JS, "desk_canned.css": _CSS,
    "desk_notify.js": _JS,
    "dashboard.js": _JS, "dashboard.css": _CSS,
    "dashboard_link.js": _JS,
}
COOKIE = "desk_session"
MAX_REPLY_CHARS = 2000
# A login that comes during a short back-off waits it out instead of being refused.
MAX_BACKOFF_WAIT = 2.0
LOGIN_FAILED = "账号或密码错误，请重试。"
LOGIN_BUSY = "登录请求过多，请稍后再试。"
LOGIN_WAIT = "登录尝试过于频繁，请在 {seconds} 秒后重试。"
LOGIN_LOCKED = "登录失败次数过多，登录已临时锁定，请在 {minutes} 分钟后（{time} 之后）重试。"
_HEADERS = HEADERS
# The feature modules that add routes (each has ``register(bp, routes)``).
FEATURES = (
    "walletbot.desk.sla",
    "walletbot.desk.tools",
    "walletbot.desk.canned",
    "walletbot.desk.dashboard",
)
_error = error
_ok = ok


def audit_json(entry: AuditEntry) -> Dict[str, Any]:
    """An audit entry as the desk API returns it."""
    return {
        "id": entry.audit_id, "event": entry.event, "actor": entry.actor,
        "address": entry.address, "at": entry.created_at.isoformat(),
        "ticket_id": entry.ticket_id, "user_id": entry.user_id,
    }


def _local_time(epoch: float) -> str:
    """``HH:MM`` of ``epoch`` in the agents' time zone (HANDOFF_TIMEZONE)."""
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    try:
        from zoneinfo import ZoneInfo

        moment = moment.astimezone(ZoneInfo(settings.current().service_timezone))
    except Exception:  # unknown zone: UTC, said so
        return moment.strftime("%H:%M UTC")
    return moment.strftime("%H:%M")


def refusal_message(verdict: Verdict, now: float) -> str:
    """What a throttled login is told, in Chinese, with when to retry."""
    seconds = verdict.retry_after(now)
    if verdict.locked:
        return LOGIN_LOCKED.format(minutes=max(1, math.ceil(seconds / 60)),
                                   time=_local_time(verdict.retry_at))
    return LOGIN_WAIT.format(seconds=seconds)


def _setting(credentials: Dict[Text, Any], key: str, variable: str, default: float,
             cast: Callable[[Any], float]) -> Any:
    raw = credentials.get(key)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    try:
        value = cast(raw)
    except (TypeError, ValueError):
        value = 0
    if value <= 0:
        raise ValueError(f"desk channel: {key} ({variable}) must be a positive number, got {raw!r}")
    return value


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
        # Service-level clocks (walletbot/desk/sla.py); None until they happen.
        **{name: stamp.isoformat() if stamp else None for name, stamp in (
            ("in_queue_since", ticket.in_queue_since), ("claimed_at", ticket.claimed_at),
            ("first_reply_at", ticket.first_reply_at),
            ("agent_replied_at", ticket.agent_replied_at), ("overdue_at", ticket.overdue_at))},
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
            login_max_failures=_setting(credentials, "login_max_failures",
                                        "DESK_LOGIN_MAX_FAILURES", DEFAULT_MAX_FAILURES, int),
            login_lock_minutes=_setting(credentials, "login_lock_minutes",
                                        "DESK_LOGIN_LOCK_MINUTES", DEFAULT_LOCK_MINUTES, float),
            redis_url=credentials.get("redis_url") or settings.current().redis_url,
            trusted_proxies=TrustedProxies.parse(credentials.get("trusted_proxies")),
            tracker_db_url=credentials.get("tracker_db_url") or None,
            service_levels=ServiceLevels.from_credentials(credentials),
        )

    def __init__(
        self,
        *,
        secret: str,
        agents_file: str = "",
        session_hours: float = 8.0,
        directory: Optional[AgentDirectory] = None,
        wallet: Optional[WalletService] = None,
        login_max_failures: int = DEFAULT_MAX_FAILURES,
        login_lock_minutes: float = DEFAULT_LOCK_MINUTES,
        redis_url: Optional[str] = None,
        trusted_proxies: Optional[TrustedProxies] = None,
        throttle: Optional[Throttle] = None,
        revocations: Optional[Revocations] = None,
        checker: Optional[PasswordChecker] = None,
        tracker_db_url: Optional[str] = None,
        service_levels: Optional[ServiceLevels] = None,
    ) -> None:
        """Creates the channel.

        Args:
            secret: Key that signs sessions (DESK_SECRET).
            agents_file: The agents' YAML file (DESK_AGENTS_FILE).
            session_hours: Session lifetime.
            directory: The accounts (instead of ``agents_file``).
            wallet: The wallet DB gateway (the process-wide one by default).
            login_max_failures: Failed logins that lock an account or address.
            login_lock_minutes: How long the lock lasts.
            redis_url: Redis shared by replicas: throttle and revoked sessions.
            trusted_proxies: Peers whose X-Forwarded-For / X-Real-IP are believed.
            throttle, revocations, checker: Replace the defaults (tests).
            tracker_db_url: The tracker store the dashboard reads (TRACKER_DB_URL by default).
            service_levels: Service-level targets and timers (DESK_SLA_* by default).
        """
        self.signer = SessionSigner(secret, hours=session_hours)
        self.agents_file = agents_file
        self._directory = directory
        self.desk = DeskService(wallet)
        self.throttle = throttle or make_throttle(redis_url, max_failures=int(login_max_failures),
                                                  lock_minutes=float(login_lock_minutes))
        self.revocations = revocations or make_revocations(redis_url)
        self.checker = checker or PasswordChecker()
        self.trusted_proxies = trusted_proxies or TrustedProxies()
        self.tracker_db_url = tracker_db_url
        self.service_levels = service_levels or ServiceLevels.current()
        # Built by walletbot.desk.sla.register unless a test set its own first.
        self.sla_timer: Optional[sla.SlaTimer] = None

    @property
    def directory(self) -> AgentDirectory:
        """The agent accounts (read on first use)."""
        if self._directory is None:
            self._directory = AgentDirectory.from_file(Path(self.agents_file))
        return self._directory

    def client_address(self, request: Request) -> str:
        """The request's client address (forwarded headers only from a trusted proxy)."""
        return client_address(request, self.trusted_proxies)

    @staticmethod
    def _token(request: Request) -> Optional[str]:
        header = request.headers.get("Authorization", "")
        return header[len("Bearer "):] if header.startswith("Bearer ") else request.cookies.get(COOKIE)

    async def session(self, request: Request) -> Optional[Dict[str, Any]]:
        """The agent's session claims from the cookie or a Bearer token; None if revoked.

        Raises:
            RevocationUnavailable: The shared revocation list did not answer.
        """
        claims = self.signer.verify(self._token(request))
        if claims is None or claims.get("sub") not in self.directory.accounts:
            return None
        if await self.revocations.is_revoked(claims["jti"]):
            return None
        return claims

    def _cookie(self, reply: HTTPResponse, value: str, max_age: int) -> None:
        reply.cookies[COOKIE] = value
        cookie = reply.cookies[COOKIE]
        cookie["httponly"] = True
        cookie["samesite"] = "Strict"
        cookie["path"] = "/webhooks/desk"
        cookie["max-age"] = max_age
        if settings.current().is_production:  # behind TLS: never over plain HTTP
            cookie["secure"] = True

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("desk_webhook", __name__)
        # Fail at start-up, not at the first login, when the accounts are broken.
        self.directory  # noqa: B018

        def relay(request: Request) -> Relay:
            return Relay(request.app.ctx.agent, getattr(request.app.ctx, "input_channels", []))

        # Agents seen at the desk (auto-assignment, the agents list, the wait estimate):
        # recorded from the console's queue poll only, so a supervisor with just the
        # dashboard open is not "at the desk". Throttled, never failing.
        presence = PresenceRecorder(lambda: self.desk.wallet)

        def authed(handler: Callable[..., Awaitable[HTTPResponse]]) -> Callable[..., Awaitable[HTTPResponse]]:
            async def wrapped(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
                try:
                    claims = await self.session(request)
                except RevocationUnavailable:
                    return _error("会话服务暂时不可用，请稍后重试", 503)
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
            try:
                claims = await self.session(request)
            except RevocationUnavailable:
                return _error("会话服务暂时不可用，请稍后重试", 503)
            if claims is None:
                return response.redirect("login", headers=_HEADERS)
            return response.html((STATIC_DIR / "desk.html").read_text(encoding="utf-8"),
                                 headers=_HEADERS)

        def login_html(message: str = "", status: int = 200,
                       headers: Optional[Dict[str, str]] = None) -> HTTPResponse:
            page = (STATIC_DIR / "desk_login.html").read_text(encoding="utf-8")
            page = (page.replace("{{FAILED}}", "1" if message else "")
                    .replace("{{ERROR_HIDDEN}}", "" if message else " hidden")
                    .replace("{{ERROR}}", html.escape(message or LOGIN_FAILED)))
            return response.html(page, status=status, headers={**_HEADERS, **(headers or {})})

        @bp.route("/login", methods=["GET"])
        async def login_page(request: Request) -> HTTPResponse:
            return login_html(LOGIN_FAILED if request.args.get("failed") else "")

        def refuse(wants_json: bool, message: str, retry_after: int,
                   retry_at: Optional[float] = None, locked: bool = False) -> HTTPResponse:
            """429 with when to retry, in the JSON API or on the login page."""
            headers = {"Retry-After": str(retry_after)}
            if not wants_json:
                return login_html(message, 429, headers)
            body: Dict[str, Any] = {"error": message, "retry_after": retry_after, "locked": locked}
            if retry_at is not None:
                body["retry_at"] = datetime.fromtimestamp(retry_at, timezone.utc).isoformat()
            return response.json(body, status=429, headers={**_HEADERS, **headers})

        def refuse_throttled(wants_json: bool, verdict: Verdict) -> HTTPResponse:
            now = self.throttle.clock()
            return refuse(wants_json, refusal_message(verdict, now), verdict.retry_after(now),
                          verdict.retry_at, verdict.locked)

        async def admit(keys: Sequence[str]) -> Verdict:
            """Counts the attempt unless locked or backing off; waits out a short back-off."""
            verdict = await self.throttle.attempt(keys)
            if not verdict.allowed and not verdict.locked:
                wait = verdict.retry_at - self.throttle.clock()
                if wait <= MAX_BACKOFF_WAIT:
                    # A little over: asyncio may wake a timer early by its clock resolution.
                    await asyncio.sleep(max(0.0, wait) + 0.02)
                    verdict = await self.throttle.attempt(keys)
            return verdict

        @bp.route("/login", methods=["POST"])
        async def login(request: Request) -> HTTPResponse:
            wants_json = (request.content_type or "").startswith("application/json")
            try:
                body = (request.json if wants_json else request.form) or {}
            except Exception:
                body = None
            if not hasattr(body, "get"):
                return _error("请求格式错误", 400)
            name, password = body.get("login"), body.get("password")
            if not (isinstance(name, str) and isinstance(password, str) and name and password
                    and len(name) <= 256 and len(password) <= 1024):
                # Can never match an account (AgentDirectory.authenticate): nothing to
                # hash, count or audit.
                if wants_json:
                    return _error("账号或密码错误", 401)
                return response.redirect("login?failed=1", status=303, headers=_HEADERS)
            # Refused before anything is counted or hashed: the pool is full.
            if self.checker.busy:
                return refuse(wants_json, LOGIN_BUSY, 1)
            address = self.client_address(request)
            keys = (account_key(name), address_key(address))
            verdict = await admit(keys)
            if not verdict.allowed:
                return refuse_throttled(wants_json, verdict)
            try:
                # scrypt is deliberately slow: in its own pool, off the event loop.
                account: Optional[AgentAccount] = await self.checker.run(
                    self.directory.authenticate, name, password)
            except LoginBusy:
                return refuse(wants_json, LOGIN_BUSY, 1)
            if account is None:
                actor = attempted_login(name, known=name in self.directory.accounts)
                await self.desk.audit("login_failure", actor=actor, address=address)
                if verdict.locks_now:
                    logger.warning("desk login locked for %s from %s", actor, address)
                    await self.desk.audit("login_locked", actor=actor, address=address)
                    now = self.throttle.clock()
                    return refuse_throttled(wants_json, Verdict(
                        False, retry_at=now + self.throttle.lock_seconds, locked=True))
                if wants_json:
                    return _error("账号或密码错误", 401)
                return response.redirect("login?failed=1", status=303, headers=_HEADERS)
            await self.throttle.succeeded(keys)
            await self.desk.audit("login_success", actor=account.login, address=address)
            token = self.signer.issue(account)
            reply = (_ok({"token": token, "login": account.login, "name": account.name,
                          "roles": list(account.roles)})
                     if wants_json else response.redirect("./", status=303, headers=_HEADERS))
            self._cookie(reply, token, self.signer.lifetime)
            return reply

        @bp.route("/logout", methods=["POST"])
        async def logout(request: Request) -> HTTPResponse:
            """Ends the session: its token is refused from now on, on every replica."""
            claims = self.signer.verify(self._token(request))
            reply = _ok({"ok": True})
            if claims is not None:
                try:
                    await self.revocations.revoke(claims["jti"], float(claims["exp"]))
                except RevocationUnavailable:
                    reply = _error("退出登录未能在所有服务器生效，请稍后重试", 503)
                await self.desk.audit("logout", actor=str(claims["sub"]),
                                      address=self.client_address(request))
            self._cookie(reply, "", 0)
            return reply

        @bp.route("/api/me", methods=["GET"])
        @authed
        async def me(request: Request, claims: Dict[str, Any]) -> HTTPResponse:
            account = self.directory.accounts[claims["sub"]]
            return _ok({"login": claims["sub"], "name": claims.get("name"),
                        "roles": list(account.roles)})

        @bp.route("/api/audit", methods=["GET"])
        @authed
        async def audit_log(request: Request, claims: Dict[str, Any]) -> HTTPResponse:
            """The newest audit entries (``?limit=``, ``?before=<id>``): admins only."""
            account = self.directory.accounts.get(claims["sub"])
            if account is None or not account.is_admin:
                return _error("只有管理员可以查看审计日志", 403)
            limit, before = request.args.get("limit", ""), request.args.get("before", "")
            def number(text: str, digits: int) -> bool:
                return text.isascii() and text.isdigit() and len(text) <= digits

            if (limit and not number(limit, 4)) or (before and not number(before, 12)):
                return _error("limit 和 before 须为正整数", 400)
            entries = await self.desk.audit_entries(
                limit=min(int(limit), MAX_AUDIT) if limit else AUDIT_PAGE,
                before_id=int(before) if before else None)
            return _ok({"entries": [audit_json(e) for e in entries]})

        @bp.route("/api/tickets", methods=["GET"])
        @authed
        async def tickets(request: Request, claims: Dict[str, Any]) -> HTTPResponse:
            await presence.seen(claims["sub"])  # the console polls this every 2 s
            statuses = ("resolved",) if request.args.get("status") == "resolved" else ("queued", "assigned")
            rows = await self.desk.tickets(statuses=statuses)
            # Overdue tickets first, each with its service-level state.
            timer, levels = self.sla_timer, self.service_levels
            now = timer.clock() if timer else sla.utcnow()
            rows = sla.overdue_first(rows, levels=levels, now=now)
            return _ok({"tickets": [{**ticket_json(t), **sla.state_json(t, levels=levels, now=now)}
                                    for t in rows]})

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
            account = self.directory.accounts[claims["sub"]]
            outcome = await assign.claim(self.desk, ticket, account)
            if outcome == desk_tools.FULL:
                return _error(assign.cap_message(account.max_tickets), 409)
            if outcome != desk_tools.CLAIMED:
                current = await load(str(ticket.ticket_id))
                who = current.agent if current else None
                return _error(f"工单已被{who or '其他客服'}认领或已结束", 409)
            await relay(request).announce_join(ticket.conversation, login=claims["sub"],
                                               name=claims.get("name") or claims["sub"])
            await self.desk.audit("claim", actor=claims["sub"], address=self.client_address(request),
                                  ticket_id=ticket.ticket_id)
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
            # Recorded first and only while still this agent's: a requeue or a transfer
            # since the check above makes the reply a 409, not a message to the user.
            if not await self.desk.touch(ticket, agent=claims["sub"]):
                return _error("工单已被退回队列或转接，回复未发送", 409)
            await relay(request).say(ticket.conversation, text=mask_pii(text.strip()), login=claims["sub"],
                                     name=claims.get("name") or claims["sub"])
            # The event and the ticket: never what was written.
            await self.desk.audit("reply", actor=claims["sub"], address=self.client_address(request),
                                  ticket_id=ticket.ticket_id)
            return _ok({"ok": True})

        @bp.route("/api/tickets/<ticket_id>/resolve", methods=["POST"])
        @authed
        @with_ticket
        async def resolve(request: Request, claims: Dict[str, Any], ticket: Ticket) -> HTTPResponse:
            done = await self.desk.resolve(ticket, agent=claims["sub"])
            if not done:
                return _error("只能结束自己认领中的工单", 409)
            metrics.handoff_resolved(ticket.channel)
            await self.desk.audit("resolve", actor=claims["sub"], address=self.client_address(request),
                                  ticket_id=ticket.ticket_id)
            await relay(request).resume(ticket.conversation)
            return _ok(ticket_json(await load(str(ticket.ticket_id))))

        @bp.route("/api/tickets/<ticket_id>/end-session", methods=["POST"])
        @authed
        @with_ticket
        async def end_session(request: Request, claims: Dict[str, Any], ticket: Ticket) -> HTTPResponse:
            """Ends the user's web session (e.g. a shared computer): tokens, sockets, binding."""
            from walletbot.channels.web import end_web_session
            from walletbot.channels.web.sessions import SessionStoreUnavailable

            if ticket.status != "assigned" or ticket.agent != claims["sub"]:
                return _error("只能操作自己认领中的工单", 409)
            if ticket.channel != "web":
                return _error("只有网页会话可以强制下线", 400)
            try:
                ended = await end_web_session(request.app, ticket.sender_id)
            except SessionStoreUnavailable:
                return _error("会话服务暂时不可用，请稍后再试", 503)
            await self.desk.audit("end_session", actor=claims["sub"],
                                  address=self.client_address(request), ticket_id=ticket.ticket_id)
            return _ok({"ok": True, "sockets": ended.get("sockets", 0)})

        routes = DeskRoutes(channel=self, authed=authed, with_ticket=with_ticket, relay=relay)
        for feature in FEATURES:
            importlib.import_module(feature).register(bp, routes)

        @bp.listener("after_server_stop")
        async def close_clients(*_: Any) -> None:
            await self.throttle.close()
            await self.revocations.close()

        return bp
