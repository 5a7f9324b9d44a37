"""Tracker copies and applied events without replaying the whole conversation.

Two tracker operations of Rasa 3.6 walk every event of the conversation, and
a turn calls them several times:

- ``DialogueStateTracker.copy()`` builds a fresh tracker and replays every
  event onto it (``travel_back_in_time(inf)``). The processor copies the
  tracker before *every* action it runs (``MessageProcessor._run_action``:
  the copy gets the prediction's events, so a rejected action can drop them),
  so an FAQ turn (answer, listen) replays the conversation twice and a lookup
  with its form four to six times.
- ``DialogueStateTracker.applied_events()`` folds every event into the list
  of those not undone by a revert, a restart or a loop's own undo. The
  processor asks for it twice before a turn starts (is the tracker empty? has
  the session expired, via ``get_last_event_for``), and RulePolicy's checks
  ask again.

With 20 turns in the conversation these were about a fifth of a turn's
interpreter time in-process (cProfile, FAQ turns, bench/RESULTS.md).

**Copy.** A tracker's state (slots, latest message and action, active loop,
pause, follow-up action) is by Rasa's own rule re-creatable by replaying its
events: every change goes through ``Event.apply_to``. So the copy is built
from the state instead: the same event objects in a new deque, a shallow copy
of each slot (value and whether it was set), the latest message and bot
utterance (the same event objects the replay would set, or a fresh empty one
as the replay's reset makes, with what later events wrote into it), and copies of what Rasa edits in place (the
active loop, the latest action). The copy has exactly the attributes of
Rasa's copy and their values, including what ``init_copy`` leaves unset
(model and assistant id, sender source). Trackers where a replay may not give
the same state are copied by Rasa as before: a bounded event history (events
may have been dropped), a tracker without a domain's slots, a subclass.

**Applied events.** The fold is a left fold over the events whose only other
input is the names of the loops activated anywhere in the conversation. The
tracker keeps the fold's result with the number of events it covers; when
the same deque has only grown (same first event, same event at the old end)
and the new events activate no loop not seen before, the fold goes on from
there over the new events only. Anything else folds from the first event, as
Rasa does. Every call returns a new list, as Rasa's does.
"""

from __future__ import annotations

import copy as copy_module
import dataclasses
import functools
import time
from collections import deque
from typing import Any, FrozenSet, List, Optional

_installed = False

# What DialogueStateTracker.__init__ sets, checked at install: a Rasa that
# adds state would make the copy incomplete, so it is then not installed.
TRACKER_ATTRIBUTES = frozenset({
    "_max_event_history", "events", "sender_id", "slots", "sender_source",
    "is_rule_tracker", "_paused", "followup_action", "latest_action", "latest_message",
    "latest_bot_utterance", "active_loop", "model_id", "assistant_id",
})
_MEMO = "_walletbot_applied"


@dataclasses.dataclass
class _Applied:
    events: Any  # the deque the fold ran over (identity)
    length: int
    first: Any
    last: Any
    loop_names: FrozenSet[str]
    applied: List[Any]


@functools.lru_cache(maxsize=None)
def _plain(cls: type) -> bool:
    """Whether ``copy.copy`` of a ``cls`` instance is just a new instance with the same ``__dict__``."""
    return (not hasattr(cls, "__copy__")
            # ABC declares empty __slots__; only slots that hold values matter.
            and not any(vars(k).get("__slots__") for k in cls.__mro__)
            and not hasattr(cls, "__getstate__") and not hasattr(cls, "__setstate__")
            and cls.__reduce_ex__ is object.__reduce_ex__ and cls.__reduce__ is object.__reduce__)


def _slot_copy(slot: Any) -> Any:
    """``copy.copy(slot)``, without the copy protocol's dispatch for plain slot classes."""
    cls = type(slot)
    if not _plain(cls):
        return copy_module.copy(slot)
    new = cls.__new__(cls)
    new.__dict__.update(slot.__dict__)
    return new


def _holds(events: Any, item: Any) -> bool:
    """Whether ``item`` is one of ``events`` (by identity; the latest ones are near the end)."""
    for event in reversed(events):
        if event is item:
            return True
    return False


def _placeholder(message: Any) -> Any:
    """The replay's empty latest message: a fresh one that the same events filled in.

    Rasa's reset puts a new ``UserUttered.empty()`` there, and events after it
    edit it in place (``EntitiesAdded``, ``DefinePrevUserUtteredFeaturization``),
    on the tracker and on a replay alike.
    """
    fresh = copy_module.copy(message)
    fresh.entities = list(message.entities)
    fresh.timestamp = time.time()
    return fresh


