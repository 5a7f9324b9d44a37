"""Recently used trackers kept in the Rasa process, so a turn no longer rebuilds the whole history.

Rasa rebuilds a conversation's tracker from every stored event of its session
on every turn (an SQL read, JSON decoding and a replay of each event), so a
turn costs more the longer the conversation is: about 1.2 ms more per turn
already in the conversation (bench/RESULTS.md). The tracker store
(``ThreadedSQLTrackerStore``) keeps each conversation's tracker after a turn;
the next turn of that conversation, under its lock, asks the database only
for the conversation's size and newest event id, and then

- **hit**: nothing was stored since: the kept tracker is the turn's tracker;
- **newer events** (another replica's turn, the desk's relay): only the
  events stored after the kept tracker's newest one are read and applied;
- anything else (events deleted, a new session, a tracker changed without
  being saved, another model's domain): the whole session is read, as Rasa
  reads it.

Only the processor's own turn (``MessageProcessor.handle_message``, which
``Agent.handle_message`` runs under the conversation's lock) and writers that
hold that lock the same way (``rasa_compat.agent.locked_turn``: a message
stored while an agent has the conversation, the desk's replies and resolve)
are handed the kept object: it is mutated and saved before the lock goes. Every other
reader (the HTTP API, the desk, a payload check) gets a tracker of its own,
read from the database as before, so nobody else ever sees a turn's tracker
half-way. ``install()`` patches the processor to mark its turns
(a context variable, so concurrent turns of other conversations are apart).

The cache is bounded by the number of events it holds (least recently used
conversations go first); ``cache_events: 0`` in ``endpoints.yml`` turns it
off.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Text

# The conversation whose turn the current task runs, under its lock.
_TURN: contextvars.ContextVar[Optional[Text]] = contextvars.ContextVar(
    "walletbot_turn", default=None)

DEFAULT_CACHE_EVENTS = 50_000

_installed = False


def in_turn(sender_id: Text) -> bool:
    """Whether the running task is the processor's locked turn of this conversation."""
    return _TURN.get() == sender_id


@contextlib.contextmanager
def turn_of(sender_id: Text) -> Iterator[None]:
    """Marks the code inside as the locked turn of ``sender_id``."""
    token = _TURN.set(sender_id)
    try:
        yield
    finally:
        _TURN.reset(token)


@dataclass
class Kept:
    """A conversation's tracker and the stored events it reflects."""

    tracker: Any  # DialogueStateTracker
    newest_id: int  # id of the newest stored event of the conversation
    newest_stamp: Optional[float]  # and its timestamp (SQLite may reuse a deleted id)
    count: int  # stored events of the conversation, all sessions (as far as this process knows)
    length: int  # len(tracker.events) when it last matched the store
    session_start: Optional[float]  # timestamp of the session's SessionStarted
    domain: Any  # the domain its slots came from
    oldest_stamp: Optional[float] = None  # timestamp of the oldest stored event (max_days)
    retry_cut_at: int = 0  # no window cut before the tracker has this many events

    def unchanged(self) -> bool:
        """The tracker holds exactly what was stored (no unsaved events)."""
        return len(self.tracker.events) == self.length


class TrackerCache:
    """Kept trackers by conversation, least recently used first out, bounded by events."""

    def __init__(self, max_events: int = DEFAULT_CACHE_EVENTS) -> None:
        self.max_events = max_events
        self._kept: "OrderedDict[Text, Kept]" = OrderedDict()
        self._events = 0
        # The store's worker threads (several with PostgreSQL) share the cache.
        self._lock = threading.Lock()
        self.hits = self.partial = self.misses = 0

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def events(self) -> int:
        return self._events

    def get(self, sender_id: Text) -> Optional[Kept]:
        with self._lock:
            kept = self._kept.get(sender_id)
            if kept is not None:
                self._kept.move_to_end(sender_id)
            return kept

    def put(self, sender_id: Text, kept: Kept) -> None:
        if kept.length > self.max_events:
            self.drop(sender_id)
            return
        with self._lock:
            old = self._kept.pop(sender_id, None)
            if old is not None:
                self._events -= old.length
            self._kept[sender_id] = kept
            self._events += kept.length
            while self._events > self.max_events and self._kept:
                _, gone = self._kept.popitem(last=False)
                self._events -= gone.length

    def resize(self, sender_id: Text, kept: Kept, length: int) -> None:
        """Records that ``kept`` (still the conversation's entry) now has ``length`` events."""
        with self._lock:
            if self._kept.get(sender_id) is kept:
                self._events += length - kept.length
            kept.length = length
        if self._events > self.max_events:
            self.put(sender_id, kept)

    def drop(self, sender_id: Text) -> None:
        with self._lock:
            old = self._kept.pop(sender_id, None)
            if old is not None:
                self._events -= old.length

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._events = 0


def install() -> None:
    """Marks the processor's turns, so the tracker store may hand them the kept tracker."""
    global _installed
    if _installed:
        return
    from rasa.core.processor import MessageProcessor

    MessageProcessor.handle_message = _marked(  # type: ignore[assignment]
        MessageProcessor.handle_message)
    _installed = True


def _marked(original: Any) -> Any:
    async def handle_message(self: Any, message: Any) -> Any:
        # Agent.handle_message calls this, and only this, under the conversation's lock.
        with turn_of(message.sender_id):
            return await original(self, message)

    handle_message.__wrapped__ = original  # type: ignore[attr-defined]
    return handle_message
