"""The REST channel (``/webhooks/rest/webhook``), guarded.

Rasa's stock REST channel trusts the body's ``input_channel`` (a client could
claim to be ``wechat`` and borrow a WeChat user's identity), returns 500 on
malformed JSON, and stores whatever was typed. This one always reports itself
as ``rest``, answers bad input with a clear 400, masks personal data, limits
each sender's rate and apologises when the bot cannot answer.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from walletbot.rasa_ext import perf
from walletbot.channels import guard

logger = logging.getLogger(__name__)

MAX_SENDER_CHARS = 128
MAX_BODY_BYTES = 64 * 1024


def _error(message: str, status: int = 400) -> HTTPResponse:
    return response.json({"error": message}, status=status)


class GuardedRestInput(InputChannel):
    """``POST {"sender": str, "message": str}`` → the bot's messages as JSON."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls()

    def __init__(self, limiter: Optional[guard.Limiter] = None) -> None:
        self.limiter = limiter or guard.make_limiter()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # Every Rasa server has this channel: a good place to install the
        # hot-path speed-ups, once, at start-up.
        perf.install()
        bp = Blueprint("rest_webhook", __name__)

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
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
            metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else None
            verdict = await guard.screen(text, sender, self.limiter)
            if verdict.reply is not None:
                return response.json([{"recipient_id": sender, "text": verdict.reply}])
            collector = CollectingOutputChannel()
            if verdict.masked:
                await collector.send_text_message(sender, guard.PII_REMINDER)
            before = len(collector.messages)
            message = UserMessage(
                verdict.text, collector, sender, input_channel=self.name(), metadata=metadata,
            )
            apology = await guard.bot_turn(
                on_new_message, message, app=request.app,
                produced=lambda: len(collector.messages) - before,
            )
            if apology:
                del collector.messages[before:]
                await collector.send_text_message(sender, apology)
            return response.json(collector.messages)

        return bp
