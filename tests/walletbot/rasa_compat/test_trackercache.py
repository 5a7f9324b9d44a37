"""Kept trackers: a turn reads only what was stored since, and always sees the stored truth."""

from __future__ import annotations

from typing import Any, Iterator, List

import pytest
import sqlalchemy as sa
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

from tests.walletbot.rasa_compat.test_trackerstore import DOMAIN, conversation, session, url  # noqa: F401
from walletbot.rasa_compat import trackercache
from walletbot.rasa_compat.trackercache import TrackerCache, turn_of
from walletbot.rasa_compat.trackerstore import ThreadedSQLTrackerStore


def replica(url: str, **options: Any) -> ThreadedSQLTrackerStore:  # noqa: F811
    return ThreadedSQLTrackerStore(domain=DOMAIN, host=url, **options)


@pytest.fixture
def replicas(url: str) -> Iterator[List[ThreadedSQLTrackerStore]]:  # noqa: F811
    """Two Rasa processes' stores on one database (the production profile's two replicas)."""
    made = [replica(url), replica(url)]
    yield made
    for store in made:
        store.engine.dispose()


def turn_events(text: str, order_id: str) -> List[Any]:
    return [UserUttered(text, {"name": "check_transaction", "confidence": 0.9}),
            SlotSet("order_id", order_id), ActionExecuted("action_check_transaction"),
            BotUttered(f"订单 {order_id}"), ActionExecuted("action_listen")]


async def turn(store: ThreadedSQLTrackerStore, sender: str, text: str,
               order_id: str) -> DialogueStateTracker:
    """One processor turn: read under the turn's mark, add the turn's events, save."""
    with turn_of(sender):
        tracker = await store.retrieve(sender)
        for event in turn_events(text, order_id):
            tracker.update(event)
        await store.save(tracker)
    return tracker


def state(tracker: DialogueStateTracker) -> Any:
    return tracker.current_state(EventVerbosity.AFTER_RESTART)


async def fresh(store: ThreadedSQLTrackerStore, sender: str) -> DialogueStateTracker:
    """The tracker as Rasa reads it from the database (not in a turn: never the kept one)."""
    return await store.retrieve(sender)


async def test_the_next_turn_gets_the_kept_tracker_equal_to_the_stored_one(
        replicas: List[ThreadedSQLTrackerStore]) -> None:
    store = replicas[0]
    await store.save(conversation("u1"))

    first = await turn(store, "u1", "查 WD1", "WD1")
    second = await turn(store, "u1", "查 WD2", "WD2")

    assert second is first  # kept, not rebuilt
    assert (store.cache.misses, store.cache.hits) == (1, 1)
    assert state(second) == state(await fresh(store, "u1"))
    assert second.get_slot("order_id") == "WD2"


async def test_other_readers_never_get_the_kept_tracker(
        replicas: List[ThreadedSQLTrackerStore]) -> None:
    store = replicas[0]
    await store.save(conversation("u1"))
    kept = await turn(store, "u1", "查 WD1", "WD1")

    outside = await store.retrieve("u1")
    with turn_of("someone-else"):
        other_turn = await store.retrieve("u1")

    assert outside is not kept and other_turn is not kept
    assert state(outside) == state(kept)


async def test_a_turn_on_b_sees_what_a_just_stored_and_back(
        replicas: List[ThreadedSQLTrackerStore]) -> None:
    """Two replicas alternate on one conversation (on PostgreSQL: the production case)."""
    a, b = replicas
    await a.save(conversation("u1"))
    on_a = await turn(a, "u1", "查 WD1", "WD1")
    on_b = await turn(b, "u1", "查 WD2", "WD2")
    assert on_b.get_slot("order_id") == "WD2"

    again_a = await turn(a, "u1", "查 WD3", "WD3")

    # A took in only B's turn, into the tracker it kept.
    assert again_a is on_a and a.cache.partial == 1
    with turn_of("u1"):
        tracker_a, tracker_b = await a.retrieve("u1"), await b.retrieve("u1")
    expected = state(await fresh(a, "u1"))
    assert state(tracker_a) == expected and state(tracker_b) == expected
    texts = [e.text for e in tracker_a.events if isinstance(e, UserUttered)]
    assert texts == ["帮我查一下WD202611180002", "查 WD1", "查 WD2", "查 WD3"]


