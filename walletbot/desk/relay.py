"""Agent <-> user relay inside the Rasa server.

Agent replies are pushed on the user's own channel and kept in the tracker as
bot events marked with the agent, so the conversation history stays whole.
Resolving resumes the bot (``ConversationResumed``) and asks for a score.
Every tracker change happens under the conversation's lock, like a user turn,
and on the conversation's kept tracker (``locked_turn``): a reply costs the
same in a long conversation as in a short one.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Iterable, List, Optional, Tuple

from rasa.shared.core.trackers import EventVerbosity
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, OutputChannel
from rasa.shared.core.events import ActionExecuted, BotUttered, ConversationResumed

from walletbot.conversation import ConversationId
from walletbot.rasa_compat.agent import locked_turn
from walletbot.handoff.transcript import transcript_lines
from walletbot.rasa_compat.trackerstore import threaded_store

logger = logging.getLogger(__name__)

RESOLVED_ACTION = "utter_handoff_resolved"
# Transcript lines the desk shows, and the message events read for them (a few
# make no line: payload-only user turns, bot events without text).
MAX_LINES = 200
RECENT_EVENTS = MAX_LINES + MAX_LINES // 4
MESSAGE_EVENTS = ("user", "bot")
JOINED_TEXT = "您好，我是人工客服{name}，已为您接入，请问有什么可以帮您？"


class Relay:
    """Talks to conversations on behalf of agents.

    Args:
        agent: The Rasa server's ``rasa.core.agent.Agent``.
        input_channels: The server's input channels (to reach users on theirs).
    """

    def __init__(self, agent: Any, input_channels: Iterable[InputChannel]) -> None:
        self.agent = agent
        self.input_channels = list(input_channels)

    def output_for(self, channel: str) -> OutputChannel:
        """The channel's push output; a collecting one if it cannot push (REST)."""
        for candidate in self.input_channels:
            if candidate.name() == channel:
                output = candidate.get_output_channel()
                if output is not None and not isinstance(output, CollectingOutputChannel):
                    return output
        return CollectingOutputChannel()

    async def conversation(self, conversation: ConversationId) -> Tuple[List[Dict[str, Any]], bool]:
        """Masked lines of the conversation and whether the bot is paused.

        On the project's SQL store only the newest message events are read (the
        desk polls this every 2 s per agent); elsewhere the whole tracker.
        """
        store = threaded_store(self.agent.tracker_store)
        if store is not None:
            try:
                events, paused = await store.recent_events(str(conversation), RECENT_EVENTS,
                                                           types=MESSAGE_EVENTS)
            except Exception as error:  # as Rasa's fail-safe store: no transcript, no crash
                logger.error("desk transcript not read: %s", type(error).__name__)
                return [], False
            return transcript_lines(events, limit=MAX_LINES), paused
        tracker = await self.agent.tracker_store.retrieve(str(conversation))
        if tracker is None:
            return [], False
        events = tracker.current_state(EventVerbosity.AFTER_RESTART)["events"]
        return transcript_lines(events, limit=MAX_LINES), tracker.is_paused()

    async def _append(self, key: str, *events: Any) -> None:
        async with locked_turn(self.agent, key):
            tracker = await self.agent.processor.get_tracker(key)
            # Stamped now, not when the agent pressed send: a user turn that held
            # the lock meanwhile is stored first and must stay older.
            now = time.time()
            for event in events:
                event.timestamp = max(now, _newest_stamp(tracker))
                tracker.update(event)
            await self.agent.processor.save_tracker(tracker)

    async def say(
        self, conversation: ConversationId, *, text: str, login: str, name: str,
        handoff: Optional[str] = None,
    ) -> None:
        """Sends an agent's text to the user and records it in the tracker."""
        metadata = {"agent": login, "agent_name": name}
        await self._append(str(conversation), BotUttered(text=text, metadata=metadata))
        channel, recipient = conversation.channel, conversation.sender
        output = self.output_for(channel)
        payload: Dict[str, Any] = {"role": "agent", "agent": name, "text": text}
        if handoff:
            payload["handoff"] = handoff
        try:
            if channel == "web":
                await output.send_custom_json(recipient, payload)
            else:
                await output.send_text_message(recipient, f"【人工客服{name}】{text}")
        except Exception:  # the text is in the tracker; the user sees it on reload
            logger.exception("could not push an agent reply on channel %s", channel)

    async def tell(self, conversation: ConversationId, *, text: str, kind: str) -> None:
        """Sends the desk's own message (a wait update, a requeue) as the bot, not as an agent.

        ``kind`` marks the tracker event (``metadata["desk_notice"]``) so reports can
        tell these apart from the bot's answers.
        """
        await self._append(str(conversation), BotUttered(text=text, metadata={"desk_notice": kind}))
        try:
            await self.output_for(conversation.channel).send_text_message(conversation.sender, text)
        except Exception:  # the text is in the tracker; the user sees it on reload
            logger.exception("could not push a desk notice on channel %s", conversation.channel)

    async def announce_join(self, conversation: ConversationId, *, login: str, name: str) -> None:
        """Tells the user that a human has joined."""
        await self.say(conversation, login=login, name=name,
                       text=JOINED_TEXT.format(name=name), handoff="joined")

    async def resume(self, conversation: ConversationId) -> None:
        """Un-pauses the bot, which says the handoff is over and asks for a score."""
        key, channel = str(conversation), conversation.channel
        output = _Addressed(self.output_for(channel), conversation.sender)
        async with locked_turn(self.agent, key):
            tracker = await self.agent.processor.get_tracker(key)
            tracker.update(ConversationResumed())
            await self.agent.processor.save_tracker(tracker)
            if channel == "web":
                try:
                    await output.send_custom_json(key, {"handoff": "ended"})
                except Exception:
                    logger.exception("could not tell the web page the handoff ended")
            await self.agent.execute_action(key, RESOLVED_ACTION, output, None, None)
            # The bot now waits for the user, as after any bot turn.
            tracker = await self.agent.processor.get_tracker(key)
            tracker.update(ActionExecuted("action_listen"))
            await self.agent.processor.save_tracker(tracker)


class _Addressed(OutputChannel):
    """Delivers to the channel's own id of the user, whatever conversation id Rasa names.

    Rasa addresses a conversation's messages to the tracker's id
    (``web:<session>``); the channels know the user by their own id.
    """

    def __init__(self, inner: OutputChannel, recipient: str) -> None:
        self.inner = inner
        self.recipient = recipient

    @classmethod
    def name(cls) -> str:
        return "relay"

    async def send_response(self, recipient_id: str, message: Dict[str, Any]) -> None:
        await self.inner.send_response(self.recipient, message)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.inner.send_text_message(self.recipient, text, **kwargs)

    async def send_text_with_buttons(self, recipient_id: str, text: str,
                                     buttons: List[Dict[str, Any]], **kwargs: Any) -> None:
        await self.inner.send_text_with_buttons(self.recipient, text, buttons, **kwargs)

    async def send_custom_json(self, recipient_id: str, json_message: Dict[str, Any],
                               **kwargs: Any) -> None:
        await self.inner.send_custom_json(self.recipient, json_message, **kwargs)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        await self.inner.send_image_url(self.recipient, image, **kwargs)

    async def send_attachment(self, recipient_id: str, attachment: Any, **kwargs: Any) -> None:
        await self.inner.send_attachment(self.recipient, attachment, **kwargs)


def _newest_stamp(tracker: Any) -> float:
    """Timestamp of the tracker's newest event (0 without events)."""
    return max((event.timestamp or 0.0 for event in list(tracker.events)[-1:]), default=0.0)