def state_copy(original: Any) -> Any:
    """Wraps ``DialogueStateTracker.copy`` with the copy described above."""
    from rasa.shared.constants import DEFAULT_SENDER_ID
    from rasa.shared.core.events import BotUttered
    from rasa.shared.core.trackers import AnySlotDict, DialogueStateTracker

    def copy(self: Any) -> Any:
        if (type(self) is not DialogueStateTracker or self._max_event_history is not None
                or isinstance(self.slots, AnySlotDict)):
            return original(self)
        events = self.events
        latest = self.latest_message
        bot = self.latest_bot_utterance
        new = DialogueStateTracker.__new__(DialogueStateTracker)
        new.__dict__.update(
            _max_event_history=None,
            events=deque(events),
            sender_id=self.sender_id or DEFAULT_SENDER_ID,
            slots={slot.name: _slot_copy(slot) for slot in self.slots.values()},
            sender_source=None,
            is_rule_tracker=self.is_rule_tracker,
            _paused=self._paused,
            followup_action=self.followup_action,
            latest_action=None if self.latest_action is None else dict(self.latest_action),
            latest_message=latest if _holds(events, latest) else _placeholder(latest),
            latest_bot_utterance=bot if _holds(events, bot) else BotUttered.empty(),
            active_loop=None if self.active_loop is None else dataclasses.replace(self.active_loop),
            model_id=None,
            assistant_id=None,
        )
        return new

    copy.__wrapped__ = original  # type: ignore[attr-defined]
    return copy


def _loop_names(events: Any) -> FrozenSet[str]:
    from rasa.shared.core.events import ActiveLoop

    return frozenset(event.name for event in events if isinstance(event, ActiveLoop) and event.name)


def _fold(tracker: Any, events: Any, loop_names: FrozenSet[str], applied: List[Any]) -> List[Any]:
    """Rasa 3.6's ``applied_events`` loop, from ``applied`` on over ``events``."""
    from rasa.shared.core.events import (
        ActionExecuted,
        ActionReverted,
        Restarted,
        SessionStarted,
        UserUtteranceReverted,
        UserUttered,
    )

    for event in events:
        if isinstance(event, (Restarted, SessionStarted)):
            applied = []
        elif isinstance(event, ActionReverted):
            tracker._undo_till_previous(ActionExecuted, applied)
        elif isinstance(event, UserUtteranceReverted):
            tracker._undo_till_previous(UserUttered, applied)
            tracker._undo_till_previous(ActionExecuted, applied)
        elif (
            isinstance(event, ActionExecuted)
            and event.action_name in loop_names
            and not tracker._first_loop_execution_or_unhappy_path(event.action_name, applied)
        ):
            tracker._undo_till_previous_loop_execution(event.action_name, applied)
        else:
            applied.append(event)
    return applied


def applied_events(original: Any) -> Any:
    """Wraps ``DialogueStateTracker.applied_events`` with the memo described above."""

    def applied(self: Any) -> List[Any]:
        events = self.events
        length = len(events)
        memo: Optional[_Applied] = self.__dict__.get(_MEMO)
        if (memo is not None and memo.events is events and length >= memo.length
                and (memo.length == 0 or (events[0] is memo.first
                                          and events[memo.length - 1] is memo.last))):
            new = [events[i] for i in range(memo.length, length)]
            names = _loop_names(new)
            if names <= memo.loop_names:
                memo.applied = _fold(self, new, memo.loop_names, memo.applied)
                memo.length = length
                if new:
                    memo.last = new[-1]
                return list(memo.applied)
        names = _loop_names(events)
        result = _fold(self, events, names, [])
        self.__dict__[_MEMO] = _Applied(events, length, events[0] if length else None,
                                        events[-1] if length else None, names, result)
        return list(result)

    applied.__wrapped__ = original  # type: ignore[attr-defined]
    return applied


def install() -> None:
    """Patches both into Rasa's DialogueStateTracker. Idempotent.

    Not installed when the tracker's attributes are not the ones the copy
    knows (another Rasa release): Rasa's own methods stay then.
    """
    global _installed
    if _installed:
        return
    from rasa.shared.core.trackers import DialogueStateTracker

    if set(vars(DialogueStateTracker("probe", []))) != TRACKER_ATTRIBUTES:
        return
    DialogueStateTracker.copy = state_copy(DialogueStateTracker.copy)  # type: ignore[assignment]
    DialogueStateTracker.applied_events = applied_events(  # type: ignore[assignment]
        DialogueStateTracker.applied_events)
    _installed = True
