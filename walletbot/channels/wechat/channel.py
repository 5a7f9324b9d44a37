"""Rasa input channel for a WeChat Official Account (公众号).

Configured in ``credentials.yml``::

    walletbot.channels.wechat.WeChatInput:
      token: ${WECHAT_TOKEN}
      app_id: ${WECHAT_APP_ID}
      app_secret: ${WECHAT_APP_SECRET}
      aes_key: ${WECHAT_AES_KEY}        # empty: plaintext mode
      api_base: ${WECHAT_API_BASE}
      reply_budget: ${WECHAT_REPLY_BUDGET}

and served at ``/webhooks/wechat/webhook`` (GET: URL verification, POST:
messages). ``REDIS_URL``, when set, makes retries de-duplicate across replicas.

What WeChat's rules require and this channel does:

- Every request is verified (signature, and in safe mode the body's
  ``msg_signature`` and AES decryption); forged or stale ones get 403 and
  are not processed. Bodies are parsed with DTDs and entities refused.
- WeChat waits 5 s for the passive reply, then retries (same ``MsgId``) up
  to three times. The bot turn runs with a budget (``reply_budget``, 4 s by
  default): in time, the answer is the passive reply; otherwise ``success``
  is returned at once and the answer goes out through the customer-service
  API when the turn ends. Retries never run the turn again: they wait (within
  their own budget) for the first delivery's reply.
- Buttons become numbered options; a reply that is just the number sends
  the button's payload.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Set, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from wechatpy.messages import BaseMessage

from walletbot import settings
from walletbot.channels.wechat.api import DEFAULT_API_BASE, WeChatApiClient
from walletbot.channels.wechat.dedupe import DedupeStore, make_store
from walletbot.channels.wechat.format import (
    UNSUPPORTED_TEXT,
    WELCOME_TEXT,
    attachment_text,
    button_payload,
    choice_payload,
    format_turn,
    image_text,
    render_buttons,
)
from walletbot.channels.wechat.protocol import RequestRejected, WeChatProtocol
from walletbot.ops import metrics
from walletbot.turns.pipeline import Inbound, TurnPipeline, pipeline_for

logger = logging.getLogger(__name__)

CHANNEL_NAME = "wechat"
DEFAULT_REPLY_BUDGET = 4.0
# WeChat gives up after 5 s; a budget must leave time to answer.
MAX_REPLY_BUDGET = 4.8
SUCCESS = "success"

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


class WeChatOutput(OutputChannel):
    """Sends bot and agent messages through WeChat's customer-service API.

    Used after a passive reply's window has closed and by the agent desk
    (``channel.get_output_channel().send_text_message(openid, text)``).
    """

    def __init__(self, api: WeChatApiClient, store: Optional[DedupeStore] = None) -> None:
        """Creates the output channel.

        Args:
            api: the customer-service API client.
            store: where numbered options are remembered (so a digit reply works).
        """
        self.api = api
        self.store = store

    @classmethod
    def name(cls) -> Text:
        """Name of the channel."""
        return CHANNEL_NAME

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        """Sends ``text`` to the OpenID ``recipient_id`` (split if too long)."""
        if text and text.strip():
            await self.api.send_text(recipient_id, text.strip())

    async def send_text_with_buttons(
        self,
        recipient_id: Text,
        text: Text,
        buttons: List[Dict[Text, Any]],
        **kwargs: Any,
    ) -> None:
        """Sends ``text`` with the buttons as numbered options ("1. …")."""
        if self.store is not None:
            try:
                await self.store.set_choices(recipient_id, [button_payload(b) for b in buttons])
            except Exception:
                logger.warning("could not remember the WeChat options", exc_info=True)
        await self.send_text_message(recipient_id, render_buttons(text, buttons))

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        """Sends an image as a text link."""
        await self.send_text_message(recipient_id, image_text(image))

    async def send_attachment(self, recipient_id: Text, attachment: Any, **kwargs: Any) -> None:
        """Sends an attachment as text."""
        await self.send_text_message(recipient_id, attachment_text(attachment))

    async def send_custom_json(
        self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any
    ) -> None:
        """Sends a custom payload's ``text`` field; other payloads have no WeChat form."""
        text = json_message.get("text") if isinstance(json_message, dict) else None
        if isinstance(text, str):
            await self.send_text_message(recipient_id, text)
        else:
            logger.debug("custom payload without text not sent to WeChat")


