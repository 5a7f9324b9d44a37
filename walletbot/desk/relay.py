"""Agent <-> user relay inside the Rasa server.

Agent replies are pushed on the user's own channel and kept in the tracker as
bot events marked with the agent, so the conversation history stays whole.
Resolving resumes the bot (``ConversationResumed``) and asks for a score.
Every tracker change happens under the conversation's lock, like a user turn.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, List, Optional, Tuple

from rasa.shared.core.trackers import EventVerbosity
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, OutputChannel
from rasa.shared.core.events import ActionExecuted, BotUttered, ConversationResumed

from walletbot.handoff.transcript import transcript_lines

logger = logging.getLogger(__name__)

RESOLVED_ACTION = "utter_handoff_resolved"
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

    async def conversation(self, sender_id: str) -> Tuple[List[Dict[str, Any]], bool]:
        """Masked lines of the conversation and whether the bot is paused."""
        tracker = await self.agent.tracker_store.retrieve(sender_id)
        if tracker is None:
            return [], False
        events = tracker.current_state(EventVerbosity.AFTER_RESTART)["events"]
        return transcript_lines(events, limit=200), tracker.is_paused()

    async def _append(self, sender_id: str, *events: Any) -> None:
        async with self.agent.lock_store.lock(sender_id):
            tracker = await self.agent.processor.get_tracker(sender_id)
            for event in events:
                tracker.update(event)
            await self.agent.processor.save_tracker(tracker)

    async def say(
        self, *, channel: str, sender_id: str, text: str, login: str, name: str,
        handoff: Optional[str] = None,
    ) -> None:
        """Sends an agent's text to the user and records it in the tracker."""
        metadata = {"agent": login, "agent_name": name}
        await self._append(sender_id, BotUttered(text=text, metadata=metadata))
        output = self.output_for(channel)
        payload: Dict[str, Any] = {"role": "agent", "agent": name, "text": text}
        if handoff:
            payload["handoff"] = handoff
        try:
            if channel == "web":
                await output.send_custom_json(sender_id, payload)
            else:
                await output.send_text_message(sender_id, f"【人工客服{name}】{text}")
        except Exception:  # the text is in the tracker; the user sees it on reload
            logger.exception("could not push an agent reply on channel %s", channel)

    async def announce_join(self, *, channel: str, sender_id: str, login: str, name: str) -> None:
        """Tells the user that a human has joined."""
        await self.say(channel=channel, sender_id=sender_id, login=login, name=name,
                       text=JOINED_TEXT.format(name=name), handoff="joined")

    async def resume(self, *, channel: str, sender_id: str) -> None:
        """Un-pauses the bot, which says the handoff is over and asks for a score."""
        output = self.output_for(channel)
        async with self.agent.lock_store.lock(sender_id):
            tracker = await self.agent.processor.get_tracker(sender_id)
            tracker.update(ConversationResumed())
            await self.agent.processor.save_tracker(tracker)
            if channel == "web":
                try:
                    await output.send_custom_json(sender_id, {"handoff": "ended"})
                except Exception:
                    logger.exception("could not tell the web page the handoff ended")
            await self.agent.execute_action(sender_id, RESOLVED_ACTION, output, None, None)
            # The bot now waits for the user, as after any bot turn.
            tracker = await self.agent.processor.get_tracker(sender_id)
            tracker.update(ActionExecuted("action_listen"))
            await self.agent.processor.save_tracker(tracker)
