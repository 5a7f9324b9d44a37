"""Tracker copies and applied events are exactly Rasa's, after every event of random conversations."""

from __future__ import annotations

from collections import deque
from typing import Any, Dict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    ActiveLoop,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    EntitiesAdded,
    FollowupAction,
    LoopInterrupted,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from walletbot.rasa_compat import trackercopy
from walletbot.settings import PROJECT_ROOT


def unpatched(name: str) -> Any:
    method = getattr(DialogueStateTracker, name)
    return getattr(method, "__wrapped__", method)


rasa_copy = unpatched("copy")
rasa_applied = unpatched("applied_events")
state_copy = trackercopy.state_copy(rasa_copy)
memo_applied = trackercopy.applied_events(rasa_applied)


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(PROJECT_ROOT / "domain.yml"))


def events_strategy(domain: Domain) -> Any:
    intents = st.sampled_from(sorted(domain.intents))
    actions = st.sampled_from(["action_listen", "utter_greet", "utter_faq", "transaction_form",
                               "action_check_transaction", "action_handoff", "freeze_form"])
    slots = st.sampled_from(["order_id", "tx_type", "requested_slot", "no_such_slot"])
    values = st.sampled_from([None, "WD202611180002", "withdraw", "order_id", ["a", "b"]])
    loops = st.sampled_from([ActiveLoop("transaction_form"), ActiveLoop("freeze_form"),
                             ActiveLoop(None)])
    return st.lists(st.one_of(
        st.builds(lambda i, t: UserUttered(t, {"name": i, "confidence": 0.9}), intents,
                  st.sampled_from(["消息", None])),
        st.builds(ActionExecuted, actions),
        st.builds(SlotSet, slots, values),
        st.builds(lambda text: BotUttered(text), st.just("回答")),
        loops,
        st.builds(lambda: ActionExecutionRejected("transaction_form")),
        st.builds(lambda: EntitiesAdded([{"entity": "tx_type", "value": "withdraw"}])),
        st.builds(lambda b: LoopInterrupted(b), st.booleans()),
        st.builds(lambda: FollowupAction("utter_greet")),
        st.builds(ConversationPaused), st.builds(ConversationResumed),
        st.builds(ActionReverted), st.builds(UserUtteranceReverted),
        st.builds(Restarted), st.builds(SessionStarted),
    ), min_size=1, max_size=60)


def state(tracker: DialogueStateTracker) -> Dict[str, Any]:
    """Everything a tracker holds, comparable between two trackers."""
    out = {}
    for name, value in vars(tracker).items():
        if name.startswith("_walletbot"):
            continue
        if name == "events":
            value = [id(event) for event in value]
        elif name == "slots":
            value = {key: (type(slot), slot.value, slot.has_been_set) for key, slot in value.items()}
        elif name in ("latest_message", "latest_bot_utterance"):
            held = any(value is event for event in tracker.events)
            # A replay's reset makes a fresh empty one: same content, its own timestamp.
            value = ("event", id(value)) if held else ("fresh", type(value), value.text,
                                                       getattr(value, "entities", None))
        out[name] = value
    return out


def assert_same_copy(tracker: DialogueStateTracker) -> None:
    theirs, ours = rasa_copy(tracker), state_copy(tracker)
    assert state(ours) == state(theirs)
    for name in ("latest_message", "latest_bot_utterance"):
        if not any(getattr(theirs, name) is event for event in tracker.events):
            assert getattr(ours, name) is not getattr(tracker, name)  # fresh, as Rasa's
    assert ours.events is not tracker.events
    assert ours.active_loop is None or ours.active_loop is not tracker.active_loop
    assert all(ours.slots[name] is not slot for name, slot in tracker.slots.items())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_after_every_event_the_copy_and_the_applied_events_are_rasas(domain: Domain,
                                                                      data: Any) -> None:
    events = data.draw(events_strategy(domain))
    tracker = DialogueStateTracker("rest:u1", domain.slots)
    tracker.model_id, tracker.assistant_id = "model", "walletbot"
    for event in events:
        tracker.update(event)
        assert_same_copy(tracker)
        assert memo_applied(tracker) == rasa_applied(tracker)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_what_is_done_to_a_copy_leaves_the_tracker_as_it_was(domain: Domain, data: Any) -> None:
    tracker = DialogueStateTracker("rest:u1", domain.slots)
    for event in data.draw(events_strategy(domain)):
        tracker.update(event)
    before = state(tracker)
    before_loop = None if tracker.active_loop is None else vars(tracker.active_loop).copy()
    ours = state_copy(tracker)
    for event in data.draw(events_strategy(domain)):
        ours.update(event)
    ours.slots["order_id"].value = "edited"
    assert state(tracker) == before
    assert (None if tracker.active_loop is None else vars(tracker.active_loop)) == before_loop


def test_a_copy_is_the_state_not_a_replay(domain: Domain, monkeypatch: Any) -> None:
    tracker = DialogueStateTracker("rest:u1", domain.slots)
    for n in range(50):
        tracker.update(UserUttered(f"第{n}句", {"name": "faq", "confidence": 1.0}))
        tracker.update(ActionExecuted("utter_faq"))
    replayed = []
    monkeypatch.setattr(DialogueStateTracker, "update",
                        lambda self, event, domain=None: replayed.append(event))
    state_copy(tracker)
    assert replayed == []
    rasa_copy(tracker)
    assert len(replayed) == 100  # Rasa's copy replays every event


def test_a_bounded_history_is_copied_by_rasa(domain: Domain) -> None:
    tracker = DialogueStateTracker("rest:u1", domain.slots, max_event_history=3)
    tracker.update(SlotSet("order_id", "WD202611180002"))
    for _ in range(4):
        tracker.update(ActionExecuted("action_listen"))
    # The event that set the slot is gone: Rasa's replay forgets the slot, and so does the copy.
    assert state(state_copy(tracker)) == state(rasa_copy(tracker))
    assert state_copy(tracker).get_slot("order_id") is None


def test_applied_events_go_on_from_where_they_were(domain: Domain, monkeypatch: Any) -> None:
    tracker = DialogueStateTracker("rest:u1", domain.slots)
    for n in range(30):
        tracker.update(UserUttered(f"第{n}句", {"name": "faq", "confidence": 1.0}))
        tracker.update(ActionExecuted("utter_faq"))
    assert memo_applied(tracker) == rasa_applied(tracker)
    folded = []
    original = trackercopy._fold
    monkeypatch.setattr(trackercopy, "_fold",
                        lambda t, events, names, applied: folded.append(len(events)) or
                        original(t, events, names, applied))
    tracker.update(ActionExecuted("action_listen"))
    assert memo_applied(tracker) == rasa_applied(tracker)
    assert folded == [1]  # only the new event

    result = memo_applied(tracker)
    result.clear()  # a caller's list is its own
    assert memo_applied(tracker) == rasa_applied(tracker)

    tracker.update(ActiveLoop("transaction_form"))  # a new loop: folded again from the start
    assert memo_applied(tracker) == rasa_applied(tracker)
    assert folded[-1] == len(tracker.events)

    tracker.events = deque(list(tracker.events)[:10])  # replaced: folded from the start
    assert memo_applied(tracker) == rasa_applied(tracker)
    assert folded[-1] == 10


def test_installed_into_rasa() -> None:
    trackercopy.install()
    assert getattr(DialogueStateTracker.copy, "__wrapped__", None) is rasa_copy
    assert getattr(DialogueStateTracker.applied_events, "__wrapped__", None) is rasa_applied
    assert set(vars(DialogueStateTracker("probe", []))) == trackercopy.TRACKER_ATTRIBUTES
