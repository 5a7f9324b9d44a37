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
    ConversationPaused,
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
                       "REDIS_PASSWORD": "x",
                       "TRACKER_MAX_EVENTS": "1234", "TRACKER_MAX_DAYS": "45"}.items():
        monkeypatch.setenv(key, value)
    config = read_endpoint_config(str(PROJECT_ROOT / endpoints), "tracker_store")

    store = TrackerStore.create(config, DOMAIN)
    while not isinstance(store, SQLTrackerStore):  # Rasa's Awaitable/FailSafe wrappers
        store = next(getattr(store, name) for name in ("_tracker_store", "tracker_store")
                     if hasattr(store, name))

    assert type(store) is ThreadedSQLTrackerStore
    assert str(store.engine.url) == f"sqlite:///{tmp_path / 'tracker.db'}"
    assert (store.max_events, store.max_days) == (1234, 45)
    store.engine.dispose()


@pytest.mark.parametrize("endpoints, defaults", [("endpoints.yml", "config/dev.env"),
                                                 ("config/prod/endpoints.yml",
                                                  "config/prod/prod.env")])
def test_both_profiles_bound_the_history_by_default(endpoints: str, defaults: str) -> None:
    """One place: the store's keys read TRACKER_MAX_*; each profile's env file sets them."""
    import yaml

    from walletbot.settings import PROJECT_ROOT

    section = yaml.safe_load((PROJECT_ROOT / endpoints).read_text(encoding="utf-8"))["tracker_store"]
    assert (section["max_events"], section["max_days"]) == (
        "${TRACKER_MAX_EVENTS}", "${TRACKER_MAX_DAYS}")
    values = dict(line.split("=", 1) for line in
                  (PROJECT_ROOT / defaults).read_text(encoding="utf-8").splitlines()
                  if line and not line.startswith("#"))
    assert (values["TRACKER_MAX_EVENTS"], values["TRACKER_MAX_DAYS"]) == ("2000", "90")


# -- bounded history (max_events, max_days) ------------------------------------

DAY = 86_400.0


def stored(url: str, sender: str = "u1") -> List[Tuple[Any, ...]]:
    return [r for r in rows(url) if r[0] == sender]


def bounded(url: str, **bounds: Any) -> ThreadedSQLTrackerStore:
    return ThreadedSQLTrackerStore(domain=DOMAIN, host=url, **bounds)


def session(tracker: DialogueStateTracker, start: float, turns: int,
            slot: Any = None) -> DialogueStateTracker:
    """Appends a session as Rasa writes one: start, carried slot, ``turns`` greet turns."""
    events: List[Any] = [ActionExecuted("action_session_start"), SessionStarted()]
    if slot is not None:
        events.append(SlotSet("order_id", slot))
    for n in range(turns):
        events += [ActionExecuted("action_listen"),
                   UserUttered(f"你好{n}", {"name": "greet", "confidence": 1.0}),
                   ActionExecuted("utter_greet"), BotUttered(f"您好{n}")]
    events.append(ActionExecuted("action_listen"))
    for offset, event in enumerate(events):
        event.timestamp = start + offset
        tracker.update(event)
    return tracker


def state(tracker: DialogueStateTracker) -> Tuple[Any, ...]:
    return tracker.current_slot_values(), tracker.is_paused(), tracker.active_loop_name


@pytest.mark.parametrize("value, expected", [(None, 0), (0, 0), ("0", 0), (2000, 2000),
                                             (" 2000 ", 2000), ("50", 50)])
def test_the_count_bound_is_read_from_the_configuration(value: Any, expected: int,
                                                        tmp_path: Path) -> None:
    store = bounded(f"sqlite:///{tmp_path / 't.db'}", max_events=value, max_days="90")
    assert (store.max_events, store.max_days) == (expected, 90)
    store.engine.dispose()


@pytest.mark.parametrize("bounds", [{"max_events": "2k"}, {"max_events": ""}, {"max_events": -1},
                                    {"max_events": 10}, {"max_events": True},
                                    {"max_days": "-3"}, {"max_days": 1.5}])
