"""Rasa's SQL tracker store with its database work off the event loop.

Rasa 3.6's ``SQLTrackerStore`` declares ``async`` methods but runs every query,
the JSON decoding of every event and the commit inline: each turn blocks the
Rasa server's event loop twice (read at the start, write at the end), and
with PostgreSQL that includes the round trips to the database server. While
it waits, no other user's message is parsed or answered. This subclass runs
the same database work in a small thread pool; the tables, the queries and
what is stored are Rasa's own, so the store stays interchangeable with
``type: SQL`` (same ``events`` table, same rows).

Order within one conversation is unchanged: the processor awaits each call
under the conversation's lock, so a conversation never has two calls in
flight. Event brokers are still fed on the event loop, before the write.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional, Text, TypeVar

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

logger = logging.getLogger(__name__)

T = TypeVar("T")

# SQLite takes one writer at a time: one thread keeps writes from waiting on
# each other's file lock. A server database serves a few connections at once
# (SQLAlchemy's default pool holds 5).
SQLITE_THREADS = 1
SERVER_DB_THREADS = 4


class ThreadedSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` whose reads and writes run in worker threads.

    Configured like Rasa's SQL store (``endpoints.yml``)::

        tracker_store:
          type: walletbot.rasa_compat.trackerstore.ThreadedSQLTrackerStore
          url: ${TRACKER_DB_URL}
    """

    def __init__(self, *args: Any, threads: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if threads is None:
            threads = SQLITE_THREADS if self.engine.dialect.name == "sqlite" else SERVER_DB_THREADS
        self.threads = int(threads)
        self._executor = ThreadPoolExecutor(max_workers=self.threads,
                                            thread_name_prefix="tracker-store")

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    async def _retrieve(
        self, sender_id: Text, fetch_events_from_all_sessions: bool
    ) -> Optional[DialogueStateTracker]:
        return await self._in_thread(self._retrieve_now, sender_id,
                                     fetch_events_from_all_sessions)

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

    def _save_now(self, tracker: DialogueStateTracker) -> None:
        # Rasa 3.6's SQLTrackerStore.save without stream_events (done on the loop).
        with self.session_scope() as session:
            for event in self._additional_events(session, tracker):
                data = event.as_dict()
                session.add(self.SQLEvent(
                    sender_id=tracker.sender_id,
                    type_name=event.type_name,
                    timestamp=data.get("timestamp"),
                    intent_name=data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
                    action_name=data.get("name"),
                    data=json.dumps(data),
                ))
            session.commit()