async def test_a_tracker_changed_without_being_saved_is_read_again(
        replicas: List[ThreadedSQLTrackerStore]) -> None:
    """A turn that failed half-way must not leave its events in the next turn's tracker."""
    store = replicas[0]
    await store.save(conversation("u1"))
    with turn_of("u1"):
        broken = await store.retrieve("u1")
        broken.update(SlotSet("order_id", "NEVER-STORED"))  # and then the turn raises

    with turn_of("u1"):
        tracker = await store.retrieve("u1")

    assert tracker is not broken
    assert tracker.get_slot("order_id") == "WD202611180002"


async def test_deleted_events_mean_a_full_read(url: str) -> None:  # noqa: F811
    store, other = replica(url), replica(url)
    try:
        await store.save(conversation("u1"))
        kept = await turn(store, "u1", "查 WD1", "WD1")
        # Another process deletes the last turn and stores a different one.
        with store.engine.begin() as conn:
            newest = conn.execute(sa.text("SELECT max(id) FROM events")).scalar()
            conn.execute(sa.text("DELETE FROM events WHERE id > :n"), {"n": newest - 5})
        await turn(other, "u1", "查 WD9", "WD9")

        with turn_of("u1"):
            tracker = await store.retrieve("u1")

        assert tracker is not kept
        assert tracker.get_slot("order_id") == "WD9"
        assert "查 WD1" not in [e.text for e in tracker.events if isinstance(e, UserUttered)]
    finally:
        store.engine.dispose()
        other.engine.dispose()


async def test_a_new_session_stored_elsewhere_is_read_from_its_start(
        replicas: List[ThreadedSQLTrackerStore]) -> None:
    a, b = replicas
    await a.save(conversation("u1"))
    kept = await turn(a, "u1", "查 WD1", "WD1")
    tracker = await b.retrieve("u1")
    for event in [ActionExecuted("action_session_start"), SessionStarted(),
                  ActionExecuted("action_listen")]:
        tracker.update(event)
    await b.save(tracker)

    with turn_of("u1"):
        now = await a.retrieve("u1")

    assert now is not kept
    assert isinstance(now.events[0], SessionStarted)
    assert state(now) == state(await fresh(a, "u1"))


async def test_a_session_started_in_the_turn_is_not_kept(
        replicas: List[ThreadedSQLTrackerStore]) -> None:
    """Rasa reads a conversation from its latest session start; the kept tracker holds more."""
    store = replicas[0]
    await store.save(conversation("u1"))
    with turn_of("u1"):
        tracker = await store.retrieve("u1")
        for event in [ActionExecuted("action_session_start"), SessionStarted(),
                      ActionExecuted("action_listen")]:
            tracker.update(event)
        await store.save(tracker)
        after = await store.retrieve("u1")

    assert after is not tracker
    assert isinstance(after.events[0], SessionStarted)  # as Rasa reads it: this session only
    assert state(after) == state(await fresh(store, "u1"))


async def test_a_pruned_conversation_stays_kept_with_its_count_read_again(url: str) -> None:  # noqa: F811
    """The prune runs after the turn (not inside it) and keeps the kept tracker."""
    store = replica(url, max_events=50)
    try:
        await store.save(conversation("u1"))
        kept = None
        for n in range(12):  # 8 + 12 * 5 events: over the bound once
            kept = await turn(store, "u1", f"查 WD{n}", f"WD{n}")
            store.wait_for_background()
        with turn_of("u1"):
            tracker = await store.retrieve("u1")
        assert tracker is kept  # not dropped and read whole again
        # Memory keeps events the database let go; the state and the newest turns agree.
        assert dialogue(tracker) == dialogue(await fresh(store, "u1"))
        assert tracker.get_slot("order_id") == "WD11"
        total = len(rows_of(url, "u1"))
        assert total <= store.max_events and store.cache.get("u1").count == total
        # The next turns go on from the kept tracker and prune again when due.
        for n in range(12, 30):
            kept = await turn(store, "u1", f"查 WD{n}", f"WD{n}")
            store.wait_for_background()
        assert len(rows_of(url, "u1")) <= store.max_events
        assert dialogue(kept) == dialogue(await fresh(store, "u1"))
        assert kept.get_slot("order_id") == "WD29"
    finally:
        store.engine.dispose()


def dialogue(tracker: DialogueStateTracker) -> Any:
    newest = [e.as_dict() for e in list(tracker.events)[-20:]]
    return tracker.current_slot_values(), tracker.is_paused(), tracker.active_loop_name, newest


def rows_of(url: str, sender: str) -> list:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT id FROM events WHERE sender_id = :s"),
                                     {"s": sender}))
    finally:
        engine.dispose()