def test_a_wrong_bound_stops_the_start(bounds: Dict[str, Any], tmp_path: Path) -> None:
    """Not a silently unbounded store: Rasa does not catch this, the server does not start."""
    with pytest.raises(ValueError, match="tracker_store max_"):
        bounded(f"sqlite:///{tmp_path / 't.db'}", **bounds)


async def test_events_older_than_max_days_go_except_the_current_session(url: str) -> None:
    store = bounded(url, max_events=0, max_days=90)
    now = time.time()
    try:
        tracker = session(DialogueStateTracker("u1", DOMAIN.slots), now - 200 * DAY, 3)
        session(tracker, now - 100 * DAY, 2, slot="WD1")
        await store.save(tracker)
        # The latest session is 100 days old (a human held it; no new one began): kept whole,
        # from its session_started (its action_session_start belongs to the session before).
        assert [r[1] for r in stored(url)][0] == "session_started"
        assert len(stored(url)) == 12 - 1

        session(tracker, now - 60, 1, slot="WD1")
        await store.save(tracker)

        assert all(r[2] >= now - 90 * DAY for r in stored(url))
        assert [r[1] for r in stored(url)][:2] == ["action", "session_started"]
        loaded = await store.retrieve("u1")
        assert list(loaded.events) == session_events(tracker)
        assert loaded.get_slot("order_id") == "WD1"
    finally:
        store.engine.dispose()


async def test_over_max_events_whole_earlier_sessions_go_first(url: str) -> None:
    store = bounded(url, max_events=100, max_days=0)
    now = time.time() - 3600
    try:
        tracker = DialogueStateTracker("u1", DOMAIN.slots)
        starts, sizes = [], []
        for k in range(5):  # sessions of 3 + 4 * 6 + 1 = 28 events
            starts.append(now + k * 100)
            session(tracker, starts[-1], 6, slot="WD1")
            await store.save(tracker)
            sizes.append(len(stored(url)))

        # 112 > 100: down to at most 80 in whole sessions (the latest two, from their
        # session_started), then the fifth session.
        assert sizes == [28, 56, 84, 2 * 28 - 1, 3 * 28 - 1]
        kept = stored(url)
        assert kept[0][1] == "session_started" and kept[0][2] == starts[2] + 1
        assert list((await store.retrieve("u1")).events) == session_events(tracker)
    finally:
        store.engine.dispose()


async def test_an_over_long_session_keeps_its_start_state_and_latest_turns(url: str) -> None:
    """The cut keeps session_started, the slot and the pause, then whole turns."""
    store = bounded(url, max_events=100, max_days=90)
    try:
        tracker = DialogueStateTracker("u1", DOMAIN.slots)
        session(tracker, time.time() - 3600, 2, slot="WD1")
        tracker.update(SlotSet("order_id", "WD2"))  # the latest value is what counts
        tracker.update(ConversationPaused())
        await store.save(tracker)
        whole = DialogueStateTracker.from_events("u1", list(tracker.events), DOMAIN.slots)
        for n in range(60):  # as Rasa does: read the session, add the turn, save
            tracker = await store.retrieve("u1")
            tracker.update(UserUttered(f"还在吗{n}", {"name": "greet", "confidence": 1.0}))
            tracker.update(BotUttered(f"客服：稍等{n}"))
            tracker.update(ActionExecuted("action_listen"))
            whole.update(tracker.events[-3])
            whole.update(tracker.events[-2])
            whole.update(tracker.events[-1])
            await store.save(tracker)
            assert len(stored(url)) <= 100

        loaded = await store.retrieve("u1")
        events = list(loaded.events)
        assert 40 < len(events) <= 100 < len(whole.events)
        assert [type(e) for e in events[:4]] == [SessionStarted, SlotSet, ConversationPaused,
                                                 ActionExecuted]
        assert events[1].value == "WD2" and events[3].action_name == "action_listen"
        assert events[3:] == list(whole.events)[-(len(events) - 3):]
        assert state(loaded) == state(whole)
        assert loaded.get_slot("order_id") == "WD2" and loaded.is_paused()
        assert loaded.latest_message.text == "还在吗59"
        assert list((await store.retrieve_full_tracker("u1")).events) == events
    finally:
        store.engine.dispose()


