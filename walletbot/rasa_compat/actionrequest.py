"""The action server's request carries the latest turns of the conversation, not all of it.

Rasa 3.6 sends every custom-action call the whole tracker
(``tracker.current_state(EventVerbosity.ALL)``): each event turned into a dict
and the lot JSON-encoded, several times a turn (the action, the form's
validation). The kept tracker is up to ``2 x turn_window`` events long, so
this grew with the conversation until the window cut it: in a soak through
the production profile, JSON encoding of action requests went from 3 % to
14 % of the replicas' interpreter time between the first and the last
minutes (bench/RESULTS.md, "Soak").

Only the events change: the state Rasa computes from the whole tracker
(slots, latest message, active loop, paused, latest action, latest event
time, latest input channel) is sent exactly as before. The events sent are
those of the latest ``RECENT_TURNS`` user turns (from the ``action_listen``
before the oldest of them), which holds everything rasa-sdk derives from
events (``slots_to_validate``: the slot candidates the form appends at the
end) and what the project's actions read.

Actions that need the history itself (``HISTORY_ACTIONS``: a handoff writes
the transcript into the ticket) get every event, as before.
"""

from __future__ import annotations

from typing import Any, Dict, FrozenSet, List, Sequence

# The actions that read past turns: escalations copy the transcript into the
# ticket (actions/handoff.py, actions/security.py). tests/actions check that
# every action escalating is listed.
HISTORY_ACTIONS: FrozenSet[str] = frozenset({"action_handoff", "action_freeze_account"})
RECENT_TURNS = 3

_installed = False


def recent_start(events: Sequence[Any], turns: int = RECENT_TURNS) -> int:
    """Index of the first event of the latest ``turns`` user turns (0: all of them).

    A turn starts at the ``action_listen`` just before its user message, when
    there is one. Events are Rasa ``Event`` objects.
    """
    seen = 0
    for index in range(len(events) - 1, -1, -1):
        if getattr(events[index], "type_name", None) == "user":
            seen += 1
            if seen == turns:
                before = events[index - 1] if index > 0 else None
                if before is not None and getattr(before, "action_name", None) == "action_listen":
                    return index - 1
                return index
    return 0


def request_events(tracker: Any, action_name: str) -> List[Dict[str, Any]]:
    """The events (as dicts) the action server is sent for ``action_name``."""
    events = list(tracker.events)
    start = 0 if action_name in HISTORY_ACTIONS else recent_start(events)
    return [event.as_dict() for event in events[start:]]


def install() -> None:
    """Patches ``RemoteAction._action_call_format``. Idempotent."""
    global _installed
    if _installed:
        return
    import rasa
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.trackers import EventVerbosity

    def _action_call_format(self: RemoteAction, tracker: Any, domain: Any) -> Dict[str, Any]:
        # Rasa 3.6's RemoteAction._action_call_format, with the events cut.
        state = tracker.current_state(EventVerbosity.NONE)
        state["events"] = request_events(tracker, self.name())
        result: Dict[str, Any] = {
            "next_action": self._name,
            "sender_id": tracker.sender_id,
            "tracker": state,
            "version": rasa.__version__,
        }
        if (not self._is_selective_domain_enabled()
                or domain.does_custom_action_explicitly_need_domain(self.name())):
            result["domain"] = domain.as_dict()
        return result

    RemoteAction._action_call_format = _action_call_format  # type: ignore[assignment]
    _installed = True
