"""The one turn pipeline: what happens to a user message between a channel and the bot.

Every user channel (REST, the web page, WeChat) hands its parsed message to
:meth:`TurnPipeline.handle` and delivers the messages it returns; channels
keep only their transport (parsing, signing, formatting, delivery). In one
place, for every channel alike, the pipeline

1. scopes the conversation by channel (:mod:`walletbot.conversation`);
2. screens the message (:mod:`walletbot.turns.screening`): size, control
   characters, personal data in the text and in the metadata, and ``/``
   payloads the bot never offered;
3. applies the per-conversation rate limit;
4. checks whether a human has the conversation, once, from the ticket row
   (the single source of truth); if so it only stores the message;
5. runs the bot turn, supervised: an exception, a custom action that failed
   midway, or silence with the action server down gives the fixed apology in
   place of whatever the turn said;
6. counts, times and logs the message as one turn (walletbot/ops/): its log
   lines carry the conversation and turn ids, never its text.

The turn's messages are collected and returned, not pushed as they are
produced, so a failed turn's partial output never reaches any user.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage

from walletbot import settings as settings_module
from walletbot.conversation import ConversationId
from walletbot.ops import logs, metrics
from walletbot.rasa_compat import agent as rasa_agent
from walletbot.rasa_compat.failures import action_failures
from walletbot.turns import screening
from walletbot.turns.ratelimit import Limiter, make_limiter

logger = logging.getLogger(__name__)

Message = Dict[str, Any]
OnNewMessage = Callable[[UserMessage], Awaitable[Any]]
MAX_TITLE_CHARS = 100
# A message id that may name a turn in the logs: short, no spaces, no markup.
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


@dataclass(frozen=True)
class Inbound:
    """A user message as a channel parsed it.

    Attributes:
        channel: ``rest``, ``web`` or ``wechat`` (set by the channel, never by the client).
        sender: The channel's id of the user (REST sender, web session, OpenID).
        text: What the user sent (any type: the pipeline checks it).
        metadata: Channel metadata to keep in the tracker (its strings are masked).
        title: The title of the button the user clicked, if the text is its payload.
        message_id: The channel's message id, if any.
    """

    channel: str
    sender: str
    text: Any
    metadata: Mapping[str, Any] = field(default_factory=dict)
    title: Optional[str] = None
    message_id: Optional[str] = None

    @property
    def conversation(self) -> ConversationId:
        return ConversationId(self.channel, self.sender)


async def open_ticket_exists(conversation: ConversationId) -> bool:
    """Whether a human has the conversation: an open handoff ticket in the wallet DB.

    One indexed query. A DB outage counts as "no": Rasa then handles the
    message as usual.
    """
    from walletbot.handoff.service import default_handoff
    from walletbot.store.service import WalletUnavailable

    try:
        return await default_handoff().has_open_ticket(conversation)
    except WalletUnavailable:
        return False


class TurnPipeline:
    """Screens, limits and runs user turns for every channel of one Rasa server.

    Args:
        limiter: The per-conversation rate limit.
        agent: Returns the server's current Rasa agent (None before it is loaded).
        paused: Whether a human has the conversation (default: its ticket row).
        health: Whether the action server is reachable (default: its /health).
    """

    def __init__(
        self,
        *,
        limiter: Limiter,
        agent: Callable[[], Any],
        paused: Callable[[ConversationId], Awaitable[bool]] = open_ticket_exists,
        health: Optional[Callable[[], Awaitable[bool]]] = None,
        max_chars: int = screening.MAX_MESSAGE_CHARS,
    ) -> None:
        self.limiter = limiter
        self.agent = agent
        self.paused = paused
        self.health = health or self._action_server_up
        self.max_chars = max_chars

    async def _action_server_up(self) -> bool:
        endpoint = getattr(self.agent(), "action_endpoint", None)
        return await rasa_agent.action_server_up(getattr(endpoint, "url", None))

    async def handle(self, inbound: Inbound, on_new_message: OnNewMessage) -> List[Message]:
        """Runs ``inbound`` through the pipeline.

        Returns:
            What the user is to get, in order, as Rasa's collected messages
            (``{"text": ..., "buttons": [...], ...}``, ``recipient_id`` being
            the conversation id). Empty while a human has the conversation.

        Each message is one turn of the metrics (walletbot/ops/metrics.py) and
        one log context: its lines carry the conversation id and the turn id
        (the channel's message id, else a new one; the tracker keeps it as the
        user message's id, so the action server logs the same turn id).
        """
        conversation = inbound.conversation
        turn_id = _turn_id(inbound.message_id)
        with logs.context(conversation_id=str(conversation), turn_id=turn_id,
                          channel=inbound.channel), metrics.turn(inbound.channel) as turn:
            messages = await self._handle(conversation, inbound, on_new_message)
            # Kinds and times only: never what was written.
            logger.info("turn %s in %.0f ms", turn.outcome, turn.seconds() * 1000)
            return messages

    async def _handle(self, conversation: ConversationId, inbound: Inbound,
                      on_new_message: OnNewMessage) -> List[Message]:
        key = str(conversation)
        if not isinstance(inbound.text, str) or not inbound.text.strip():
            metrics.turn_outcome("refused")
            return [_text(key, screening.EMPTY)]
        if not await self.limiter.allow(key):
            metrics.rate_limited(inbound.channel)
            return [_text(key, screening.RATE_LIMITED)]
        checked = screening.check_text(inbound.text, max_chars=self.max_chars)
        if checked.reply is not None:
            metrics.turn_outcome("refused")
            return [_text(key, checked.reply)]
        metadata = screening.mask_metadata(inbound.metadata)
        verdict = await self._as_text(key, checked.text or "")
        if verdict is None:  # a button the bot offered: its payload goes through as is
            verdict = checked
            if isinstance(inbound.title, str) and inbound.title.strip():
                metadata["button_title"] = screening.mask_incoming(
                    inbound.title.strip()[:MAX_TITLE_CHARS])[0]
        replies: List[Message] = []
        if verdict.masked:
            replies.append(_text(key, screening.PII_REMINDER))
        text = verdict.text or ""
        agent = self.agent()
        # No stores yet (a server still loading): nothing to keep a message in.
        if getattr(agent, "tracker_store", None) is not None and await self.paused(conversation):
            stored = await self._store_while_paused(key, inbound, text, metadata)
            if stored is not None:
                metrics.turn_outcome("paused" if stored else "failed")
                return replies if stored else replies + [_text(key, screening.FAILED)]
        return replies + await self._supervised_turn(key, inbound, text, metadata, on_new_message)

    async def _as_text(self, key: str, cleaned: str) -> Optional[screening.Verdict]:
        """The screened text; None if it is the payload of a button the bot offered."""
        if cleaned.startswith(screening.PAYLOAD_PREFIX):
            try:
                offered = await rasa_agent.payloads_offered_in(self.agent(), key)
            except Exception as error:  # the tracker store is down: the turn will say so
                logger.warning("could not read the offered buttons: %s", type(error).__name__)
                offered = set()
            if cleaned in offered:
                return None
        return screening.as_text(cleaned)

    async def _store_while_paused(
        self, key: str, inbound: Inbound, text: str, metadata: Dict[str, Any]
    ) -> Optional[bool]:
        """Stores the message for the agent: True stored, False failed, None no such tracker."""
        try:
            stored = await rasa_agent.store_user_message(
                self.agent(), key, text=text, input_channel=inbound.channel,
                metadata=metadata, message_id=inbound.message_id,
            )
        except Exception as error:  # lock or tracker store down
            logger.error("could not store a message for an agent: %s", type(error).__name__)
            return False
        return True if stored else None

    async def _supervised_turn(
        self, key: str, inbound: Inbound, text: str, metadata: Dict[str, Any],
        on_new_message: OnNewMessage,
    ) -> List[Message]:
        collector = CollectingOutputChannel()
        message = UserMessage(text, collector, key, input_channel=inbound.channel,
                              metadata=metadata, message_id=logs.current().turn_id)
        with action_failures() as failures:
            try:
                await on_new_message(message)
            except Exception as error:  # lock store, tracker store, model: the user must hear something
                metrics.turn_outcome("failed")
                # The error's text can quote the message: it goes to DEBUG only.
                logger.error("bot turn failed: %s", type(error).__name__)
                logger.debug("bot turn failure detail", exc_info=True)
                return [_text(key, screening.FAILED)]
        if failures:
            metrics.turn_outcome("failed")
            logger.error("a custom action failed during the turn; the user gets an apology")
            return [_text(key, screening.FAILED)]
        if not collector.messages and not await self.health():
            metrics.turn_outcome("failed")
            logger.error("bot turn produced nothing and the action server is unreachable")
            return [_text(key, screening.FAILED)]
        return list(collector.messages)


def _turn_id(message_id: Optional[str]) -> str:
    """The channel's message id (WeChat's MsgId) if it looks like one, else a new id."""
    if isinstance(message_id, str) and _MESSAGE_ID.fullmatch(message_id):
        return message_id
    return uuid.uuid4().hex


def _text(recipient: str, text: str) -> Message:
    return {"recipient_id": recipient, "text": text}


def pipeline_for(app: Any) -> TurnPipeline:
    """The server's pipeline, built on first use and shared by all its channels."""
    ctx = app.ctx
    pipeline = getattr(ctx, "walletbot_turns", None)
    if pipeline is None:
        pipeline = TurnPipeline(
            limiter=make_limiter(settings_module.current()),
            agent=lambda: rasa_agent.agent_of(app),
        )
        ctx.walletbot_turns = pipeline
    return pipeline


def deliverable(message: Message) -> Message:
    """A collected message without its recipient, for ``OutputChannel.send_response``."""
    return {key: value for key, value in message.items() if key != "recipient_id"}
