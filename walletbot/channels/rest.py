"""The REST channel (``/webhooks/rest/webhook``): JSON in, the bot's messages as JSON out.

Rasa's stock REST channel trusts the body's ``input_channel`` (a client could
claim to be ``wechat`` and borrow a WeChat user's identity) and returns 500 on
malformed JSON. This one always reports itself as ``rest`` (its conversations
are ``rest:<sender>``, so no sender id reaches another channel's
conversation), answers bad requests with a clear 400 and hands the message to
the turn pipeline (:mod:`walletbot.turns.pipeline`).

It is a server-to-server door: when ``REST_CHANNEL_TOKEN`` is set, every
request must carry ``Authorization: Bearer <token>``; in production it is off
unless that token is set.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from walletbot import settings
from walletbot.turns.pipeline import Inbound, TurnPipeline, pipeline_for

logger = logging.getLogger(__name__)

CHANNEL = "rest"
MAX_SENDER_CHARS = 128
MAX_BODY_BYTES = 64 * 1024


def _error(message: str, status: int = 400) -> HTTPResponse:
    return response.json({"error": message}, status=status)


class GuardedRestInput(InputChannel):
    """``POST {"sender": str, "message": str}`` → the bot's messages as JSON.

    Args:
        pipeline: The turn pipeline (default: the server's, built on first use).
        token: The server-to-server token clients must send; None: none needed.
        enabled: False answers every message with 403 (production without a token).
    """

    @classmethod
    def name(cls) -> Text:
        return CHANNEL

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        config = settings.current()
        return cls(token=config.rest_token,
                   enabled=bool(config.rest_token) or not config.is_production)

    def __init__(self, pipeline: Optional[TurnPipeline] = None, *, token: Optional[str] = None,
                 enabled: bool = True) -> None:
        self.pipeline = pipeline
        self.token = token
        self.enabled = enabled

    def _authorised(self, request: Request) -> bool:
        if not self.token:
            return True
        header = request.headers.get("Authorization", "")
        given = header[len("Bearer "):] if header.startswith("Bearer ") else ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        bp = Blueprint("rest_webhook", __name__)

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self.enabled:
                return _error("REST 通道在生产环境中未开启（需要设置 REST_CHANNEL_TOKEN）", 403)
            if not self._authorised(request):
                return _error("缺少或错误的 REST 通道令牌（Authorization: Bearer …）", 401)
            if len(request.body or b"") > MAX_BODY_BYTES:
                return _error("请求体过大", 413)
            try:
                body = request.json
            except Exception:
                return _error('请求格式错误：需要 JSON，例如 {"sender": "u1", "message": "你好"}')
            if not isinstance(body, dict):
                return _error('请求格式错误：需要 JSON 对象 {"sender": ..., "message": ...}')
            sender, text = body.get("sender"), body.get("message")
            if not isinstance(sender, str) or not 0 < len(sender.strip()) <= MAX_SENDER_CHARS:
                return _error(f"sender 必须是 1 到 {MAX_SENDER_CHARS} 个字符的字符串")
            if text is not None and not isinstance(text, str):
                return _error("message 必须是字符串")
            sender = sender.strip()
            metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
            pipeline = self.pipeline or pipeline_for(request.app)
            messages = await pipeline.handle(
                Inbound(channel=CHANNEL, sender=sender, text=text, metadata=metadata),
                on_new_message,
            )
            # The client knows its conversation by the sender it chose.
            return response.json([dict(message, recipient_id=sender) for message in messages])

        return bp
