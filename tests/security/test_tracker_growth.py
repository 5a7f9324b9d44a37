"""Attack: a conversation flooded until its stored history would grow without end.

A bot or a patient user can send turn after turn in one session (Rasa starts
a new one only after an hour of silence), and every event stays in the
``events`` table forever. The tracker store, built from the shipped
``endpoints.yml``, must keep each conversation within ``max_events``
(TRACKER_MAX_EVENTS) and ``max_days`` (TRACKER_MAX_DAYS) (a kept conversation,
a turn's or a paused one's, is pruned in the store's threads right after the
save that crossed the bound: the checks wait for that), and the flooded
conversation must go on as before: same answers, slots kept, a conversation
that a human holds still paused.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

from walletbot.settings import PROJECT_ROOT

DAY = 86_400.0
SENDER = "web:flood"
ORDER = "WD202611180002"
GREETING = "您好，我是OK钱包智能客服"


def shipped_store(url: str, domain: Domain, monkeypatch: pytest.MonkeyPatch,
                  **env: str) -> SQLTrackerStore:
    """The tracker store as Rasa builds it from endpoints.yml (values from the environment)."""
    monkeypatch.setenv("TRACKER_DB_URL", url)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    store: Any = TrackerStore.create(
        read_endpoint_config(str(PROJECT_ROOT / "endpoints.yml"), "tracker_store"), domain)
    while not isinstance(store, SQLTrackerStore):  # Rasa's Awaitable/FailSafe wrappers
        store = next(getattr(store, name) for name in ("_tracker_store", "tracker_store")
                     if hasattr(store, name))
    return store


def stored(store: SQLTrackerStore, sender: str = SENDER) -> List[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.text(
            "SELECT type_name, timestamp FROM events WHERE sender_id = :s ORDER BY id"),
            {"s": sender}))


def old_session(domain: Domain, start: float, sender: str = SENDER) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, domain.slots)
    for offset, event in enumerate([
            ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
            UserUttered("我的身份证号是多少", {"name": "faq", "confidence": 0.9}),
            BotUttered("旧的回答"), ActionExecuted("action_listen")]):
        event.timestamp = start + offset
        tracker.update(event)
    return tracker


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(PROJECT_ROOT / "domain.yml"))


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tracker.db'}"


async def test_a_bot_flood_stays_within_the_shipped_bounds(
        url: str, domain: Domain, monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of events in one session, 100-day-old history before it: the shipped 2,000 / 90."""
    store = shipped_store(url, domain, monkeypatch, TRACKER_MAX_EVENTS="2000",
                          TRACKER_MAX_DAYS="90")
    try:
        await store.save(old_session(domain, time.time() - 100 * DAY))
        tracker = await store.retrieve(SENDER)
        for event in [ActionExecuted("action_session_start"), SessionStarted(),
                      SlotSet("order_id", ORDER), ActionExecuted("action_listen")]:
            tracker.update(event)
        sizes = []
        for n in range(150):  # 150 turns of 26 events: 3,900 events
            tracker.update(UserUttered(f"刷屏{n}", {"name": "greet", "confidence": 1.0}))
            for k in range(12):
                tracker.update(ActionExecuted("utter_greet"))
                tracker.update(BotUttered(f"{GREETING}{n}-{k}"))
            tracker.update(ActionExecuted("action_listen"))
            await store.save(tracker)
            sizes.append(len(stored(store)))

        assert max(sizes) <= 2000, max(sizes)
        assert len(tracker.events) > 3900
        assert all(stamp > time.time() - 90 * DAY for _, stamp in stored(store))
        loaded = await store.retrieve(SENDER)
        assert isinstance(loaded.events[0], SessionStarted)
        assert loaded.get_slot("order_id") == ORDER
        assert loaded.latest_message.text == "刷屏149"
        assert list(loaded.events)[-30:] == list(tracker.events)[-30:]
    finally:
        store.engine.dispose()


@pytest.fixture
def agent_with_store(trained_model: Path, domain: Domain, url: str,
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real Agent on this store, with a low bound (TRACKER_MAX_EVENTS=100) to stay quick."""
    from rasa.core.agent import Agent

    store = shipped_store(url, domain, monkeypatch, TRACKER_MAX_EVENTS="100",
                          TRACKER_MAX_DAYS="90")
    agent = Agent.load(str(trained_model), tracker_store=store)
    yield agent, store
    store.engine.dispose()


async def texts(agent: Any, text: str) -> List[str]:
    return [m.get("text", "") for m in await agent.handle_text(text, sender_id=SENDER)]


async def test_a_flooded_conversation_keeps_answering_and_stays_paused(
        agent_with_store: Any, domain: Domain) -> None:
    from walletbot.rasa_compat.agent import store_user_message

    agent, store = agent_with_store
    await store.save(old_session(domain, time.time() - 120 * DAY))

    # A slot set early in the session, then a long run of turns.
    await texts(agent, f"查一下订单{ORDER}")
    assert (await store.retrieve(SENDER)).get_slot("order_id") == ORDER
    assert not [r for r in stored(store) if r[1] < time.time() - 90 * DAY], "old session stays"
    expected = {"你好": GREETING, "谢谢": "不客气", "你是机器人吗": "我是OK钱包的智能客服机器人"}
    for n in range(40):
        text = list(expected)[n % 3]
        replies = await texts(agent, text)
        assert len(replies) == 1 and replies[0].startswith(expected[text]), (n, replies)
        store.wait_for_background()  # a kept conversation is pruned right after its turn
        assert len(stored(store)) <= 100
    tracker = await store.retrieve(SENDER)
    assert tracker.get_slot("order_id") == ORDER, "the slot went with the pruned turns"
    assert isinstance(tracker.events[0], SessionStarted)
    assert not any(isinstance(e, UserUttered) and "订单" in (e.text or "") for e in tracker.events)

    # A human takes the conversation (as action_handoff does); the user keeps writing.
    async with agent.lock_store.lock(SENDER):
        tracker = await store.retrieve(SENDER)
        tracker.update(ConversationPaused())
        await store.save(tracker)
    for n in range(120):
        assert await store_user_message(agent, SENDER, text=f"人呢{n}", input_channel="web")
        store.wait_for_background()
        assert len(stored(store)) <= 100
    assert await texts(agent, "你好") == [], "the bot answered a conversation a human holds"
    tracker = await store.retrieve(SENDER)
    assert tracker.is_paused() and tracker.get_slot("order_id") == ORDER
    assert tracker.latest_message.text == "你好"
    assert any(e.type_name == "user" and e.text == "人呢119" for e in tracker.events)

    # The agent hands back (as the desk's resume does): the bot answers again.
    async with agent.lock_store.lock(SENDER):
        tracker = await store.retrieve(SENDER)
        tracker.update(ConversationResumed())
        tracker.update(ActionExecuted("action_listen"))
        await store.save(tracker)
    replies = await texts(agent, "你好")
    assert len(replies) == 1 and replies[0].startswith(GREETING)
    store.wait_for_background()
    assert len(stored(store)) <= 100
