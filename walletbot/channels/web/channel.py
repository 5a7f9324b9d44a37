"""The web chat page's channel: socket.io with a server-issued session token.

Rasa's own socket.io channel lets the client name its session id in every
message; here the session (the Rasa sender id) comes only from a signed JWT
that this channel issued, so nobody can write into someone else's
conversation. Anonymous visitors get a token too and can ask FAQs; in the dev
profile a demo login (张三 / 李四) binds the session to a wallet user.
"""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

import jwt
from rasa.shared.core.trackers import EventVerbosity
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from walletbot import settings
from walletbot.conversation import conversation_id
from walletbot.store.service import WalletUnavailable, default_service
from walletbot.turns.pipeline import Inbound, TurnPipeline, deliverable, pipeline_for

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


class WebOutput(SocketIOOutput):
    """Rasa's socket.io output, with custom JSON sent as one ``{"custom": ...}`` event."""

    @classmethod
    def name(cls) -> Text:
        return "web"

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
            token_ttl=int(credentials.get("token_ttl") or 7 * 24 * 3600),
            demo_login=str(credentials.get("demo_login", "true")).lower() in ("1", "true", "yes"),
            redis_url=credentials.get("redis_url") or settings.current().redis_url,
        )

    def __init__(
        self,
        *,
        jwt_key: str,
        jwt_method: str = "HS256",
        token_ttl: int = 7 * 24 * 3600,
        demo_login: bool = True,
        redis_url: Optional[str] = None,
        bind: Optional[Callable[..., Awaitable[None]]] = None,
        pipeline: Optional[TurnPipeline] = None,
    ) -> None:
        if not jwt_key:
            raise ValueError("the web channel needs jwt_key: set WEB_JWT_SECRET")
        self.jwt_key = jwt_key
        self.jwt_method = jwt_method
        self.token_ttl = token_ttl
        self.demo_login = demo_login
        self.redis_url = redis_url
        self._bind = bind or _bind_in_wallet_db
        self.sio: Optional[AsyncServer] = None
        self.pipeline = pipeline
        self._app: Any = None  # the Sanic app: socket.io handlers get no request

    # -- tokens ---------------------------------------------------------------

    def issue_token(self, *, session_id: str, user_id: Optional[str], name: Optional[str]) -> str:
        """A signed session token: the session id is the channel's id of the user."""
        now = int(time.time())
        claims = {"sub": session_id, "uid": user_id, "name": name, "iat": now,
                  "exp": now + self.token_ttl}
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

    def get_output_channel(self) -> Optional[OutputChannel]:
        """For pushes outside a user turn (agent replies, the handoff's end)."""
        return None if self.sio is None else WebOutput(self.sio, "bot_uttered")

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
        return AsyncServer(**kwargs)

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        sio = self._server()
        self.sio = sio
        bp = SocketBlueprint(sio, SOCKETIO_PATH, "web_webhook", __name__)

        @bp.listener("before_server_start")
        async def remember_app(app: Any, _loop: Any) -> None:
            self._app = app

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

        @bp.route("/history", methods=["GET"])
        async def history(request: Request) -> HTTPResponse:
            claims = self.verify_token(request.headers.get("Authorization", ""))
            if claims is None:
                return response.json({"error": "会话无效或已过期"}, status=401)
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
            claims = self.verify_token((auth or {}).get("token") if isinstance(auth, dict) else None)
            if claims is None:
                return False
            await sio.save_session(sid, {"sender": claims["sub"], "uid": claims.get("uid")})
            await sio.enter_room(sid, claims["sub"])
            await sio.emit("session_confirm", claims["sub"], room=sid)
            return True

        @sio.on("user_uttered")
        async def handle_message(sid: Text, data: Any = None) -> None:
            session = await sio.get_session(sid)
            sender = session.get("sender") if session else None
            if not sender:
                return
            data = data if isinstance(data, dict) else {}
            title = data.get("title")
            pipeline = self.pipeline or pipeline_for(self._app)
            messages = await pipeline.handle(
                Inbound(channel=CHANNEL, sender=sender, text=data.get("message"),
                        title=title if isinstance(title, str) else None),
                on_new_message,
            )
            output = WebOutput(sio, "bot_uttered")
            for message in messages:
                await output.send_response(sender, deliverable(message))

        return bp


_PAGE_HEADERS = {
    # Everything is served from here; no inline script, no third-party origin.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'"
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
