"""The threaded SQL tracker store: Rasa's rows and trackers, without blocking the loop."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from walletbot.rasa_compat.trackerstore import ThreadedSQLTrackerStore

DOMAIN = Domain.from_dict({
    "intents": ["greet", "check_transaction"],
    "slots": {"order_id": {"type": "text", "mappings": [{"type": "custom"}]}},
})


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tracker.db'}"
    return request.getfixturevalue("pg_server").new_url()


def make_store(cls: type, url: str) -> SQLTrackerStore:
    return cls(domain=DOMAIN, host=url)


@pytest.fixture
def store(url: str) -> Iterator[ThreadedSQLTrackerStore]:
    made = make_store(ThreadedSQLTrackerStore, url)
    yield made
    made.engine.dispose()


def conversation(sender: str, start: float = 1_700_000_000.0) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    for offset, event in enumerate([
        ActionExecuted("action_session_start"),
        SessionStarted(),
        ActionExecuted("action_listen"),
        UserUttered("帮我查一下WD202611180002", {"name": "check_transaction", "confidence": 0.9},
                    [{"entity": "order_id", "value": "WD202611180002", "start": 5, "end": 19}]),
        SlotSet("order_id", "WD202611180002"),
        ActionExecuted("action_check_transaction"),
        BotUttered("订单 WD202611180002 处理中", {"buttons": None}),
        ActionExecuted("action_listen"),
    ]):
        event.timestamp = start + offset
        tracker.update(event)
    return tracker


def session_events(tracker: DialogueStateTracker) -> List[Any]:
    """What Rasa retrieves: the events from the latest ``SessionStarted`` on."""
    events = list(tracker.events)
    starts = [i for i, event in enumerate(events) if isinstance(event, SessionStarted)]
    return events[starts[-1]:] if starts else events


def rows(url: str) -> List[Tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(
                "SELECT sender_id, type_name, timestamp, intent_name, action_name, data "
                "FROM events ORDER BY id"))]
    finally:
        engine.dispose()


async def test_a_saved_conversation_comes_back_whole(store: ThreadedSQLTrackerStore) -> None:
    saved = conversation("u1")
    await store.save(saved)

    loaded = await store.retrieve("u1")

    assert loaded is not None
    assert list(loaded.events) == session_events(saved)
    assert list((await store.retrieve_full_tracker("u1")).events) == list(saved.events)
    assert loaded.get_slot("order_id") == "WD202611180002"
    assert loaded.latest_message.intent["name"] == "check_transaction"
    assert await store.retrieve("nobody") is None


async def test_it_writes_the_rows_rasas_own_store_writes(url: str, tmp_path: Path) -> None:
    """Same table, same columns, same values: `type: SQL` can read it back, and vice versa."""
    stock_url = f"sqlite:///{tmp_path / 'stock.db'}"
    threaded, stock = make_store(ThreadedSQLTrackerStore, url), make_store(SQLTrackerStore, stock_url)
    try:
        await threaded.save(conversation("u1"))
        await stock.save(conversation("u1"))
        assert rows(url) == rows(stock_url)
        assert len(rows(url)) == 8

        stock_reader = make_store(SQLTrackerStore, url)
        assert list((await stock_reader.retrieve("u1")).events) == session_events(conversation("u1"))
        stock_reader.engine.dispose()
        assert list((await make_store(ThreadedSQLTrackerStore, stock_url).retrieve("u1")).events) \
            == session_events(conversation("u1"))
    finally:
        threaded.engine.dispose()
        stock.engine.dispose()


async def test_saving_again_appends_only_the_new_events(store: ThreadedSQLTrackerStore,
                                                        url: str) -> None:
    await store.save(conversation("u1"))
    # As Rasa's processor does: read the session back, add the turn, save.
    tracker = await store.retrieve("u1")
    tracker.update(UserUttered("你好", {"name": "greet", "confidence": 1.0}))
    tracker.update(ActionExecuted("action_listen"))
    await store.save(tracker)
    await store.save(tracker)

    assert [r[1] for r in rows(url)][-3:] == ["action", "user", "action"]
    assert len(rows(url)) == 10
    assert list((await store.retrieve("u1")).events) == list(tracker.events)


async def test_only_the_latest_session_is_retrieved_unless_asked(
        store: ThreadedSQLTrackerStore) -> None:
    tracker = conversation("u1")
    for offset, event in enumerate([ActionExecuted("action_session_start"), SessionStarted(),
                                    ActionExecuted("action_listen")]):
        event.timestamp = 1_800_000_000.0 + offset
        tracker.update(event)
    await store.save(tracker)

    latest = await store.retrieve("u1")
    full = await store.retrieve_full_tracker("u1")

    assert len(latest.events) == 2 and isinstance(latest.events[0], SessionStarted)
    assert latest.events[0].timestamp == 1_800_000_001.0
    assert list(full.events) == list(tracker.events)


async def test_conversations_saved_at_once_stay_separate(store: ThreadedSQLTrackerStore) -> None:
    senders = [f"u{i}" for i in range(12)]
    await asyncio.gather(*(store.save(conversation(s)) for s in senders))

    loaded = await asyncio.gather(*(store.retrieve(s) for s in senders))

    for sender, tracker in zip(senders, loaded):
        assert tracker.sender_id == sender
        assert list(tracker.events) == session_events(conversation(sender))


class SlowDatabase:
    """Makes every statement take ``delay`` seconds and records the threads that ran them."""

    def __init__(self, engine: sa.engine.Engine, delay: float) -> None:
        self.delay = delay
        self.threads: List[int] = []
        sa.event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, *_: Any) -> None:
        self.threads.append(threading.get_ident())
        time.sleep(self.delay)


async def ticks_during(operation: Any) -> int:
    """How often a 10 ms heartbeat on the event loop ran while ``operation`` ran."""
    ticks = 0
    done = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    beating = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)
    try:
        await operation
    finally:
        done.set()
        await beating
    return ticks


@pytest.mark.parametrize("cls, blocks", [(ThreadedSQLTrackerStore, False), (SQLTrackerStore, True)])
async def test_database_time_does_not_block_the_event_loop(cls: type, blocks: bool,
                                                           tmp_path: Path) -> None:
    """Other users' turns go on while one waits for the database (Rasa's own store blocks)."""
    store = make_store(cls, f"sqlite:///{tmp_path / 'tracker.db'}")
    await store.save(conversation("u1"))
    slow = SlowDatabase(store.engine, delay=0.15)
    loop_thread = threading.get_ident()
    try:
        ticks: Dict[str, int] = {
            "retrieve": await ticks_during(store.retrieve("u1")),
            "save": await ticks_during(store.save(conversation("u2"))),
        }
    finally:
        store.engine.dispose()

    assert slow.threads, "the slow statements ran"
    if blocks:
        assert all(t == loop_thread for t in slow.threads)
        assert ticks["retrieve"] <= 1 and ticks["save"] <= 1, ticks
    else:
        assert loop_thread not in slow.threads
        # retrieve: >= 1 statement, save: >= 2 (count, insert): 0.15 s each.
        assert ticks["retrieve"] >= 8 and ticks["save"] >= 16, ticks


async def test_a_database_error_reaches_the_caller(tmp_path: Path) -> None:
    """Rasa's processor (and our channels' apology) must see the failure, as with `type: SQL`."""
    store = make_store(ThreadedSQLTrackerStore, f"sqlite:///{tmp_path / 'tracker.db'}")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE events")
    try:
        with pytest.raises(sa.exc.OperationalError):
            await store.retrieve("u1")
        with pytest.raises(sa.exc.OperationalError):
            await store.save(conversation("u1"))
    finally:
        store.engine.dispose()


def test_sqlite_gets_one_writer_thread_and_servers_a_pool(url: str) -> None:
    made = make_store(ThreadedSQLTrackerStore, url)
    try:
        assert made.threads == (1 if url.startswith("sqlite") else 4)
    finally:
        made.engine.dispose()


@pytest.mark.parametrize("endpoints", ["endpoints.yml", "config/prod/endpoints.yml"])
def test_both_profiles_build_this_store(endpoints: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in `type:` would make Rasa fall back to an in-memory store, silently."""
    from rasa.core.tracker_store import TrackerStore
    from rasa.utils.endpoints import read_endpoint_config

    from walletbot.settings import PROJECT_ROOT

    for key, value in {"ACTION_ENDPOINT_URL": "http://127.0.0.1:5055/webhook",
                       "TRACKER_DB_URL": f"sqlite:///{tmp_path / 'tracker.db'}",
                       "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379", "REDIS_DB": "0",
                       "REDIS_PASSWORD": "x"}.items():
        monkeypatch.setenv(key, value)
    config = read_endpoint_config(str(PROJECT_ROOT / endpoints), "tracker_store")

    store = TrackerStore.create(config, DOMAIN)
    while not isinstance(store, SQLTrackerStore):  # Rasa's Awaitable/FailSafe wrappers
        store = next(getattr(store, name) for name in ("_tracker_store", "tracker_store")
                     if hasattr(store, name))

    assert type(store) is ThreadedSQLTrackerStore
    assert str(store.engine.url) == f"sqlite:///{tmp_path / 'tracker.db'}"
    store.engine.dispose()