async def test_the_cache_is_bounded_by_events_least_recent_first(url: str) -> None:  # noqa: F811
    store = replica(url, cache_events=30)
    try:
        for sender in ("u1", "u2", "u3"):
            await store.save(conversation(sender))
            await turn(store, sender, "查 WD1", "WD1")  # 13 events each
        assert store.cache.get("u1") is None  # 39 > 30: the oldest went
        assert store.cache.get("u2") is not None and store.cache.get("u3") is not None
        assert store.cache.events <= 30
    finally:
        store.engine.dispose()


async def test_cache_events_0_turns_it_off(url: str) -> None:  # noqa: F811
    store = replica(url, cache_events="0")
    try:
        await store.save(conversation("u1"))
        first = await turn(store, "u1", "查 WD1", "WD1")
        second = await turn(store, "u1", "查 WD2", "WD2")
        assert store.cache is None and second is not first
    finally:
        store.engine.dispose()


async def test_another_models_domain_means_a_full_read(
        replicas: List[ThreadedSQLTrackerStore]) -> None:
    store = replicas[0]
    await store.save(conversation("u1"))
    kept = await turn(store, "u1", "查 WD1", "WD1")
    store.domain = DOMAIN.__class__.from_dict(DOMAIN.as_dict())  # a swapped model's domain

    with turn_of("u1"):
        assert await store.retrieve("u1") is not kept


def test_the_lru_accounts_for_growing_trackers() -> None:
    cache = TrackerCache(max_events=10)
    entries = {}
    for name in ("a", "b"):
        entries[name] = trackercache.Kept(DialogueStateTracker(name, []), 1, None, 4, 4, None, None)
        cache.put(name, entries[name])
    cache.resize("b", entries["b"], 7)  # b's turn added 3 events: 11 > 10

    assert cache.get("a") is None and cache.get("b") is entries["b"]
    assert cache.events == 7


async def test_the_processor_marks_its_turns() -> None:
    from rasa.core.processor import MessageProcessor

    seen = []

    async def stand_in(self: Any, message: Any) -> None:
        seen.append((trackercache.in_turn(message.sender_id), trackercache.in_turn("other")))

    message = type("Message", (), {"sender_id": "rest:u1"})()
    await trackercache._marked(stand_in)(None, message)

    assert seen == [(True, False)]
    assert not trackercache.in_turn("rest:u1")  # only while the turn runs
    trackercache.install()
    trackercache.install()  # idempotent: wraps Rasa's method once
    wrapped = MessageProcessor.handle_message.__wrapped__
    assert wrapped.__qualname__ == "MessageProcessor.handle_message"
    assert not hasattr(wrapped, "__wrapped__")


async def test_a_long_turn_tracker_is_cut_to_its_window_and_keeps_its_state(
        url: str) -> None:  # noqa: F811
    """The turn works on at most twice the window; slots, form and pause survive every cut."""
    from rasa.shared.core.events import ActiveLoop, ConversationPaused

    store = replica(url, turn_window=50)
    try:
        start = conversation("u1")
        start.update(SlotSet("order_id", "WD-EARLY"))
        start.update(ActiveLoop("transaction_form"))
        start.update(ConversationPaused())
        await store.save(start)
        sizes = []
        for n in range(60):  # 60 turns of 4 events: 240 more events
            with turn_of("u1"):
                tracker = await store.retrieve("u1")
                sizes.append(len(tracker.events))
                for event in [UserUttered(f"第{n}句", {"name": "greet", "confidence": 1.0}),
                              ActionExecuted("utter_greet"), BotUttered(f"好的{n}"),
                              ActionExecuted("action_listen")]:
                    tracker.update(event)
                await store.save(tracker)

        assert max(sizes) <= 100 and sizes[-1] < sizes[30] + 60
        with turn_of("u1"):
            windowed = await store.retrieve("u1")
        whole = await fresh(store, "u1")
        # The database keeps every event (Rasa reads the session from session_started on).
        assert len(whole.events) == 7 + 3 + 60 * 4
        assert len(windowed.events) <= 100
        assert windowed.get_slot("order_id") == whole.get_slot("order_id") == "WD-EARLY"
        assert windowed.active_loop_name == whole.active_loop_name == "transaction_form"
        assert windowed.is_paused() and whole.is_paused()
        assert isinstance(windowed.events[0], SessionStarted)
        assert [e.text for e in windowed.events if isinstance(e, UserUttered)][-1] == "第59句"
        # Saving the windowed tracker adds only its new events.
        windowed.update(UserUttered("最后", {"name": "greet", "confidence": 1.0}))
        with turn_of("u1"):
            await store.save(windowed)
        assert len((await fresh(store, "u1")).events) == len(whole.events) + 1
    finally:
        store.engine.dispose()