async def test_a_cut_turn_starts_with_action_listen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    store = bounded(url, max_events=50)
    try:
        tracker = session(DialogueStateTracker("u1", DOMAIN.slots), time.time() - 3600, 20,
                          slot="WD1")
        await store.save(tracker)
        events = list((await store.retrieve("u1")).events)
        assert len(events) <= 50 * 0.8
        assert isinstance(events[0], SessionStarted) and isinstance(events[1], SlotSet)
        assert events[2] == ActionExecuted("action_listen")
        assert events[2:] == list(tracker.events)[-(len(events) - 2):]
    finally:
        store.engine.dispose()


async def test_a_tracker_saved_again_after_a_prune_stores_nothing_twice(url: str) -> None:
    """Rasa counts the stored events of the session to find the new ones: not after a prune."""
    store = bounded(url, max_events=50)
    try:
        tracker = session(DialogueStateTracker("u1", DOMAIN.slots), time.time() - 3600, 20)
        await store.save(tracker)
        after_prune = stored(url)
        assert len(after_prune) <= 40
        await store.save(tracker)
        assert stored(url) == after_prune

        tracker.update(UserUttered("谢谢", {"name": "greet", "confidence": 1.0}))
        await store.save(tracker)
        assert stored(url) == after_prune + [stored(url)[-1]]
        assert stored(url)[-1][1] == "user"
    finally:
        store.engine.dispose()


async def test_a_full_tracker_saved_with_a_new_event_adds_only_that_event(
        store: ThreadedSQLTrackerStore, url: str) -> None:
    tracker = session(DialogueStateTracker("u1", DOMAIN.slots), 1_700_000_000.0, 2)
    session(tracker, 1_700_010_000.0, 1)
    await store.save(tracker)
    full = await store.retrieve_full_tracker("u1")
    full.update(UserUttered("你好", {"name": "greet", "confidence": 1.0}))

    await store.save(full)

    assert len(rows(url)) == len(full.events)
    assert list((await store.retrieve_full_tracker("u1")).events) == list(full.events)


async def test_without_bounds_everything_stays(url: str) -> None:
    store = bounded(url, max_events="0", max_days="0")
    try:
        tracker = session(DialogueStateTracker("u1", DOMAIN.slots), time.time() - 400 * DAY, 30)
        session(tracker, time.time() - 60, 30)
        await store.save(tracker)
        assert len(stored(url)) == len(tracker.events)
    finally:
        store.engine.dispose()


async def test_a_failed_prune_keeps_the_turn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    store = bounded(url, max_events=50)

    def broken(sender_id: str) -> int:
        raise sa.exc.OperationalError("DELETE", {}, Exception("disk I/O error"))

    monkeypatch.setattr(store, "_prune_now", broken)
    try:
        tracker = session(DialogueStateTracker("u1", DOMAIN.slots), time.time() - 3600, 20)
        await store.save(tracker)  # no exception: Rasa would fall back to memory
        assert len(stored(url)) == len(tracker.events)
        assert "could not prune" in caplog.text and "OperationalError" in caplog.text
    finally:
        store.engine.dispose()


