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

The states must be exactly Rasa's, and Rasa builds them from the tracker's
applied events (``applied_events()``: what restarts, reverts and a loop's own
undo leave). So the memo keeps the applied events it covered; when the
tracker's applied events still begin with exactly those (the same event
objects, in order), the states so far are Rasa's states so far, and only the
applied events after them are replayed. Anything else (a restart or new
session, a revert, a loop undoing its earlier steps, another domain or other
arguments) rebuilds from the first applied event, as Rasa does; so does
``ignore_rule_only_turns`` (ML policies' states, which look back across
turns). Callers get their own copy of the states (Rasa edits the last state
in place to choose text or intent). ``applied_events()`` itself is kept up to
date the same way (:mod:`walletbot.rasa_compat.trackercopy`), so the check
costs a comparison of references, not a fold of the conversation.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Text, Tuple

_installed = False


@dataclass
class _Memo:
    key: Tuple[Any, ...]
    applied: List[Any]  # the applied events covered, in order
    replay: Any  # a tracker with every covered applied event applied
    states: List[Dict[Text, Any]]  # one per action, without the final state


def _copy(states: List[Dict[Text, Any]]) -> List[Dict[Text, Any]]:
    # States are dicts of sub-state dicts of immutable values; Rasa edits both levels.
    return [{key: dict(sub) if isinstance(sub, dict) else sub for key, sub in state.items()}
            for state in states]


def _state(domain: Any, replayed: Any, omit_unset_slots: bool) -> Dict[Text, Any]:
    """The state Rasa builds for a prior tracker (``states_for_tracker_history``'s own call)."""
    return domain._clean_state(domain.get_active_state(replayed, omit_unset_slots=omit_unset_slots))


def _covers(memo: _Memo, applied: List[Any]) -> bool:
    """Whether ``applied`` begins with the memo's applied events (the same objects)."""
    return len(applied) >= len(memo.applied) and all(map(operator.is_, memo.applied, applied))


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
        applied = tracker.applied_events()
        memo: Optional[_Memo] = getattr(tracker, "_walletbot_states", None)
        if memo is None or memo.key != key or not _covers(memo, applied):
            memo = _Memo(key, [], tracker.init_copy(), [])
            tracker._walletbot_states = memo
        _extend(self, memo, applied[len(memo.applied):], omit_unset_slots)
        return _copy(memo.states) + [_state(self, memo.replay, omit_unset_slots)]

    states.__wrapped__ = original  # type: ignore[attr-defined]
    return states


def _extend(domain: Any, memo: _Memo, new: List[Any], omit_unset_slots: bool) -> None:
    """Rasa's own loop (ignore_rule_only_turns=False) over the applied events not covered yet."""
    from rasa.shared.core.events import ActionExecuted

    for event in new:
        if isinstance(event, ActionExecuted):
            memo.states.append(_state(domain, memo.replay, omit_unset_slots))
        memo.replay.update(event)
        memo.applied.append(event)


def install() -> None:
    """Patches the memo into Rasa's Domain. Idempotent."""
    global _installed
    if _installed:
        return
    from rasa.shared.core.domain import Domain

    Domain.states_for_tracker_history = states_for_tracker_history(  # type: ignore[assignment]
        Domain.states_for_tracker_history)
    _installed = True
