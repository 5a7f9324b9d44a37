"""A Rasa agent with in-memory stores and a bot that answers like Rasa, for pipeline tests."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered

from walletbot.turns.pipeline import TurnPipeline
from walletbot.turns.ratelimit import RateLimiter


class FakeAgent:
    """What the pipeline uses of Rasa's ``Agent``: the two stores and the action endpoint."""

    def __init__(self) -> None:
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.lock_store = InMemoryLockStore()
        self.action_endpoint = None

    async def record(self, conversation_id: str, text: Optional[str],
                     answers: List[Dict[str, Any]]) -> None:
        """Stores a turn as Rasa would: the user's message, then the bot's."""
        tracker = await self.tracker_store.get_or_create_tracker(conversation_id)
        tracker.update(UserUttered(text))
        for answer in answers:
            data = {"buttons": answer["buttons"]} if answer.get("buttons") else {}
            tracker.update(BotUttered(answer.get("text"), data=data))
        await self.tracker_store.save(tracker)

    async def events(self, conversation_id: str) -> List[Any]:
        tracker = await self.tracker_store.retrieve(conversation_id)
        return [] if tracker is None else list(tracker.events)


class ScriptedBot:
    """Rasa's ``on_new_message``: scripted answers (else an echo), stored in the agent."""

    def __init__(self, agent: Optional[FakeAgent] = None) -> None:
        self.agent = agent
        self.received: List[Any] = []
        self.answers: Dict[str, List[Dict[str, Any]]] = {}

    async def __call__(self, message: Any) -> None:
        self.received.append(message)
        answers = self.answers.get(message.text or "", [{"text": f"echo:{message.text}"}])
        if self.agent is not None:
            await self.agent.record(message.sender_id, message.text, answers)
        for answer in answers:
            await message.output_channel.send_response(message.sender_id, dict(answer))


async def never(_conversation: Any) -> bool:
    return False


async def up() -> bool:
    return True


def make_pipeline(agent: Optional[FakeAgent], *, per_minute: int = 1000, paused=never,
                  health=up) -> TurnPipeline:
    return TurnPipeline(limiter=RateLimiter(per_minute), agent=lambda: agent, paused=paused,
                        health=health)