async def test_turn_window_0_gives_every_turn_the_whole_session(url: str) -> None:  # noqa: F811
    store = replica(url, turn_window=0)
    try:
        await store.save(conversation("u1"))
        for n in range(40):
            tracker = await turn(store, "u1", f"查 WD{n}", f"WD{n}")
        assert len(tracker.events) == 7 + 40 * 5  # read from session_started on
    finally:
        store.engine.dispose()


def test_a_window_below_the_minimum_stops_the_start(tmp_path) -> None:
    with pytest.raises(ValueError, match="turn_window"):
        replica(f"sqlite:///{tmp_path / 't.db'}", turn_window="10")


async def test_a_kept_turn_on_postgresql_sends_one_read_and_one_insert(pg_server: Any) -> None:
    """Counted by the server (log_statement=all on these connections only), BEGIN and COMMIT included."""
    logged = pg_server.logged_url()
    a, b = replica(logged), replica(logged)
    try:
        await a.save(conversation("u1"))
        for n in range(3):  # the first read is a full one; later turns keep the tracker
            await turn(a, "u1", f"查 WD{n}", f"WD{n}")
            await turn(b, "u1", f"查 WB{n}", f"WB{n}")

        start = pg_server.log_offset()
        await turn(a, "u1", "查 WD8", "WD8")  # B stored a turn since: A reads just that
        await turn(a, "u1", "查 WD9", "WD9")  # nothing stored since: the kept tracker as is
        lines = pg_server.statements_since(start)
        assert len(lines) == 4, lines
        assert [line.split()[0] for line in lines] == ["SELECT", "INSERT", "SELECT", "INSERT"]
        assert all("RETURNING" in line for line in lines[1::2])
        assert (a.cache.partial, a.cache.hits) >= (3, 1)
        with turn_of("u1"):
            kept = await a.retrieve("u1")
        assert state(kept) == state(await fresh(a, "u1"))
    finally:
        for store in (a, b):
            store.engine.dispose()


async def test_a_full_read_in_a_turn_on_postgresql_is_two_statements(pg_server: Any) -> None:
    """The session's events, and the newest, count and oldest in one row; a new sender, one."""
    logged = pg_server.logged_url()
    a, b = replica(logged), replica(logged)
    try:
        # Two sessions: 8 events from t=1000, then 11 from t=2000 (its SessionStarted at 2001).
        await a.save(session(conversation("u1", start=1_000.0), 2_000.0, 2))
        with turn_of("warm-up"):  # B's first connection asks the server about itself
            await b.retrieve("warm-up")
        start = pg_server.log_offset()
        with turn_of("u1"):
            read = await b.retrieve("u1")  # B keeps nothing of u1 yet
        with turn_of("nobody"):
            assert await b.retrieve("nobody") is None
        lines = pg_server.statements_since(start)
        assert [line.split()[0] for line in lines] == ["SELECT"] * 3, lines
        assert state(read) == state(await fresh(a, "u1"))  # Rasa's read: the latest session
        assert min(e.timestamp for e in read.events) == 2_001.0
        kept = b.cache.get("u1")
        assert (kept.count, kept.oldest_stamp, kept.newest_stamp) == (19, 1_000.0, 2_010.0)
        assert kept.tracker is read
    finally:
        for store in (a, b):
            store.engine.dispose()


async def test_a_kept_turn_on_postgresql_compiles_no_sql(pg_server: Any, monkeypatch) -> None:
    """A multi-row insert compiled per turn was a tenth of a replica's busy time under load."""
    store = replica(pg_server.new_url())
    try:
        await store.save(conversation("u1"))
        for n in range(2):  # the full read, then a kept turn of the same shape
            await turn(store, "u1", f"查 WD{n}", f"WD{n}")
        compiled: List[str] = []
        original = sa.sql.compiler.SQLCompiler.__init__

        def counting(self: Any, dialect: Any, statement: Any, *args: Any, **kwargs: Any) -> None:
            compiled.append(type(statement).__name__)
            original(self, dialect, statement, *args, **kwargs)

        monkeypatch.setattr(sa.sql.compiler.SQLCompiler, "__init__", counting)
        for n in range(2, 5):
            await turn(store, "u1", f"查 WD{n}", f"WD{n}")
        monkeypatch.undo()
        assert compiled == []
        assert store.cache.hits >= 3
        with turn_of("u1"):
            kept = await store.retrieve("u1")
        stored = await fresh(store, "u1")
        assert state(kept) == state(stored)
        assert [e.get("text") for e in state(stored)["events"] if e["event"] == "user"][-3:] == \
            ["查 WD2", "查 WD3", "查 WD4"]
    finally:
        store.engine.dispose()
