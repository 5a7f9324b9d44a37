"""Reaching into the Rasa server: its agent, its action endpoint, a conversation's events.

Everything here uses Rasa's tracker and lock stores exactly as a user turn
does (under the conversation's lock), so it stays correct with replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator, Dict, Iterable, Mapping, Optional, Set

import aiohttp

from walletbot.rasa_compat.trackercache import turn_of


def agent_of(app: Any) -> Any:
    """The Rasa server's current ``Agent`` (replaced on ``PUT /model``), or None."""
    return getattr(getattr(app, "ctx", None), "agent", None)


def action_endpoint_of(app: Any) -> Optional[str]:
    """The action server URL the Rasa server in ``app`` uses, if any."""
    endpoint = getattr(agent_of(app), "action_endpoint", None)
    return getattr(endpoint, "url", None)


async def action_server_up(url: Optional[str], timeout: float = 1.0) -> bool:
    """Whether the action server at ``url`` answers its /health (no URL: True)."""
    if not url:
        return True
    health = url.rsplit("/webhook", 1)[0] + "/health"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(health) as response:
                return response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return False


# Bot messages searched for the buttons a payload must come from: the bot's
# latest offers (a button from long ago is no longer on the user's screen anyway).
OFFERED_WITHIN_MESSAGES = 100


def offered_payloads(events: Iterable[Any]) -> Set[str]:
    """Payloads of every button the bot showed in these tracker events (objects or dicts)."""
    offered: Set[str] = set()
    for event in events:
        if isinstance(event, Mapping):
            kind, data = event.get("event"), event.get("data")
        else:
            kind, data = getattr(event, "type_name", None), getattr(event, "data", None)
        if kind != "bot" or not isinstance(data, Mapping):
            continue
        for button in data.get("buttons") or ():
            payload = button.get("payload") if isinstance(button, Mapping) else None
            if isinstance(payload, str):
                offered.add(payload.strip())
    return offered


@contextlib.asynccontextmanager
async def locked_turn(agent: Any, conversation_id: str) -> AsyncIterator[None]:
    """Holds the conversation's lock and reads and saves its tracker as a turn does.

    For writers outside a user turn (a message stored while an agent has the
    conversation, the desk's replies and resolve): under the lock the tracker
    store hands them the conversation's kept tracker, brought up to date,
    instead of reading and replaying the whole session, which costs more the
    longer the conversation (up to ``max_events`` events). Whatever they add
    to it must be saved before the block ends, as a turn saves at its end; an
    unsaved change is noticed and the next turn reads the database again.
    """
    async with agent.lock_store.lock(conversation_id):
        with turn_of(conversation_id):
            yield


async def payloads_offered_in(agent: Any, conversation_id: str) -> Set[str]:
    """Payloads the bot offered in the stored conversation (empty when there is none).

    On the project's SQL store only the latest ``OFFERED_WITHIN_MESSAGES``
    bot messages are read (every button press asks, and a whole session costs
    more the longer it is); elsewhere the whole tracker.
    """
    store = getattr(agent, "tracker_store", None)
    if store is None:
        return set()
    from walletbot.rasa_compat.trackerstore import threaded_store

    threaded = threaded_store(store)
    if threaded is not None:
        events, _ = await threaded.recent_events(conversation_id, OFFERED_WITHIN_MESSAGES,
                                                 types=("bot",))
        return offered_payloads(events)
    tracker = await store.retrieve(conversation_id)
    return offered_payloads(tracker.events) if tracker is not None else set()


async def store_user_message(
    agent: Any, conversation_id: str, *, text: str, input_channel: str,
    metadata: Optional[Dict[str, Any]] = None, message_id: Optional[str] = None,
) -> bool:
    """Appends the user's message to the conversation without a bot turn.

    Used while a human has the conversation. Rasa would also stay silent, but
    it starts a new session first when the user has been quiet longer than
    ``session_expiration_time`` (a long wait in the queue), and a new session
    is no longer paused.

    Returns:
        Whether it was stored (False: no stores yet, or no such conversation).
    """
    if agent is None or agent.tracker_store is None or agent.lock_store is None:
        return False
    from rasa.shared.core.events import UserUttered

    async with locked_turn(agent, conversation_id):
        tracker = await agent.tracker_store.retrieve(conversation_id)
        if tracker is None:
            return False
        tracker.update(UserUttered(text, input_channel=input_channel, metadata=metadata,
                                   message_id=message_id))
        await agent.tracker_store.save(tracker)
    return True
