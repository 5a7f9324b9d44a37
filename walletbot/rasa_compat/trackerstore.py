"""Rasa's SQL tracker store with its database work off the event loop, and a bounded history.

Rasa 3.6's ``SQLTrackerStore`` declares ``async`` methods but runs every query,
the JSON decoding of every event and the commit inline: each turn blocks the
Rasa server's event loop twice (read at the start, write at the end), and
with PostgreSQL that includes the round trips to the database server. While
it waits, no other user's message is parsed or answered. This subclass runs
the same database work in a small thread pool; the table, the reads and
what is stored are Rasa's own, so the store stays interchangeable with
``type: SQL`` (same ``events`` table, same rows).

Order within one conversation is unchanged: the processor awaits each call
under the conversation's lock, so a conversation never has two calls in
flight. Event brokers are still fed on the event loop, before the write.

Bounded history (``max_events``, ``max_days``; 0 turns a bound off)
-------------------------------------------------------------------
Rasa reads only the latest session of a conversation (the events from its
last ``session_started`` on), but keeps every event forever, and one session
has no length limit. On every save this store also checks the conversation
(two cheap indexed reads) and, when a bound is passed, deletes in the same
worker thread:

- **age**: events older than ``max_days`` days, except those of the current
  session (the one Rasa reads: a conversation a human has held for days stays
  whole and paused);
- **count**: when the conversation has more than ``max_events`` events, the
  oldest, down to 80 % of ``max_events`` (so that the next prune is dozens of
  turns away): whole earlier sessions first; if the current session alone is
  longer than ``max_events``, its oldest turns. The session's
  ``session_started`` stays first, and so do the events the later ones depend
  on (see :func:`_carried_events`): the latest value of every slot, the
  ``pause`` while a human has the conversation, the active form. What is kept
  then starts at a turn boundary (``action_listen``), as a new session does;
  before deleting, the kept events are replayed and must give the same slots,
  pause and form as the whole session, or that session is not cut.

Deleting happens after the turn's events are committed, in its own
transaction: a failed prune is logged and never loses a turn. Which events a
save adds is found from the conversation's newest stored event (Rasa counts
the stored events of the session, which no longer matches its tracker once
events were deleted); a tracker without that event is handled as Rasa does.

Kept trackers (``cache_events``)
--------------------------------
The processor's turn of a conversation gets the tracker the previous turn
left in this process, brought up to date with only the events stored since
(see :mod:`walletbot.rasa_compat.trackercache`); other readers read the
database as Rasa does. ``cache_events`` bounds the events kept (default
50,000; 0 turns it off).

SQLite
------
A file database gets one pooled connection per worker thread instead of a
new connection per query (SQLAlchemy 1.4 gives file SQLite a ``NullPool``),
and write-ahead logging with ``synchronous=NORMAL``: a commit no longer waits
for two fsyncs of a rollback journal. A crash of the process loses nothing;
a power cut may lose the last turns (PostgreSQL is production's store).

Saves reach only the conversations still in use: ``python -m
walletbot.rasa_compat.trackerstore [ENDPOINTS]`` applies the bounds to every
stored conversation (after lowering them, or daily for ``max_days``).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import logging
import threading
import time
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Text, Tuple, TypeVar

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActiveLoop,
    AllSlotsReset,
    ConversationPaused,
    ConversationResumed,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from walletbot.rasa_compat.trackercache import DEFAULT_CACHE_EVENTS, Kept, TrackerCache, in_turn
from walletbot.store.db import autocommit_twin, use_write_ahead_log

logger = logging.getLogger(__name__)

T = TypeVar("T")

# SQLite takes one writer at a time: one thread keeps writes from waiting on
# each other's file lock. A server database serves a few connections at once
# (SQLAlchemy's default pool holds 5).
SQLITE_THREADS = 1
SERVER_DB_THREADS = 4

# A count bound below this would leave little more than the carried slots.
MIN_MAX_EVENTS = 50
# A prune goes down to this share of max_events.
PRUNE_TO = 0.8
DAY_SECONDS = 86_400
# Cuts of an over-long session tried before giving up on cutting it.
CUT_ATTEMPTS = 3
# Ids per DELETE … WHERE id IN (…) statement.
DELETE_CHUNK = 500
# The events that switch the bot off and on again (see recent_events).
_PAUSE_SWITCHES = (ConversationPaused.type_name, ConversationResumed.type_name,
                   Restarted.type_name)
# A kept tracker longer than twice this is cut back to this many events.
DEFAULT_TURN_WINDOW = 50
MIN_TURN_WINDOW = 50


def bound(value: Any, name: str, minimum: int = 0) -> int:
    """A bound from ``endpoints.yml`` (a string once Rasa expanded ``${VAR}``): 0 is none."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"tracker_store {name} must be a whole number, not {value!r}")
    try:
        number = int(value.strip() if isinstance(value, str) else value)
    except ValueError:
        raise ValueError(f"tracker_store {name} must be a whole number (0: no bound), "
                         f"not {value!r}") from None
    if number < 0 or 0 < number < minimum:
        raise ValueError(f"tracker_store {name} must be 0 (no bound) or at least {max(minimum, 1)},"
                         f" not {number}")
    return number


class ThreadedSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` whose reads and writes run in worker threads.

    Configured like Rasa's SQL store (``endpoints.yml``)::

        tracker_store:
          type: walletbot.rasa_compat.trackerstore.ThreadedSQLTrackerStore
          url: ${TRACKER_DB_URL}
          max_events: ${TRACKER_MAX_EVENTS}   # per conversation; 0: no bound
          max_days: ${TRACKER_MAX_DAYS}       # age of kept events; 0: no bound
          cache_events: 50000                 # events of kept trackers; 0: none
          turn_window: 50                     # events a turn works on at most; 0: all
    """

    def __init__(self, *args: Any, threads: Optional[int] = None,
                 max_events: Any = None, max_days: Any = None,
                 cache_events: Any = DEFAULT_CACHE_EVENTS,
                 turn_window: Any = DEFAULT_TURN_WINDOW, **kwargs: Any) -> None:
        self.max_events = bound(max_events, "max_events", MIN_MAX_EVENTS)
        self.max_days = bound(max_days, "max_days")
        cache_size = bound(cache_events, "cache_events")
        self.turn_window = bound(turn_window, "turn_window", MIN_TURN_WINDOW)
        super().__init__(*args, **kwargs)
        if threads is None:
            threads = SQLITE_THREADS if self.engine.dialect.name == "sqlite" else SERVER_DB_THREADS
        self.threads = int(threads)
        if self.engine.dialect.name == "sqlite":
            self._tune_sqlite()
        self._executor = ThreadPoolExecutor(max_workers=self.threads,
                                            thread_name_prefix="tracker-store")
        self.cache: Optional[TrackerCache] = TrackerCache(cache_size) if cache_size else None
        # Prunes of kept conversations run after their turn, not inside it (see save).
        self._pruning: Set[Text] = set()
        self._pruning_lock = threading.Lock()
        self.background: Set["Future[Any]"] = set()

    def _tune_sqlite(self) -> None:
        """Pooled connections and write-ahead logging for a file database (see the module doc)."""
        url = self.engine.url
        if not url.database or url.database == ":memory:" or "mode=memory" in str(url):
            return
        self.engine.dispose()
        self.engine = sa.create_engine(url, poolclass=sa.pool.QueuePool,
                                       pool_size=self.threads, max_overflow=4, connect_args={"check_same_thread": False})

        @sa.event.listens_for(self.engine, "connect")
        def _pragmas(connection: Any, _: Any) -> None:
            cursor = connection.cursor()
            try:
                use_write_ahead_log(cursor)
                cursor.execute("PRAGMA synchronous=NORMAL")
            finally:
                cursor.close()

        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

    @property
    def prune_to(self) -> int:
        """How many events a count prune keeps at most."""
        return int(self.max_events * PRUNE_TO)

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    async def _retrieve(
        self, sender_id: Text, fetch_events_from_all_sessions: bool
    ) -> Optional[DialogueStateTracker]:
        if self.cache is not None and not fetch_events_from_all_sessions and in_turn(sender_id):
            return await self._in_thread(self._retrieve_kept, sender_id)
        return await self._in_thread(self._retrieve_now, sender_id,
                                     fetch_events_from_all_sessions)

    @functools.cached_property
    def _hot(self) -> "_HotStatements":
        return _HotStatements(self.SQLEvent)

    @functools.cached_property
    def _returning(self) -> bool:
        """Whether an insert can return the new ids (PostgreSQL; SQLAlchemy 1.4's SQLite cannot)."""
        return self.engine.dialect.name == "postgresql"

    @functools.cached_property
    def _hot_engine(self) -> Any:
        """The engine of a kept turn's single read and single insert (autocommit on PostgreSQL)."""
        from rasa.core.tracker_store import create_engine_kwargs

        return autocommit_twin(self.engine, **create_engine_kwargs(self.engine.url))

    def _autocommit(self) -> Any:
        """A connection of the hot path (see ``_hot_engine``)."""
        return self._hot_engine.connect()

    def _retrieve_kept(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """The turn's tracker: the kept one, brought up to date; see trackercache.

        A kept tracker is checked, and a missing one read in full, on a plain
        connection with prebuilt statements (see ``_HotStatements``); Rasa's
        reads outside a turn go through an ORM session.
        """
        assert self.cache is not None
        kept = self.cache.get(sender_id)
        if kept is not None and kept.unchanged() and kept.domain is self.domain:
            with self._autocommit() as connection:
                # One indexed read: the kept newest event and any stored after it.
                rows = connection.execute(self._hot.since, {"sender_id": sender_id,
                                                            "first_id": kept.newest_id}).all()
            if rows and (rows[0].id, rows[0].timestamp) == (kept.newest_id, kept.newest_stamp):
                if len(rows) == 1:
                    self.cache.hits += 1
                    return self._windowed(kept)
                if self._bring_up_to_date(kept, rows[1:]):
                    self.cache.partial += 1
                    return self._windowed(kept)
            # else the kept tracker's newest event is gone: events were deleted
        self.cache.misses += 1
        with self._autocommit() as connection:
            # Rasa's read of the session's events, its newest event, the
            # count and the oldest (bounds): two statements, and one when the
            # conversation is new. The turn holds the conversation's lock, so
            # nothing is written in between.
            head = connection.execute(self._hot.head, {"sender_id": sender_id}).first()
            rows = [] if head is None else connection.execute(
                self._hot.session_events, {"sender_id": sender_id}).all()
        events = [json.loads(row.data) for row in rows]
        if not (self.domain and events):
            self.cache.drop(sender_id)
            return None
        tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        if rows[-1].id == head.newest_id:  # the session holds the newest event
            kept = Kept(tracker, head.newest_id, head.newest_stamp, head.count,
                        len(tracker.events), _session_start(tracker), self.domain,
                        oldest_stamp=head.oldest_stamp)
            self.cache.put(sender_id, kept)
            return self._windowed(kept)
        self.cache.drop(sender_id)
        return tracker

    def _windowed(self, kept: Kept) -> DialogueStateTracker:
        """The kept tracker, cut back to ``turn_window`` events once it has twice as many.

        Rasa's policies, forms and action calls replay or send a turn's whole
        tracker, so without this every turn costs more than the one before.
        The cut is the one the count bound makes (:meth:`_session_cut`): the
        session's start, the events its slots, pause and form rest on, the
        latest turns, checked to rebuild the same state. Only the kept copy
        is cut; the database keeps every event (``max_events`` bounds that).
        """
        tracker = kept.tracker
        size = len(tracker.events)
        if not self.turn_window or size <= 2 * self.turn_window or size < kept.retry_cut_at:
            return tracker
        events = list(tracker.events)
        start = next((i for i, e in enumerate(events[:2]) if isinstance(e, SessionStarted)), 0)
        events = events[start:]
        keep = self._session_cut(tracker.sender_id, events, keep_at_most=self.turn_window,
                                 limit=2 * self.turn_window)
        if keep is None:  # no cut keeps the state: try again a window later
            kept.retry_cut_at = size + self.turn_window
            return tracker
        cut = DialogueStateTracker.from_events(
            tracker.sender_id, [events[i] for i in sorted(keep)], self.domain.slots)
        kept.tracker, kept.retry_cut_at = cut, 0
        self.cache.resize(tracker.sender_id, kept, len(cut.events))  # type: ignore[union-attr]
        return cut

    def _bring_up_to_date(self, kept: Kept, rows: List[Any]) -> bool:
        """Applies ``rows``, the events stored after ``kept``'s newest; False if a full read is needed."""
        if kept.session_start is not None and any(
                row.timestamp is None or row.timestamp < kept.session_start for row in rows):
            return False  # Rasa's session query would leave these out
        events = [_parse(row.data) for row in rows]
        if any(event is None or isinstance(event, SessionStarted) for event in events):
            return False  # a new session: Rasa reads from its start
        for event in events:
            kept.tracker.update(event)
        kept.newest_id, kept.newest_stamp = rows[-1].id, rows[-1].timestamp
        kept.count += len(rows)
        self.cache.resize(kept.tracker.sender_id, kept, len(kept.tracker.events))  # type: ignore[union-attr]
        return True

    def _retrieve_now(
        self, sender_id: Text, fetch_events_from_all_sessions: bool
    ) -> Optional[DialogueStateTracker]:
        # Rasa 3.6's SQLTrackerStore._retrieve, run synchronously.
        with self.session_scope() as session:
            rows = self._event_query(
                session, sender_id, fetch_events_from_all_sessions=fetch_events_from_all_sessions
            ).all()
            events = [json.loads(row.data) for row in rows]
        if self.domain and events:
            return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
        return None

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        await self._in_thread(self._save_now, tracker)

    def _prune_later(self, sender_id: Text) -> None:
        """Prunes a kept conversation in the store's threads; the turn does not wait.

        A prune replays the session to check its cut (tens of milliseconds for a
        long one) and used to make the turn that crossed the bound, and the
        next one (the kept tracker was dropped and read again whole), the
        slowest of their minute. The turn's events are committed already; the
        prune deletes only older rows, so a turn saved meanwhile is unaffected.
        One prune per conversation at a time.
        """
        with self._pruning_lock:
            if sender_id in self._pruning:
                return
            self._pruning.add(sender_id)

        def run() -> None:
            try:
                self._prune_now(sender_id, keep_kept=True)
            except Exception as error:  # the turn is stored; a later save tries again
                logger.error("could not prune a conversation's stored events: %s",
                             type(error).__name__)
            finally:
                with self._pruning_lock:
                    self._pruning.discard(sender_id)

        future = self._executor.submit(run)
        self.background.add(future)
        future.add_done_callback(self.background.discard)

    def wait_for_background(self, timeout: float = 30.0) -> None:
        """Waits for the prunes started after turns (tests, shutdown)."""
        futures.wait(list(self.background), timeout=timeout)

    async def recent_events(self, sender_id: Text, limit: int,
                            types: Optional[Sequence[str]] = None
                            ) -> Tuple[List[Dict[str, Any]], bool]:
        """The newest events of the conversation for display, and whether the bot is paused.

        What ``retrieve(...).current_state(AFTER_RESTART)["events"]`` and
        ``is_paused()`` give, without reading and replaying the whole session:
        at most ``limit`` events of the current session after its latest
        restart (oldest first), as dicts; paused when the session's latest
        pause, resume or restart is a pause (a session start unpauses, as in
        Rasa). With ``types`` (event type names, e.g. ``("user", "bot")``) only
        events of those types are read and counted. The desk polls this every
        few seconds per agent, so its cost must not grow with the conversation.
        """
        return await self._in_thread(self._recent_now, sender_id, limit,
                                     tuple(types) if types is not None else None)

    def _recent_now(self, sender_id: Text, limit: int,
                    types: Optional[Tuple[str, ...]] = None) -> Tuple[List[Dict[str, Any]], bool]:
        E = self.SQLEvent
        with self.session_scope() as session:
            mine = E.sender_id == sender_id
            # The session as Rasa's _event_query delimits it: by timestamp.
            start = session.query(sa.func.max(E.timestamp)).filter(
                mine, E.type_name == SessionStarted.type_name).scalar()
            where = [mine] if start is None else [mine, E.timestamp >= start]
            shown = where if types is None else \
                [*where, E.type_name.in_(sorted({*types, Restarted.type_name}))]
            rows = session.query(E.data).filter(*shown).order_by(E.id.desc()).limit(limit).all()
            switch = session.query(E.type_name).filter(
                *where, E.type_name.in_(_PAUSE_SWITCHES)).order_by(E.id.desc()).limit(1).scalar()
        events = [json.loads(row.data) for row in reversed(rows)]
        restarts = [i for i, event in enumerate(events) if event.get("event") == Restarted.type_name]
        if restarts:
            events = events[restarts[-1] + 1:]
        return events, switch == ConversationPaused.type_name

    # -- saving ------------------------------------------------------------------

    def _save_now(self, tracker: DialogueStateTracker) -> None:
        # Rasa 3.6's SQLTrackerStore.save without stream_events (done on the loop),
        # the new events found from the newest stored one; then the bounds.
        sender_id = tracker.sender_id
        kept = self.cache.get(sender_id) if self.cache is not None else None
        turn = kept is not None and kept.tracker is tracker
        if turn:
            count, oldest = self._save_turn(kept)
            new_count = 0
        else:  # another reader's tracker: the kept one is brought up to date later
            count, oldest, new_count = self._save_any(tracker)
        too_many = bool(self.max_events) and count + new_count > self.max_events
        too_old = bool(self.max_days) and oldest is not None and oldest < self._cutoff()
        if (too_many or too_old) and turn and self.cache.get(sender_id) is kept:  # type: ignore[union-attr]
            self._prune_later(sender_id)
        elif too_many or too_old:
            try:
                self._prune_now(sender_id)
            except Exception as error:  # the turn is stored; the next save tries again
                logger.error("could not prune a conversation's stored events: %s",
                             type(error).__name__)

    def _save_turn(self, kept: Kept) -> Tuple[int, Optional[float]]:
        """Stores what the processor's turn added to the kept tracker; its count and oldest.

        Nothing is read first: the turn read the conversation's newest event
        under the conversation's lock (every writer holds it), so the events
        after the kept length are exactly the new ones.
        """
        tracker = kept.tracker
        new = list(itertools.islice(tracker.events, kept.length, None))
        if new:
            rows = [_row(tracker.sender_id, e) for e in new]
            if self._returning:
                # One statement, atomic by itself: the rows and their new ids back.
                with self._autocommit() as connection:
                    sql, parameters = self._hot.insert_returning(rows, connection.dialect)
                    stored = connection.exec_driver_sql(sql, parameters).all()
                newest = max(stored, key=lambda row: row.id)
            else:
                with self.engine.begin() as connection:  # one transaction, committed on leaving
                    connection.execute(self._hot.insert, rows)
                    newest = connection.execute(self._hot.newest,
                                                {"sender_id": tracker.sender_id}).one()
            kept.newest_id, kept.newest_stamp = newest.id, newest.timestamp
        kept.count += len(new)
        if kept.oldest_stamp is None and new:
            kept.oldest_stamp = new[0].timestamp
        if any(isinstance(event, SessionStarted) for event in new):
            self.cache.drop(tracker.sender_id)  # type: ignore[union-attr]  # Rasa reads from it on
        else:
            self.cache.resize(tracker.sender_id, kept, len(tracker.events))  # type: ignore[union-attr]
        return kept.count, kept.oldest_stamp

    def _save_any(self, tracker: DialogueStateTracker) -> Tuple[int, Optional[float], int]:
        """Stores a tracker's events after the conversation's newest stored one."""
        E = self.SQLEvent
        sender_id = tracker.sender_id
        with self.session_scope() as session:
            # Two indexed reads: the conversation's size and its oldest and newest events.
            count, oldest_id, newest_id = session.query(
                sa.func.count(E.id), sa.func.min(E.id), sa.func.max(E.id)
            ).filter(E.sender_id == sender_id).one()
            ends = {row.id: row for row in session.query(E.id, E.type_name, E.timestamp, E.data)
                    .filter(E.id.in_([oldest_id, newest_id]))} if count else {}
            new = self._new_events(session, tracker, ends.get(newest_id)) if count \
                else list(tracker.events)
            if new:
                session.execute(sa.insert(E.__table__), [_row(sender_id, e) for e in new])
            session.commit()
        oldest = ends[oldest_id].timestamp if oldest_id in ends else \
            (new[0].timestamp if new else None)
        return count, oldest, len(new)

    def _new_events(self, session: Any, tracker: DialogueStateTracker,
                    newest: Optional[Any]) -> List[Event]:
        """The tracker's events after the conversation's newest stored one.

        Rasa skips as many of the tracker's events as the session has stored,
        which double-stores events once some were deleted (a tracker saved
        again after a prune) or when the tracker holds earlier sessions too.
        Without the newest stored event in the tracker: Rasa's count.
        """
        events = list(tracker.events)
        if newest is not None:
            stamp = json.loads(newest.data).get("timestamp")
            for index in range(len(events) - 1, -1, -1):
                event = events[index]
                if event.type_name == newest.type_name and event.timestamp == stamp:
                    return events[index + 1:]
        stored = self._event_query(session, tracker.sender_id,
                                   fetch_events_from_all_sessions=False).count()
        return events[stored:]

    # -- bounds ------------------------------------------------------------------

    def _cutoff(self) -> float:
        return time.time() - self.max_days * DAY_SECONDS

    def prune(self, sender_id: Text) -> int:
        """Applies both bounds to one conversation now; returns how many events went."""
        return self._prune_now(sender_id)

    async def prune_all(self) -> Dict[str, int]:
        """Applies both bounds to every stored conversation (also those no longer saved)."""
        senders = await self.keys()
        removed = {"conversations": 0, "events": 0}
        for sender_id in senders:
            gone = await self._in_thread(self._prune_now, sender_id)
            removed["conversations"] += bool(gone)
            removed["events"] += gone
        return removed

    def _prune_now(self, sender_id: Text, keep_kept: bool = False) -> int:
        """Applies both bounds to one conversation; returns how many events went.

        ``keep_kept``: a kept tracker stays kept (its events in memory are the
        session's newest, which a prune never deletes), with its count and
        oldest event read again; otherwise it is dropped and read whole next time.
        """
        E = self.SQLEvent
        if not (self.max_events or self.max_days):
            return 0
        with self.session_scope() as session:
            mine = E.sender_id == sender_id
            start = session.query(sa.func.max(E.timestamp)).filter(
                mine, E.type_name == SessionStarted.type_name).scalar()
            # Rasa's current session: from its latest session start on (all, without one).
            earlier = sa.or_(E.timestamp < start, E.timestamp.is_(None)) if start is not None \
                else sa.false()
            removed = 0
            if self.max_days and start is not None:
                removed += session.query(E).filter(mine, earlier, E.timestamp < self._cutoff()) \
                    .delete(synchronize_session=False)
            total = session.query(sa.func.count(E.id)).filter(mine).scalar()
            if self.max_events and total > self.max_events:
                current = total if start is None else \
                    session.query(sa.func.count(E.id)).filter(mine, E.timestamp >= start).scalar()
                if current <= self.prune_to:
                    removed += self._drop_earlier_sessions(session, sender_id, earlier)
                else:
                    removed += session.query(E).filter(mine, earlier) \
                        .delete(synchronize_session=False)
                    if current > self.max_events:
                        removed += self._cut_session(session, sender_id)
            session.commit()
            if removed and keep_kept and self.cache is not None:
                count, oldest = session.query(sa.func.count(E.id), sa.func.min(E.timestamp)) \
                    .filter(mine).one()
        if removed and self.cache is not None:
            kept = self.cache.get(sender_id) if keep_kept else None
            if kept is None:
                self.cache.drop(sender_id)
            else:
                kept.count, kept.oldest_stamp = int(count), oldest
        if removed:
            logger.info("pruned %d stored events of a conversation (max_events=%d, max_days=%d)",
                        removed, self.max_events, self.max_days)
        return removed

    def _drop_earlier_sessions(self, session: Any, sender_id: Text, earlier: Any) -> int:
        """Deletes the oldest whole sessions until at most ``prune_to`` events are left."""
        E = self.SQLEvent
        mine = E.sender_id == sender_id
        # The oldest id that may stay: the prune_to-th newest event.
        floor = session.query(E.id).filter(mine).order_by(E.id.desc()) \
            .offset(self.prune_to - 1).limit(1).scalar()
        cut = session.query(sa.func.min(E.id)).filter(
            mine, E.type_name == SessionStarted.type_name, E.id >= floor).scalar()
        return session.query(E).filter(mine, earlier, E.id < (cut or floor)) \
            .delete(synchronize_session=False)

    def _cut_session(self, session: Any, sender_id: Text) -> int:
        """Shortens the current session to ``prune_to`` events; see the module's doc."""
        E = self.SQLEvent
        # Rasa's query of the session (same rows, same order), as plain tuples.
        rows = self._event_query(session, sender_id, fetch_events_from_all_sessions=False) \
            .with_entities(E.id, E.data).all()
        events = [_parse(row.data) for row in rows]
        keep = self._session_cut(sender_id, events)
        if keep is None:
            logger.warning("not shortening an over-long session (%d events): no cut keeps its "
                           "state", len(rows))
            return 0
        doomed = [row.id for index, row in enumerate(rows) if index not in keep]
        for at in range(0, len(doomed), DELETE_CHUNK):
            session.query(E).filter(E.id.in_(doomed[at:at + DELETE_CHUNK])) \
                .delete(synchronize_session=False)
        return len(doomed)

    def _session_cut(self, sender_id: Text, events: Sequence[Optional[Event]],
                     keep_at_most: Optional[int] = None,
                     limit: Optional[int] = None) -> Optional[Set[int]]:
        """Indices of the events to keep: the start, the carried events, the latest turns.

        The cut is at the earliest turn boundary that leaves at most
        ``keep_at_most`` events (default ``prune_to``; inside the last turn if
        it alone is longer). If the kept events do not rebuild the session's
        state (a revert reaching back past the cut), earlier boundaries are
        tried, up to ``limit`` events (default ``max_events``).
        """
        prune_to = self.prune_to if keep_at_most is None else keep_at_most
        max_events = self.max_events if limit is None else limit
        head = 1 if events and isinstance(events[0], SessionStarted) else 0
        size = len(events)

        def keep_from(cut: int) -> Set[int]:
            return set(range(head)) | _carried_events(events, head, cut) | set(range(cut, size))

        boundaries = [i for i in range(head + 1, size) if _turn_starts(events, i)]
        first: Optional[int] = None
        for cut in (i for i in boundaries if head + size - i <= prune_to):
            keep = keep_from(cut)
            if len(keep) <= prune_to:
                first = cut
                break
        if first is None:  # the last turn alone is too long: cut inside it
            first = max(head + 1, size - prune_to + head)
            keep = keep_from(first)
            first = min(size - 1, first + max(0, len(keep) - prune_to))
            keep = keep_from(first)
        whole = _state(sender_id, events, self.domain.slots)
        tries = 0
        for cut in [first] + [i for i in reversed(boundaries) if i < first]:
            keep = keep if cut == first else keep_from(cut)
            if len(keep) > max_events:
                break
            if _state(sender_id, [events[i] for i in sorted(keep)], self.domain.slots) == whole:
                return keep
            tries += 1
            if tries >= CUT_ATTEMPTS:
                break
        return None


def threaded_store(store: Any) -> Optional[ThreadedSQLTrackerStore]:
    """This project's store inside Rasa's wrappers (fail-safe, awaitable), or None."""
    for _ in range(5):
        if isinstance(store, ThreadedSQLTrackerStore):
            return store
        store = getattr(store, "_tracker_store", None) or getattr(store, "tracker_store", None)
        if store is None:
            return None
    return None


class _HotStatements:
    """The statements of a kept conversation's turn, built once per store.

    Through an ORM session and a freshly built query, the turn's two reads
    and its write cost 1.3 ms of Python a turn (SQLite, measured in-process);
    as Core statements built once and run on a plain connection, 0.2 ms. The
    SQL is the same: the newest event of a conversation, the events from an
    id on, and Rasa's insert.
    """

    def __init__(self, E: Any) -> None:
        sender = E.sender_id == sa.bindparam("sender_id")
        self.newest = sa.select(E.id, E.timestamp).where(sender).order_by(E.id.desc()).limit(1)
        self.since = sa.select(E.id, E.timestamp, E.data) \
            .where(sender, E.id >= sa.bindparam("first_id")).order_by(E.id)
        # A conversation's newest event, with how many it has and the oldest one's
        # time (no row: a new conversation).
        self.head = sa.select(
            E.id.label("newest_id"), E.timestamp.label("newest_stamp"),
            sa.select(sa.func.count(E.id)).where(sender).scalar_subquery().label("count"),
            sa.select(E.timestamp).where(sender).order_by(E.id).limit(1).scalar_subquery()
            .label("oldest_stamp"),
        ).where(sender).order_by(E.id.desc()).limit(1)
        # Rasa 3.6's SQLTrackerStore._event_query for the latest session.
        session_start = sa.select(sa.func.max(E.timestamp)) \
            .where(sender, E.type_name == SessionStarted.type_name).scalar_subquery()
        self.session_events = sa.select(E.id, E.timestamp, E.data).where(
            sender, sa.or_(E.timestamp >= session_start, session_start.is_(None))).order_by(E.id)
        self.insert = sa.insert(E.__table__)
        self._returned = (E.id, E.timestamp)
        self._returning_sql: Dict[Tuple[str, int], str] = {}

    def insert_returning(self, rows: List[Dict[str, Any]], dialect: Any) -> Tuple[str, Dict[str, Any]]:
        """One multi-row insert of ``rows`` returning their ids and timestamps: SQL and parameters.

        SQLAlchemy 1.4 compiles a multi-row ``values()`` insert anew on every
        execution (under load, a tenth of a replica's busy time), so the
        driver's SQL is compiled once per dialect and row count and the rows
        go in as its named parameters.
        """
        key = (dialect.name, len(rows))
        sql = self._returning_sql.get(key)
        if sql is None:
            columns = list(rows[0])
            statement = self.insert.values([
                {column: sa.bindparam(f"{column}_{i}") for column in columns}
                for i in range(len(rows))]).returning(*self._returned)
            sql = str(statement.compile(dialect=dialect))
            if len(rows) <= 64:  # a turn adds a handful of events; a rare long one is not kept
                sql = self._returning_sql.setdefault(key, sql)
        return sql, {f"{column}_{i}": value
                     for i, row in enumerate(rows) for column, value in row.items()}


def _row(sender_id: Text, event: Event) -> Dict[str, Any]:
    """An ``events`` row as Rasa's SQL store writes it."""
    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }


def _session_start(tracker: DialogueStateTracker) -> Optional[float]:
    """Timestamp of the tracker's latest ``session_started`` (None without one)."""
    for event in reversed(tracker.events):
        if isinstance(event, SessionStarted):
            return event.timestamp
    return None


@functools.lru_cache(maxsize=None)
def _event_class(type_name: str) -> Optional[type]:
    # Rasa looks the class up among all of Event's subclasses for every event.
    return Event.resolve_by_type(type_name)


def _parse(data: str) -> Optional[Event]:
    """``Event.from_parameters(json.loads(data))``, with the event classes looked up once."""
    parameters = json.loads(data)
    name = parameters.get("event")
    cls = _event_class(name) if name is not None else None
    return cls._from_parameters(parameters) if cls is not None else None  # type: ignore[attr-defined]


def _turn_starts(events: Sequence[Optional[Event]], index: int) -> bool:
    """Whether a user turn starts at ``index``: its ``action_listen``, or a message without one."""
    event = events[index]
    if isinstance(event, ActionExecuted):
        return event.action_name == ACTION_LISTEN_NAME
    previous = events[index - 1]
    return isinstance(event, UserUttered) and not (
        isinstance(previous, ActionExecuted) and previous.action_name == ACTION_LISTEN_NAME)


def _carried_events(events: Sequence[Optional[Event]], head: int, cut: int) -> Set[int]:
    """Indices, among ``events[head:cut]`` (about to go), of those the state at ``cut`` rests on.

    The latest ``SlotSet`` of each slot (since the last reset), the ``pause``
    while paused, the active loop (and its rejection). Reverted events do not
    count (Rasa's ``applied_events``).
    """
    index_of = {id(event): i for i, event in enumerate(events) if event is not None}
    past = DialogueStateTracker("prune", [])
    past.events.extend(event for event in events[:cut] if event is not None)
    slots: Dict[str, int] = {}
    paused: Optional[int] = None
    loop: Optional[int] = None
    rejected: Optional[int] = None
    for event in past.applied_events():
        at = index_of[id(event)]
        if isinstance(event, SlotSet):
            slots[event.key] = at
        elif isinstance(event, AllSlotsReset):
            slots.clear()
        elif isinstance(event, ConversationPaused):
            paused = at
        elif isinstance(event, ConversationResumed):
            paused = None
        elif isinstance(event, ActiveLoop):
            loop, rejected = (at if event.name else None), None
        elif isinstance(event, ActionExecutionRejected):
            rejected = at if loop is not None else None
        elif isinstance(event, ActionExecuted) and loop is not None \
                and event.action_name == getattr(events[loop], "name", None):
            rejected = None
    carried = set(slots.values()) | {i for i in (paused, loop, rejected) if i is not None}
    return {i for i in carried if head <= i < cut}


def _state(sender_id: Text, events: Iterable[Optional[Event]], slots: Any) -> Any:
    """What a rebuilt tracker must keep: slots, pause, active loop."""
    tracker = DialogueStateTracker.from_events(
        sender_id, [event for event in events if event is not None], slots)
    loop = tracker.active_loop
    return (tracker.current_slot_values(), tracker.is_paused(),
            (loop.name, loop.rejected) if loop else None)


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m walletbot.rasa_compat.trackerstore [ENDPOINTS]``: prune every conversation.

    Uses the ``tracker_store`` of ``ENDPOINTS`` (default ``endpoints.yml``;
    production: ``config/prod/endpoints.yml``) and the bot's ``domain.yml``.
    Saves prune their own conversation; this also reaches conversations that
    are no longer saved (run it daily from cron for ``max_days``).
    """
    import sys

    from rasa.core.tracker_store import TrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.utils.endpoints import read_endpoint_config

    from walletbot.settings import PROJECT_ROOT

    args = sys.argv[1:] if argv is None else argv
    endpoints = args[0] if args else str(PROJECT_ROOT / "endpoints.yml")
    config = read_endpoint_config(endpoints, "tracker_store")
    store: Any = TrackerStore.create(config, Domain.load(str(PROJECT_ROOT / "domain.yml")))
    store = threaded_store(store)
    if store is None:
        print(f"{endpoints}: tracker_store is not a ThreadedSQLTrackerStore", file=sys.stderr)
        return 2
    try:
        removed = asyncio.run(store.prune_all())
    finally:
        store.engine.dispose()
    print(f"pruned {removed['events']} events of {removed['conversations']} conversations "
          f"(max_events={store.max_events}, max_days={store.max_days})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