class WeChatInput(InputChannel):
    """WeChat Official Account webhook (``/webhooks/wechat/webhook``)."""

    @classmethod
    def name(cls) -> Text:
        """Name of the channel (and its URL prefix)."""
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WeChatInput":
        """Reads the channel's settings from ``credentials.yml``.

        Missing keys fall back to the ``WECHAT_*`` settings; ``REDIS_URL``
        comes from the settings (or ``redis_url``).
        """
        credentials = credentials or {}
        config = settings.current()
        fallback = dict(config.wechat, redis_url=config.redis_url or "")

        def setting(key: str, env: str, default: str = "") -> str:
            value = credentials.get(key)
            if value is None or str(value).strip() == "":
                value = fallback.get(key, default)
            return str(value or default).strip()

        token = setting("token", "WECHAT_TOKEN")
        if not token:
            cls.raise_missing_credentials_exception()
        budget_text = setting("reply_budget", "WECHAT_REPLY_BUDGET", str(DEFAULT_REPLY_BUDGET))
        try:
            budget = float(budget_text)
        except ValueError:
            raise ValueError(
                f"WECHAT_REPLY_BUDGET must be a number of seconds, not {budget_text!r}"
            ) from None
        return cls(
            token=token,
            app_id=setting("app_id", "WECHAT_APP_ID"),
            app_secret=setting("app_secret", "WECHAT_APP_SECRET"),
            aes_key=setting("aes_key", "WECHAT_AES_KEY") or None,
            api_base=setting("api_base", "WECHAT_API_BASE", DEFAULT_API_BASE),
            reply_budget=budget,
            redis_url=setting("redis_url", "REDIS_URL") or None,
        )

    def __init__(
        self,
        token: Text,
        app_id: Text = "",
        app_secret: Text = "",
        aes_key: Optional[Text] = None,
        api_base: Text = DEFAULT_API_BASE,
        reply_budget: float = DEFAULT_REPLY_BUDGET,
        redis_url: Optional[Text] = None,
        *,
        store: Optional[DedupeStore] = None,
        api: Optional[WeChatApiClient] = None,
        protocol: Optional[WeChatProtocol] = None,
        pipeline: Optional[TurnPipeline] = None,
    ) -> None:
        """Creates the channel.

        Args:
            token: the Official Account's Token (signatures).
            app_id: its AppID.
            app_secret: its AppSecret (customer-service API).
            aes_key: its EncodingAESKey; empty or ``None`` means plaintext mode.
            api_base: WeChat's API base URL.
            reply_budget: seconds to wait for the bot before answering ``success``.
            redis_url: Redis for shared de-duplication; ``None``: in memory.
            store: de-duplication store (overrides ``redis_url``).
            api: customer-service API client (overrides the one built here).
            protocol: request verification (overrides the one built here).
            pipeline: the turn pipeline (default: the server's, built on first use).
        """
        if not 0 < reply_budget <= MAX_REPLY_BUDGET:
            raise ValueError(
                f"WECHAT_REPLY_BUDGET must be between 0 and {MAX_REPLY_BUDGET} seconds "
                f"(WeChat drops replies after 5 s), not {reply_budget}"
            )
        self.protocol = protocol or WeChatProtocol(token, app_id, aes_key)
        self.api = api or WeChatApiClient(app_id, app_secret, api_base)
        self.store = store or make_store(redis_url)
        self.reply_budget = reply_budget
        self._background: Set[asyncio.Task] = set()
        self.pipeline = pipeline
        self._app: Any = None  # the Sanic app whose pipeline runs the turns

    def get_output_channel(self) -> OutputChannel:
        """The customer-service API output (for agent replies and pushes)."""
        return WeChatOutput(self.api, self.store)

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        """Not used: metadata comes from the decoded message (see ``_metadata``)."""
        return None

    # --- blueprint -------------------------------------------------------

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """The webhook routes: health, URL verification, messages."""
        webhook = Blueprint("wechat_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            try:
                echostr = self.protocol.verify_url(_args(request))
            except RequestRejected as rejected:
                return _rejection(rejected, request)
            return response.text(echostr)

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            started = asyncio.get_running_loop().time()
            self._app = request.app
            args = _args(request)
            try:
                message = self.protocol.decode(args, request.body or b"")
            except RequestRejected as rejected:
                return _rejection(rejected, request)
            reply = await self.handle(message, on_new_message, started)
            if reply is None:
                return response.text(SUCCESS)
            body = self.protocol.encode(reply, args.get("nonce", ""))
            return response.text(body, content_type="application/xml; charset=utf-8")

        @webhook.listener("after_server_stop")
        async def close_store(*_: Any) -> None:
            await self.store.close()

        return webhook

    # --- message handling --------------------------------------------------

    async def handle(
        self, message: BaseMessage, on_new_message: OnNewMessage, started: Optional[float] = None
    ) -> Optional[str]:
        """Answers one verified message.

        Args:
            message: wechatpy's message or event.
            on_new_message: Rasa's handler of user messages.
            started: event-loop time the request arrived (the budget counts from it).

        Returns:
            The plaintext passive reply XML, or ``None`` to answer ``success``.
        """
        loop = asyncio.get_running_loop()
        deadline = (started if started is not None else loop.time()) + self.reply_budget
        kind = message.type
        if kind == "event":
            event = str(getattr(message, "event", "") or "").lower()
            if event in ("subscribe", "subscribe_scan"):
                return self.protocol.text_reply(message, WELCOME_TEXT)
            return None
        text: Optional[str] = None
        if kind == "text":
            text = message.content or ""
        elif kind == "voice" and (message.recognition or "").strip():
            text = message.recognition
        if text is None:
            return self.protocol.text_reply(message, UNSUPPORTED_TEXT)
        return await self._answer(message, text.strip(), on_new_message, deadline)

    @staticmethod
    def dedupe_key(message: BaseMessage) -> str:
        """Retries share this key: the MsgId, or sender + CreateTime for events."""
        if message.id:
            return f"msg:{message.id}"
        return f"evt:{message.source}:{message.time}"

    async def _answer(
        self, message: BaseMessage, text: str, on_new_message: OnNewMessage, deadline: float
    ) -> Optional[str]:
        loop = asyncio.get_running_loop()
        key = self.dedupe_key(message)
        try:
            claimed, choices = await self.store.claim_with_choices(key, message.source)
        except Exception:
            # Better to answer twice than never: process without de-duplication.
            logger.warning("WeChat de-duplication store unavailable", exc_info=True)
            claimed, choices = True, []
        if not claimed:
            try:
                result = await self.store.wait_result(key, max(deadline - loop.time(), 0.0))
            except Exception:
                logger.warning("WeChat de-duplication store unavailable", exc_info=True)
                result = None
            return _reply_of(result)

        decision: asyncio.Future = loop.create_future()
        task = asyncio.create_task(
            self._process(key, message, text, on_new_message, deadline, decision, choices)
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        # Shielded: if WeChat hangs up, the turn and its delivery still finish.
        return _reply_of(await asyncio.shield(decision))

    async def _process(
        self,
        key: str,
        message: BaseMessage,
        text: str,
        on_new_message: OnNewMessage,
        deadline: float,
        decision: asyncio.Future,
        choices: Optional[List[str]] = None,
    ) -> None:
        """Runs the turn; settles ``decision`` by the deadline; delivers the rest.

        ``choices``: the options last shown to the user, read with the claim.
        """
        openid = message.source
        loop = asyncio.get_running_loop()

        def settle(result: Dict[str, Any]) -> None:
            if not decision.done():
                decision.set_result(result)

        try:
            turn = asyncio.create_task(self._run_turn(message, text, on_new_message, choices))
            done, _ = await asyncio.wait({turn}, timeout=max(deadline - loop.time(), 0.0))
            if turn in done:
                messages = list(turn.result())
                formatted = format_turn(messages)
                chunks = formatted.chunks()
                result: Dict[str, Any] = {"state": "empty"}
                if chunks:
                    reply_xml = self.protocol.text_reply(message, chunks[0])
                    result = {"state": "reply", "xml": reply_xml}
                await self._store_outcome(key, result, openid,
                                          formatted.choices if messages else None)
                settle(result)
                rest = chunks[1:]
                if rest:  # more than one passive reply holds
                    metrics.wechat_customer_service_reply("long_reply")
            else:
                result = {"state": "async"}
                await self._store_result(key, result)
                settle(result)
                logger.info("WeChat turn over budget; answering via the customer-service API")
                rest = await self._finish_turn(openid, await turn)
                if rest:
                    metrics.wechat_customer_service_reply("over_budget")
            for chunk in rest:
                await self.api.send_text(openid, chunk)
        except Exception:
            logger.exception("WeChat message handling failed")
            settle({"state": "async"})

    async def _store_outcome(self, key: str, result: Dict[str, Any], openid: str,
                             choices: Optional[List[str]]) -> None:
        """The turn's options (None: leave them) and then its result, in one go."""
        try:
            await self.store.finish(key, result, openid, choices)
        except Exception:
            logger.warning("could not store the WeChat reply and options", exc_info=True)

    async def _store_result(self, key: str, result: Dict[str, Any]) -> None:
        try:
            await self.store.set_result(key, result)
        except Exception:
            logger.warning("could not store the WeChat reply", exc_info=True)

    async def _run_turn(
        self, message: BaseMessage, text: str, on_new_message: OnNewMessage,
        choices: Optional[List[str]] = None,
    ) -> List[Dict[str, Any]]:
        """One bot turn; returns the bot's messages (an apology if it failed).

        ``choices``: the options last shown, if already read (else read here).
        """
        openid = message.source
        if choices is None:
            try:
                choices = await self.store.get_choices(openid)
            except Exception:
                logger.warning("could not read the WeChat options", exc_info=True)
                choices = []
        chosen = choice_payload(text, choices)
        pipeline = self.pipeline or pipeline_for(self._app)
        return await pipeline.handle(
            Inbound(
                channel=CHANNEL_NAME,
                sender=openid,
                # A numbered reply stands for its option's payload.
                text=chosen or text,
                metadata=_metadata(message, text if chosen else None),
                message_id=str(message.id) if message.id else None,
            ),
            on_new_message,
        )

    async def _finish_turn(self, openid: str, messages: Iterable[Dict[str, Any]]) -> List[str]:
        """Remembers the turn's options; returns its text in WeChat-sized chunks."""
        messages = list(messages)
        turn = format_turn(messages)
        if messages:
            try:
                await self.store.set_choices(openid, turn.choices)
            except Exception:
                logger.warning("could not remember the WeChat options", exc_info=True)
        return turn.chunks()


def _args(request: Request) -> Dict[str, str]:
    """The first value of each query parameter."""
    return {key: values[0] for key, values in request.args.items() if values}


def _rejection(rejected: RequestRejected, request: Request) -> HTTPResponse:
    logger.warning(
        "WeChat %s request refused (%s): %s", request.method, rejected.status, rejected.reason
    )
    messages = {403: "forbidden", 413: "payload too large"}
    return response.text(messages.get(rejected.status, "bad request"), status=rejected.status)


def _reply_of(result: Optional[Dict[str, Any]]) -> Optional[str]:
    if result and result.get("state") == "reply":
        return str(result["xml"])
    return None


def _metadata(message: BaseMessage, typed: Optional[str]) -> Dict[str, Any]:
    """What the tracker keeps about the WeChat message (never the sender id)."""
    data: Dict[str, Any] = {
        "msg_id": str(message.id) if message.id else None,
        "msg_type": message.type,
        "create_time": message.time,
        "account": message.target,
    }
    if typed is not None:
        data["typed"] = typed  # the digit the user typed to pick an option
    return {"wechat": data}
