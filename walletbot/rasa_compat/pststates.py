"""Dialogue states extended from the previous prediction instead of rebuilt from the first event.

Before every prediction RulePolicy asks for the states of the whole tracker
(``Domain.states_for_tracker_history``): it replays every applied event onto a
fresh tracker and builds a state before each action, so one turn (three or
four predictions, each over a tracker one or two events longer) cost a fifth
of the Rasa process's CPU in bench/pyspy_profile.py --gil, the largest part of
a turn. The tracker a turn works on is the same object from prediction to
prediction (and, with kept trackers, from turn to turn), so this keeps, on
the tracker, the replayed tracker and the states built so far, and for a
longer tracker only replays the new events and builds their states.

The states must be exactly Rasa's, so anything that makes Rasa's replay differ
from "the old applied events plus the new ones" means a full rebuild, as
before: a restart or new session, a reverted action or user message, a loop
(form) action or activation (Rasa may undo a loop's earlier steps), an event
that is not new (the tracker's events changed, not just grew), another domain
or other arguments, and ``ignore_rule_only_turns`` (ML policies' states,
which look back across turns). Callers get their own copy of the states
(Rasa edits the last state in place to choose text or intent).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Text, Tuple

_installed = False


@functools.lru_cache(maxsize=None)
def _replay_breakers() -> Tuple[type, ...]:
    """Events after which Rasa's applied events are not the previous ones plus the new."""
    from rasa.shared.core.events import (
        ActionReverted,
        ActiveLoop,
        Restarted,
        SessionStarted,
        UserUtteranceReverted,
    )

    return (Restarted, SessionStarted, ActionReverted, UserUtteranceReverted, ActiveLoop)


@dataclass
class _Memo:
    key: Tuple[Any, ...]
    length: int  # events of the tracker covered
    last: Any  # the tracker's last covered event (identity: the events only grew)
    replay: Any  # a tracker with every covered applied event applied
    states: List[Dict[Text, Any]]  # one per action, without the final state
    loops: frozenset  # loop names seen (a new one may undo earlier steps)


def _copy(states: List[Dict[Text, Any]]) -> List[Dict[Text, Any]]:
    # States are dicts of sub-state dicts of immutable values; Rasa edits both levels.
    return [{key: dict(sub) if isinstance(sub, dict) else sub for key, sub in state.items()}
            for state in states]


def _state(domain: Any, replayed: Any, omit_unset_slots: bool) -> Dict[Text, Any]:
    """The state Rasa builds for a prior tracker (``states_for_tracker_history``'s own call)."""
    return domain._clean_state(domain.get_active_state(replayed, omit_unset_slots=omit_unset_slots))


def _breaks_replay(event: Any, loops: frozenset) -> bool:
    from rasa.shared.core.events import ActionExecuted

    if isinstance(event, _replay_breakers()):
        return True
    return isinstance(event, ActionExecuted) and event.action_name in loops


def states_for_tracker_history(original: Any) -> Any:
    """Wraps ``Domain.states_for_tracker_history`` with the memo described above."""

    def states(self: Any, tracker: Any, omit_unset_slots: bool = False,
               ignore_rule_only_turns: bool = False,
               rule_only_data: Optional[Dict[Text, Any]] = None) -> List[Dict[Text, Any]]:
        if ignore_rule_only_turns:
            return original(self, tracker, omit_unset_slots=omit_unset_slots,
                            ignore_rule_only_turns=ignore_rule_only_turns,
                            rule_only_data=rule_only_data)
        key = (id(self), omit_unset_slots, repr(rule_only_data))
        events = tracker.events
        memo: Optional[_Memo] = getattr(tracker, "_walletbot_states", None)
        if memo is not None and memo.key == key and len(events) >= memo.length and (
                memo.length == 0 or events[memo.length - 1] is memo.last):
            new = [events[i] for i in range(memo.length, len(events))]
            if not any(_breaks_replay(event, memo.loops) for event in new):
                return _copy(_extend(self, memo, new, omit_unset_slots, len(events)))
        memo = _rebuild(self, tracker, key, omit_unset_slots)
        tracker._walletbot_states = memo
        return _copy(memo.states + [_state(self, memo.replay, omit_unset_slots)])

    states.__wrapped__ = original  # type: ignore[attr-defined]
    return states


def _extend(domain: Any, memo: _Memo, new: List[Any], omit_unset_slots: bool,
            length: int) -> List[Dict[Text, Any]]:
    from rasa.shared.core.events import ActionExecuted

    for event in new:
        if isinstance(event, ActionExecuted):
            memo.states.append(_state(domain, memo.replay, omit_unset_slots))
        memo.replay.update(event)
    memo.length = length
    if new:
        memo.last = new[-1]
    return memo.states + [_state(domain, memo.replay, omit_unset_slots)]


def _rebuild(domain: Any, tracker: Any, key: Tuple[Any, ...], omit_unset_slots: bool) -> _Memo:
    """Rasa's own loop (ignore_rule_only_turns=False), keeping the replayed tracker."""
    from rasa.shared.core.events import ActionExecuted, ActiveLoop

    replay = tracker.init_copy()
    states: List[Dict[Text, Any]] = []
    for event in tracker.applied_events():
        if isinstance(event, ActionExecuted):
            states.append(_state(domain, replay, omit_unset_slots))
        replay.update(event)
    events = tracker.events
    loops = frozenset(event.name for event in events if isinstance(event, ActiveLoop) and event.name)
    return _Memo(key, len(events), events[-1] if events else None, replay, states,
                 loops | frozenset(getattr(domain, "form_names", ()) or ()))


def install() -> None:
    """Patches the memo into Rasa's Domain. Idempotent."""
    global _installed
    if _installed:
        return
    from rasa.shared.core.domain import Domain

    Domain.states_for_tracker_history = states_for_tracker_history(  # type: ignore[assignment]
        Domain.states_for_tracker_history)
    _installed = True