async def test_a_cut_that_would_change_the_state_is_not_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The replay check: were a carried event missed, the session would rather stay long."""
    from walletbot.rasa_compat import trackerstore

    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    store = bounded(url, max_events=50)
    monkeypatch.setattr(trackerstore, "_carried_events", lambda *_: set())
    try:
        tracker = session(DialogueStateTracker("u1", DOMAIN.slots), time.time() - 3600, 20,
                          slot="WD1")
        await store.save(tracker)
        loaded = await store.retrieve("u1")
        assert list(loaded.events) == session_events(tracker)
        assert loaded.get_slot("order_id") == "WD1"
        assert "not shortening an over-long session" in caplog.text
    finally:
        store.engine.dispose()


async def test_prune_all_reaches_conversations_no_longer_saved(url: str) -> None:
    now = time.time()
    unbounded = bounded(url)
    tracker = session(DialogueStateTracker("u1", DOMAIN.slots), now - 100 * DAY, 2)
    session(tracker, now - 99 * DAY, 2)
    await unbounded.save(tracker)
    await unbounded.save(session(DialogueStateTracker("u2", DOMAIN.slots), now - 60, 40))
    unbounded.engine.dispose()
    store = bounded(url, max_events=100, max_days=90)
    try:
        removed = await store.prune_all()

        # u1: both sessions are over 90 days old; the latest stays (from its session_started).
        assert len(stored(url, "u1")) == 10
        assert len(stored(url, "u2")) <= 80
        assert removed == {"conversations": 2, "events": 11 + 11 + 163 - len(rows(url))}
        assert await store.prune_all() == {"conversations": 0, "events": 0}
    finally:
        store.engine.dispose()


async def test_the_prune_command_uses_the_endpoints_bounds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """`python -m walletbot.rasa_compat.trackerstore [ENDPOINTS]`, e.g. from a daily cron job."""
    from walletbot.rasa_compat import trackerstore
    from walletbot.settings import PROJECT_ROOT

    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    unbounded = bounded(url)
    await unbounded.save(session(DialogueStateTracker("u1", DOMAIN.slots), time.time() - 60, 40))
    unbounded.engine.dispose()
    for key, value in {"TRACKER_DB_URL": url, "TRACKER_MAX_EVENTS": "100",
                       "TRACKER_MAX_DAYS": "90"}.items():
        monkeypatch.setenv(key, value)

    assert await asyncio.to_thread(trackerstore.main, [str(PROJECT_ROOT / "endpoints.yml")]) == 0

    assert len(stored(url)) <= 80
    assert f"pruned {163 - len(stored(url))} events of 1 conversations" in capsys.readouterr().out


# -- the desk's read of a conversation (recent_events) ---------------------------

def _recent_step(n: int, kind: str) -> List[Any]:
    from rasa.shared.core.events import ConversationResumed, Restarted

    return {
        "user": [ActionExecuted("action_listen"),
                 UserUttered(f"问题{n}", {"name": "greet", "confidence": 1.0})],
        "bot": [ActionExecuted("utter_greet"), BotUttered(f"回答{n}")],
        "agent": [BotUttered(f"客服{n}", {"agent": "agent1", "agent_name": "小王"})],
        "slot": [SlotSet("order_id", f"WD{n}")],
        "pause": [ConversationPaused()],
        "resume": [ConversationResumed()],
        "restart": [Restarted()],
        "session": [ActionExecuted("action_session_start"), SessionStarted()],
    }[kind]


RECENT_KINDS = ("user", "bot", "agent", "slot", "pause", "resume", "restart", "session")


def test_the_desk_reads_what_the_whole_tracker_would_show(url: str) -> None:
    """recent_events equals retrieve + AFTER_RESTART + is_paused, for random conversations."""
    from hypothesis import HealthCheck, given, settings, strategies as st
    from rasa.shared.core.trackers import EventVerbosity

    from walletbot.handoff.transcript import transcript_lines

    store = bounded(url)
    counter = iter(range(10**6))

    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(st.sampled_from(RECENT_KINDS), min_size=1, max_size=40),
           st.integers(min_value=1, max_value=30))
    def check(kinds: List[str], limit: int) -> None:
        sender = f"r{next(counter)}"
        tracker = DialogueStateTracker(sender, DOMAIN.slots)
        start = 1_700_000_000.0
        for n, kind in enumerate(kinds):
            for event in _recent_step(n, kind):
                start += 1
                event.timestamp = start
                tracker.update(event)

        async def both() -> Tuple[Any, Any, Any]:
            await store.save(tracker)
            whole = await store.retrieve(sender)
            return whole, await store.recent_events(sender, 10_000), \
                await store.recent_events(sender, limit), \
                await store.recent_events(sender, limit, types=("user", "bot"))

        whole, (events, paused), (tail, tail_paused), (typed, typed_paused) = asyncio.run(both())
        expected = whole.current_state(EventVerbosity.AFTER_RESTART)["events"]
        assert events == expected
        assert paused == whole.is_paused() == tail_paused == typed_paused
        # Only messages, and as many of them as asked for (a restart still cuts).
        assert typed == [e for e in expected if e["event"] in ("user", "bot")][-limit:]
        # A short read is the newest part of what the long one shows.
        assert tail == expected[-limit:]
        lines = transcript_lines(tail, limit=3)
        if lines:
            assert lines == transcript_lines(expected, limit=10**6)[-len(lines):]

    try:
        check()
    finally:
        store.engine.dispose()
