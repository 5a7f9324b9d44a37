"""The web chat page's channel: socket.io with a server-issued session token.

Rasa's own socket.io channel lets the client name its session id in every
message; here the session (the Rasa sender id) comes only from a signed JWT
that this channel issued, so nobody can write into someone else's
conversation. Anonymous visitors get a token too and can ask FAQs; in the dev
profile a demo login (张三 / 李四) binds the session to a wallet user.

Sessions are revocable: ``POST /logout`` and the desk's "end session"
(:func:`walletbot.channels.web.sessions.end_web_session`) revoke the session
in the session store (Redis when ``REDIS_URL`` is set), disconnect its
sockets and remove its binding; every check of a token (history, socket.io
connect, each message) asks the store. Logged-in tokens live ``session_hours``
(``WEB_SESSION_HOURS``), anonymous ones ``anonymous_session_hours``.

Abuse limits: ``POST /token`` per client address and minute; concurrent
sockets per client address (per replica); a socket on which nothing was said
for ``idle_minutes`` is disconnected (engine.io pings do not count). The
client address is the TCP peer, or what a trusted proxy forwarded
(:mod:`walletbot.channels.web.addresses`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, Text

import jwt
from rasa.shared.core.trackers import EventVerbosity
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer
from socketio.exceptions import ConnectionRefusedError as Refused

from walletbot import settings
from walletbot.channels.web.addresses import (
    DEFAULT_TRUSTED_PROXIES,
    TrustedProxies,
    client_address,
    limit_key,
)
from walletbot.channels.web.sessions import (
    SessionStore,
    SessionStoreUnavailable,
    make_store,
    session_of,
)
from walletbot.conversation import conversation_id
from walletbot.store.service import WalletUnavailable, default_service
from walletbot.turns import screening
from walletbot.turns.pipeline import Inbound, TurnPipeline, deliverable, pipeline_for
from walletbot.turns.ratelimit import Limiter, RateLimiter, RedisRateLimiter

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Files the page may load; anything else under /static is 404.
STATIC_FILES = {
    "chat.js": "text/javascript; charset=utf-8",
    "chat.css": "text/css; charset=utf-8",
    "vendor/socket.io.min.js": "text/javascript; charset=utf-8",
}
DEMO_USERS = {"zhangsan": ("U1001", "张三"), "lisi": ("U1002", "李四")}
SOCKETIO_PATH = "/webhooks/web/socket.io"
CHANNEL = "web"

HOUR = 3600
DEFAULT_SESSION_HOURS = 12.0  # logged in: the token reads the user's transactions
DEFAULT_ANONYMOUS_SESSION_HOURS = 7 * 24.0  # FAQ only: a conversation kept for a week
MAX_SESSION_HOURS = 30 * 24.0
DEFAULT_TOKENS_PER_MINUTE = 10
DEFAULT_SOCKETS_PER_ADDRESS = 20
DEFAULT_IDLE_MINUTES = 30.0
# An engine.io connection must join the socket.io namespace within this time:
# a client cannot hold connections open without a session.
HANDSHAKE_TIMEOUT = 30.0
# Revocations outlive the token a little: replicas' clocks are not one clock.
CLOCK_LEEWAY = 60.0
TOKEN_LIMIT_PREFIX = "walletbot:web-token:"
# Seconds a closing engine.io connection may take to hand over its last packets.
ENGINE_CLOSE_TIMEOUT = 5.0

# What the page shows (socket.io connect errors carry ``{"reason": ...}``).
TEXT_TOO_MANY_TOKENS = "请求过于频繁，请稍后再试"
TEXT_BAD_SESSION = "会话无效或已过期"
TEXT_SESSION_ENDED = "会话已结束"
TEXT_TOO_MANY_SOCKETS = "当前网络打开的聊天窗口过多，请关闭部分页面后重试"
TEXT_UNAVAILABLE = "服务暂时不可用，请稍后再试"


@dataclass
class _Socket:
    """A socket.io connection of this replica."""

    session: str
    address: str
    exp: float
    connected: float
    active: float


class WebOutput(SocketIOOutput):
    """Rasa's socket.io output, with custom JSON sent as one ``{"custom": ...}`` event.

    ``on_send(session)`` runs after each message: a session an agent or the bot
    is talking to is not idle.
    """

    def __init__(self, sio: Any, bot_message_evt: Text = "bot_uttered",
                 on_send: Optional[Callable[[str], Awaitable[None]]] = None) -> None:
        super().__init__(sio, bot_message_evt)
        self._on_send = on_send

    @classmethod
    def name(cls) -> Text:
        return "web"

    async def _send_message(self, socket_id: Text, response: Any) -> None:
        await super()._send_message(socket_id, response)
        if self._on_send is not None:
            await self._on_send(socket_id)

    async def send_custom_json(
        self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any
    ) -> None:
        await self._send_message(recipient_id, {"custom": json_message})


class WebChatInput(InputChannel):
    """Web chat page + socket.io endpoint at ``/webhooks/web/``."""

    @classmethod
    def name(cls) -> Text:
        return "web"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = credentials or {}
        return cls(
            jwt_key=str(credentials.get("jwt_key") or ""),
            jwt_method=credentials.get("jwt_method") or "HS256",
            session_ttl=_hours(credentials, "session_hours", DEFAULT_SESSION_HOURS,
                               "WEB_SESSION_HOURS") * HOUR,
            anonymous_ttl=_hours(credentials, "anonymous_session_hours",
                                 DEFAULT_ANONYMOUS_SESSION_HOURS) * HOUR,
            demo_login=str(credentials.get("demo_login", "true")).lower() in ("1", "true", "yes"),
            redis_url=credentials.get("redis_url") or settings.current().redis_url,
            trusted_proxies=credentials.get("trusted_proxies") or DEFAULT_TRUSTED_PROXIES,
            tokens_per_minute=_number(credentials, "tokens_per_minute", DEFAULT_TOKENS_PER_MINUTE),
            max_sockets_per_address=_number(credentials, "max_sockets_per_address",
                                            DEFAULT_SOCKETS_PER_ADDRESS),
            idle_timeout=_number(credentials, "idle_minutes", DEFAULT_IDLE_MINUTES, minimum=1) * 60,
        )

    def __init__(
        self,
        *,
        jwt_key: str,
        jwt_method: str = "HS256",
        session_ttl: float = DEFAULT_SESSION_HOURS * HOUR,
        anonymous_ttl: float = DEFAULT_ANONYMOUS_SESSION_HOURS * HOUR,
        demo_login: bool = True,
        redis_url: Optional[str] = None,
        bind: Optional[Callable[..., Awaitable[None]]] = None,
        unbind: Optional[Callable[..., Awaitable[bool]]] = None,
        pipeline: Optional[TurnPipeline] = None,
        store: Optional[SessionStore] = None,
        trusted_proxies: Any = DEFAULT_TRUSTED_PROXIES,
        tokens_per_minute: int = DEFAULT_TOKENS_PER_MINUTE,
        token_limiter: Optional[Limiter] = None,
        max_sockets_per_address: int = DEFAULT_SOCKETS_PER_ADDRESS,
        idle_timeout: float = DEFAULT_IDLE_MINUTES * 60,
        sweep_interval: Optional[float] = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        socketio_options: Optional[Dict[str, Any]] = None,
    ) -> None:
        """The channel; the keyword arguments are ``credentials.yml``'s (see :meth:`from_credentials`).

        Args:
            session_ttl: Seconds a logged-in session's token is valid.
            anonymous_ttl: Seconds an anonymous session's token is valid.
            store: Revocations, activity, sockets; by default Redis when
                ``redis_url`` is set, else in memory.
            trusted_proxies: Peers whose X-Real-IP / X-Forwarded-For are believed.
            tokens_per_minute: ``POST /token`` per client address and minute (0: no limit).
            max_sockets_per_address: Concurrent sockets per client address on this replica (0: no cap).
            idle_timeout: Seconds without a message (from the user, the bot or an
                agent) before a socket is disconnected.
            sweep_interval: Seconds between checks for idle, expired and revoked
                sockets; by default a quarter of ``idle_timeout``, at most 30.
            handshake_timeout: Seconds an engine.io connection may stay without
                joining the socket.io namespace.
            socketio_options: More ``socketio.AsyncServer`` options (tests: ``ping_interval``).
        """
        if not jwt_key:
            raise ValueError("the web channel needs jwt_key: set WEB_JWT_SECRET")
        for name, ttl in (("session_ttl", session_ttl), ("anonymous_ttl", anonymous_ttl)):
            if not 0 < ttl <= MAX_SESSION_HOURS * HOUR:
                raise ValueError(f"{name} must be between 0 and {MAX_SESSION_HOURS:.0f} hours")
        self.jwt_key = jwt_key
        self.jwt_method = jwt_method
        self.session_ttl = float(session_ttl)
        self.anonymous_ttl = float(anonymous_ttl)
        self.demo_login = demo_login
        self.redis_url = redis_url
        self._bind = bind or _bind_in_wallet_db
        self._unbind = unbind or _unbind_in_wallet_db
        self.sio: Optional[AsyncServer] = None
        self.pipeline = pipeline
        self.store: SessionStore = store if store is not None else make_store(redis_url)
        self.proxies = (trusted_proxies if isinstance(trusted_proxies, TrustedProxies)
                        else TrustedProxies(trusted_proxies))
        self.token_limiter: Limiter = token_limiter or (
            RedisRateLimiter(redis_url, tokens_per_minute, prefix=TOKEN_LIMIT_PREFIX)
            if redis_url else RateLimiter(tokens_per_minute))
        self.max_sockets_per_address = max_sockets_per_address
        self.idle_timeout = float(idle_timeout)
        self.sweep_interval = float(sweep_interval if sweep_interval is not None
                                    else min(30.0, max(self.idle_timeout / 4, 1.0)))
        self.handshake_timeout = float(handshake_timeout)
        self.socketio_options = dict(socketio_options or {})
        self._app: Any = None  # the Sanic app: socket.io handlers get no request
        self._sockets: Dict[str, _Socket] = {}  # this replica's, by socket.io sid
        self._by_session: Dict[str, Set[str]] = {}  # session -> this replica's sids
        self._per_address: Counter = Counter()
        self._unjoined: Dict[str, float] = {}  # engine.io sid -> first seen without a session
        self._touched: Dict[str, float] = {}  # session -> last activity written to the store
        self._sweeper: Optional[asyncio.Task] = None
        self._closing: Set[asyncio.Task] = set()

    @property
    def token_ttl(self) -> float:
        """The longest a token of ours is valid (any session's)."""
        return max(self.session_ttl, self.anonymous_ttl)

    # -- tokens ---------------------------------------------------------------

    def issue_token(self, *, session_id: str, user_id: Optional[str], name: Optional[str]) -> str:
        """A signed session token: the session id is the channel's id of the user.

        Logged in (``user_id``) it lives ``session_ttl``, anonymous ``anonymous_ttl``.
        """
        now = int(time.time())
        ttl = self.session_ttl if user_id else self.anonymous_ttl
        claims = {"sub": session_id, "uid": user_id, "name": name, "iat": now,
                  "exp": now + int(ttl)}
        return jwt.encode(claims, self.jwt_key, algorithm=self.jwt_method)

    def verify_token(self, token: Any) -> Optional[Dict[str, Any]]:
        """The claims of a valid, unexpired token of ours, else None."""
        if not isinstance(token, str) or not token or len(token) > 4096:
            return None
        if token.startswith("Bearer "):
            token = token[len("Bearer "):]
        try:
            claims = jwt.decode(token, self.jwt_key, algorithms=[self.jwt_method],
                                options={"require": ["sub", "exp"]})
        except jwt.PyJWTError:
            return None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith("web-") or len(sub) > 64:
            return None
        return claims

    async def authenticate(self, token: Any) -> Optional[Dict[str, Any]]:
        """Like :meth:`verify_token`, and None for a revoked session too.

        Raises:
            SessionStoreUnavailable: Redis is down: whether it was revoked is unknown.
        """
        claims = self.verify_token(token)
        if claims is None or await self.store.is_revoked(claims["sub"]):
            return None
        return claims

    async def client_address(self, request: Any) -> str:
        """The client's address: the TCP peer, or what a trusted proxy forwarded."""
        return await client_address(request, self.proxies)

    async def client_key(self, request: Any) -> str:
        """What the per-address limits count for this request (an IPv6 client: its /64)."""
        return limit_key(await self.client_address(request))

    def get_output_channel(self) -> Optional[OutputChannel]:
        """For pushes outside a user turn (agent replies, the handoff's end)."""
        return None if self.sio is None else self._output()

    def _output(self) -> WebOutput:
        assert self.sio is not None
        return WebOutput(self.sio, "bot_uttered", on_send=self._touch)

    # -- sessions ---------------------------------------------------------------

    async def _touch(self, session: str) -> None:
        """Records activity in ``session`` (at most every few seconds per replica)."""
        now = time.time()
        for sid in self._by_session.get(session, ()):
            self._sockets[sid].active = now
        if now - self._touched.get(session, 0.0) < min(10.0, self.sweep_interval):
            return
        self._touched[session] = now
        try:
            await self.store.touch(session, ttl=self.idle_timeout + 2 * self.sweep_interval)
        except SessionStoreUnavailable:
            # The local mark above still counts; without the shared one the sweep
            # makes no idle verdict while the store is down (see _sweep).
            self._touched.pop(session, None)

    async def revoke(self, session: str, ttl: Optional[float] = None) -> None:
        """Revokes every token of ``session`` (by default for the longest token lifetime).

        Raises:
            SessionStoreUnavailable: Not revoked: Redis is down.
        """
        await self.store.revoke(session, (self.token_ttl if ttl is None else ttl) + CLOCK_LEEWAY)

    async def disconnect_session(self, session: str, reason: str) -> int:
        """Tells the session's pages why, then disconnects its sockets on every replica.

        Returns:
            How many sockets were told to disconnect.
        """
        if self.sio is None:
            return 0
        sids: Set[str] = set(self._by_session.get(session, ()))
        try:
            sids |= await self.store.sockets_of(session)
        except SessionStoreUnavailable:
            pass  # the sweep of each replica finds them revoked
        if sids:
            await self.sio.emit("session_end", {"reason": reason}, room=session)
        for sid in sids:
            await self._disconnect(sid)
        return len(sids)

    async def _disconnect(self, sid: str, reason: Optional[str] = None) -> None:
        """Disconnects a socket (and, held here, its engine.io connection)."""
        assert self.sio is not None
        if reason is not None:
            await self.sio.emit("session_end", {"reason": reason}, to=sid)
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        await self.sio.disconnect(sid)
        if eio_sid is not None:
            self._close_engine(eio_sid)

    def _close_engine(self, eio_sid: str) -> None:
        """Closes an engine.io connection in the background.

        engine.io's close waits until the client has fetched what is queued for
        it; a long-polling client that never polls again would hold the caller
        (a logout, the sweep) forever.
        """
        assert self.sio is not None
        sio = self.sio

        async def close() -> None:
            try:
                await asyncio.wait_for(sio.eio.disconnect(eio_sid), ENGINE_CLOSE_TIMEOUT)
            except Exception:  # gone already, or never fetched: engine.io drops it
                pass

        task = asyncio.get_running_loop().create_task(close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def end_session(self, session: str, *, reason: str = "ended",
                          ttl: Optional[float] = None) -> Dict[str, Any]:
        """Revokes the session, disconnects its sockets, removes its binding.

        See :func:`walletbot.channels.web.sessions.end_web_session`.
        """
        session = session_of(session)
        await self.revoke(session, ttl)
        sockets = await self.disconnect_session(session, reason)
        unbound = await self._unbind(session_id=session)
        logger.info("web session ended (%s): %d socket(s), binding removed: %s",
                    reason, sockets, bool(unbound))
        return {"session": session, "sockets": sockets, "unbound": bool(unbound)}

    async def sweep(self) -> None:
        """Disconnects this replica's revoked, expired and idle sockets, and
        engine.io connections that never joined with a session."""
        if self.sio is None:
            return
        now = time.time()
        monotonic = time.monotonic()
        eio_sockets = getattr(self.sio.eio, "sockets", {})
        for eio_sid in list(eio_sockets):
            if self.sio.manager.sid_from_eio_sid(eio_sid, "/") is not None:
                self._unjoined.pop(eio_sid, None)
                continue
            first = self._unjoined.setdefault(eio_sid, monotonic)
            if monotonic - first >= self.handshake_timeout:
                self._unjoined.pop(eio_sid, None)
                self._close_engine(eio_sid)
        for eio_sid in [e for e in self._unjoined if e not in eio_sockets]:
            del self._unjoined[eio_sid]
        for session in [s for s, t in self._touched.items() if now - t > self.sweep_interval * 2]:
            del self._touched[session]

        sessions = {info.session for info in self._sockets.values()}
        try:
            revoked = await self.store.revoked_among(sessions)
            active: Optional[Dict[str, float]] = await self.store.last_active(sessions)
        except SessionStoreUnavailable:
            revoked, active = set(), None  # no idle verdicts on half the facts
        for sid, info in list(self._sockets.items()):
            if info.session in revoked:
                reason = "revoked"
            elif now >= info.exp:
                reason = "expired"
            elif active is not None and now - max(
                    info.connected, info.active, active.get(info.session, 0.0)) >= self.idle_timeout:
                reason = "idle"
            else:
                continue
            logger.info("disconnecting a web socket: %s", reason)
            await self._disconnect(sid, reason)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("web socket sweep failed")

    # -- blueprint --------------------------------------------------------------

    def _server(self) -> AsyncServer:
        manager = None
        if self.redis_url:
            from walletbot.rasa_compat.socketio import ResilientRedisManager

            # Several Rasa replicas: an emit on one reaches sockets on all.
            manager = ResilientRedisManager(self.redis_url)
        kwargs: Dict[str, Any] = {"async_mode": "sanic", "cors_allowed_origins": []}
        if manager is not None:
            kwargs["client_manager"] = manager
        return AsyncServer(**{**kwargs, **self.socketio_options})

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        sio = self._server()
        self.sio = sio
        bp = SocketBlueprint(sio, SOCKETIO_PATH, "web_webhook", __name__)

        @bp.listener("before_server_start")
        async def remember_app(app: Any, _loop: Any) -> None:
            self._app = app
            app.ctx.web_chat = self  # for end_web_session(app, ...)
            if self._sweeper is None or self._sweeper.done():
                self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

        @bp.listener("before_server_stop")
        async def stop_sweeping(_app: Any, _loop: Any) -> None:
            sweeper, self._sweeper = self._sweeper, None
            if sweeper is not None:
                sweeper.cancel()
                try:
                    await sweeper
                except (asyncio.CancelledError, Exception):
                    pass

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/chat", methods=["GET"])
        async def page(_: Request) -> HTTPResponse:
            html = (STATIC_DIR / "chat.html").read_text(encoding="utf-8")
            html = html.replace("{{DEMO_LOGIN}}", "true" if self.demo_login else "false")
            return response.html(html, headers=_PAGE_HEADERS)

        @bp.route("/static/<name:path>", methods=["GET"])
        async def static(_: Request, name: str) -> HTTPResponse:
            if name not in STATIC_FILES:
                return response.json({"error": "not found"}, status=404)
            body = (STATIC_DIR / name).read_bytes()
            return response.raw(body, content_type=STATIC_FILES[name],
                                headers={"Cache-Control": "public, max-age=300"})

        @bp.route("/token", methods=["POST"])
        async def token(request: Request) -> HTTPResponse:
            if not await self.token_limiter.allow(await self.client_key(request)):
                return response.json({"error": TEXT_TOO_MANY_TOKENS}, status=429,
                                     headers={"Retry-After": "60"})
            body = _json_body(request)
            if body is None:
                return response.json({"error": "请求格式错误：需要 JSON 对象"}, status=400)
            login = body.get("user")
            session_id = f"web-{secrets.token_hex(12)}"
            if login is None or login == "":
                return response.json({"token": self.issue_token(
                    session_id=session_id, user_id=None, name=None), "user": None})
            if not self.demo_login:
                return response.json({"error": "演示登录未开启"}, status=403)
            if not isinstance(login, str) or login not in DEMO_USERS:
                return response.json({"error": "未知的演示用户，请选择张三或李四"}, status=400)
            user_id, name = DEMO_USERS[login]
            try:
                await self._bind(session_id=session_id, user_id=user_id)
            except WalletUnavailable:
                return response.json({"error": "登录服务暂时不可用，请稍后再试"}, status=503)
            return response.json({
                "token": self.issue_token(session_id=session_id, user_id=user_id, name=name),
                "user": {"id": user_id, "name": name},
            })

        @bp.route("/logout", methods=["POST"])
        async def logout(request: Request) -> HTTPResponse:
            claims = self.verify_token(request.headers.get("Authorization", ""))
            if claims is None:
                return response.json({"error": TEXT_BAD_SESSION}, status=401)
            session = claims["sub"]
            try:
                await self.revoke(session, ttl=max(float(claims["exp"]) - time.time(), 0.0))
            except SessionStoreUnavailable:
                return response.json({"error": "退出登录失败，请稍后再试"}, status=503)
            await self.disconnect_session(session, "logout")
            try:
                unbound = await self._unbind(session_id=session)
            except WalletUnavailable:
                # The token is dead anyway; the binding is unreachable without it.
                logger.error("web logout: binding not removed, wallet DB unavailable")
                unbound = False
            return response.json({"ok": True, "unbound": bool(unbound)})

        @bp.route("/history", methods=["GET"])
        async def history(request: Request) -> HTTPResponse:
            try:
                claims = await self.authenticate(request.headers.get("Authorization", ""))
            except SessionStoreUnavailable:
                return response.json({"error": TEXT_UNAVAILABLE}, status=503)
            if claims is None:
                return response.json({"error": TEXT_BAD_SESSION}, status=401)
            agent = getattr(request.app.ctx, "agent", None)
            if agent is None or agent.tracker_store is None:
                return response.json({"messages": [], "paused": False})
            tracker = await agent.tracker_store.retrieve(conversation_id(CHANNEL, claims["sub"]))
            if tracker is None:
                return response.json({"messages": [], "paused": False})
            return response.json({
                "messages": history_lines(tracker.current_state(EventVerbosity.AFTER_RESTART)["events"]),
                "paused": tracker.is_paused(),
            })

        @sio.on("connect")
        async def connect(sid: Text, environ: Dict, auth: Optional[Dict] = None) -> bool:
            request = environ.get("sanic.request")
            # REMOTE_ADDR of python-engineio's Sanic driver is always 127.0.0.1.
            address = await self.client_key(request) if request is not None else "unknown"
            claims = self.verify_token(auth.get("token") if isinstance(auth, dict) else None)
            if claims is None:
                raise Refused(TEXT_BAD_SESSION, {"reason": "invalid"})
            session = claims["sub"]
            try:
                revoked = await self.store.is_revoked(session)
            except SessionStoreUnavailable:
                raise Refused(TEXT_UNAVAILABLE, {"reason": "unavailable"})
            if revoked:
                raise Refused(TEXT_SESSION_ENDED, {"reason": "revoked"})
            # Checked and counted with no await in between: no race past the cap.
            if 0 < self.max_sockets_per_address <= self._per_address[address]:
                logger.warning("web socket refused: too many sockets from one address")
                raise Refused(TEXT_TOO_MANY_SOCKETS, {"reason": "too_many"})
            now = time.time()
            self._per_address[address] += 1
            self._sockets[sid] = _Socket(session=session, address=address,
                                         exp=float(claims["exp"]), connected=now, active=now)
            self._by_session.setdefault(session, set()).add(sid)
            try:
                await sio.save_session(sid, {"sender": session, "uid": claims.get("uid"),
                                             "exp": claims["exp"]})
                await sio.enter_room(sid, session)
                await sio.emit("session_confirm", session, room=sid)
            except BaseException:
                self._forget(sid)
                raise
            try:
                await self.store.add_socket(session, sid, ttl=float(claims["exp"]) - now)
            except SessionStoreUnavailable:
                pass  # ending the session finds it on this replica's sweep
            return True

        @sio.on("disconnect")
        async def disconnect(sid: Text, reason: Any = None) -> None:
            info = self._forget(sid)
            if info is not None:
                try:
                    await self.store.remove_socket(info.session, sid)
                except SessionStoreUnavailable:  # the entry's TTL removes it
                    logger.warning("web socket closed; its shared entry expires on its own")

        @sio.on("user_uttered")
        async def handle_message(sid: Text, data: Any = None) -> None:
            session = await sio.get_session(sid)
            sender = session.get("sender") if session else None
            if not sender:
                return
            exp = session.get("exp")
            if exp is not None and time.time() >= float(exp):
                await self._disconnect(sid, "expired")
                return
            try:
                revoked = await self.store.is_revoked(sender)
            except SessionStoreUnavailable:
                # Redis is down: the turn's lock would fail too; the same apology.
                await sio.emit("bot_uttered", {"text": screening.FAILED}, to=sid)
                return
            if revoked:
                await self._disconnect(sid, "revoked")
                return
            await self._touch(sender)
            data = data if isinstance(data, dict) else {}
            title = data.get("title")
            pipeline = self.pipeline or pipeline_for(self._app)
            messages = await pipeline.handle(
                Inbound(channel=CHANNEL, sender=sender, text=data.get("message"),
                        title=title if isinstance(title, str) else None),
                on_new_message,
            )
            output = self._output()
            for message in messages:
                await output.send_response(sender, deliverable(message))

        return bp

    def _forget(self, sid: str) -> Optional[_Socket]:
        info = self._sockets.pop(sid, None)
        if info is not None:
            self._per_address[info.address] -= 1
            if self._per_address[info.address] <= 0:
                del self._per_address[info.address]
            sids = self._by_session.get(info.session)
            if sids is not None:
                sids.discard(sid)
                if not sids:
                    del self._by_session[info.session]
        return info


def _number(credentials: Dict[Text, Any], key: str, default: float, *, minimum: float = 0) -> Any:
    raw = credentials.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"web channel: {key} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"web channel: {key} must be at least {minimum}, got {raw!r}")
    return int(value) if value == int(value) else value


def _hours(credentials: Dict[Text, Any], key: str, default: float, variable: str = "") -> float:
    raw = credentials.get(key)
    if raw is None or raw == "":
        return default
    where = f"{key} ({variable})" if variable else key
    try:
        hours = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"web channel: {where} must be a number of hours, got {raw!r}") from None
    if not 0 < hours <= MAX_SESSION_HOURS:
        raise ValueError(f"web channel: {where} must be more than 0 and at most "
                         f"{MAX_SESSION_HOURS:.0f} hours, got {raw!r}")
    return hours


_PAGE_HEADERS = {
    # Everything is served from here; no inline script, no third-party origin.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        # 'self' covers ws:/wss: to this origin too (CSP Level 3; Chromium, Firefox, Safari).
        "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _json_body(request: Request) -> Optional[Dict[str, Any]]:
    if not request.body:
        return {}
    try:
        body = request.json
    except Exception:  # Sanic raises InvalidUsage on malformed JSON
        return None
    return body if isinstance(body, dict) else None


def history_lines(events: List[Dict[str, Any]], limit: int = 100) -> List[Dict[str, Any]]:
    """What the page re-renders after a reload: texts, buttons, who spoke."""
    lines: List[Dict[str, Any]] = []
    for event in events:
        kind = event.get("event")
        if kind == "user":
            text = event.get("text") or ""
            if text.startswith("/"):
                text = (event.get("metadata") or {}).get("button_title") or ""
            if text:
                lines.append({"role": "user", "text": text})
        elif kind == "bot":
            meta = event.get("metadata") or {}
            data = event.get("data") or {}
            line: Dict[str, Any] = {"role": "agent" if meta.get("agent") else "bot",
                                    "text": event.get("text") or ""}
            if meta.get("agent"):
                line["agent"] = meta.get("agent_name") or meta.get("agent")
            buttons = data.get("buttons") or []
            if buttons:
                line["buttons"] = [{"title": b.get("title"), "payload": b.get("payload")}
                                   for b in buttons if isinstance(b, dict)]
            if line["text"] or buttons:
                lines.append(line)
    return lines[-limit:]


async def _bind_in_wallet_db(*, session_id: str, user_id: str) -> None:
    await default_service().bind(channel=CHANNEL, sender_id=session_id, user_id=user_id)


async def _unbind_in_wallet_db(*, session_id: str) -> bool:
    return await default_service().unbind(channel=CHANNEL, sender_id=session_id)
