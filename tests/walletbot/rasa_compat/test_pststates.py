"""Extended dialogue states are exactly the states Rasa rebuilds from the first event."""

from __future__ import annotations

from typing import Any, List

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
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from tests.walletbot.rasa_compat.test_trackercopy import events_strategy as more_events
from walletbot.rasa_compat import pststates
from walletbot.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(PROJECT_ROOT / "domain.yml"))


def rasa_states(domain: Domain, tracker: DialogueStateTracker, **kwargs: Any) -> List[Any]:
    """Rasa's own states (the unpatched method)."""
    method = Domain.states_for_tracker_history
    original = getattr(method, "__wrapped__", method)
    return original(domain, tracker, **kwargs)


def extended(domain: Domain, tracker: DialogueStateTracker, **kwargs: Any) -> List[Any]:
    return pststates.states_for_tracker_history(rasa_states_unpatched())(domain, tracker, **kwargs)


def rasa_states_unpatched() -> Any:
    method = Domain.states_for_tracker_history
    return getattr(method, "__wrapped__", method)


def events_strategy(domain: Domain) -> Any:
    intents = st.sampled_from(sorted(domain.intents))
    actions = st.sampled_from(["action_listen", "utter_greet", "utter_faq", "transaction_form",
                               "action_check_transaction", "utter_offer_overdue_check",
                               "action_handoff"])
    slots = st.sampled_from(["order_id", "tx_type", "tx_followup", "requested_slot"])
    values = st.sampled_from([None, "WD202611180002", "withdraw", "overdue", "offer_human",
                              "order_id"])
    return st.lists(st.one_of(
        st.builds(lambda i: UserUttered("消息", {"name": i, "confidence": 0.9}), intents),
        st.builds(ActionExecuted, actions),
        st.builds(SlotSet, slots, values),
        st.builds(lambda text: BotUttered(text), st.just("回答")),
        st.sampled_from([ActiveLoop("transaction_form"), ActiveLoop(None)]),
        st.builds(lambda: ActionExecutionRejected("transaction_form")),
        st.builds(ActionReverted), st.builds(UserUtteranceReverted),
        st.builds(Restarted), st.builds(SessionStarted),
    ), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_after_every_event_the_states_are_rasas(domain: Domain, data: Any) -> None:
    events = data.draw(events_strategy(domain))
    omit = data.draw(st.booleans())
    patched = pststates.states_for_tracker_history(rasa_states_unpatched())
    tracker = DialogueStateTracker("rest:u1", domain.slots)
    for event in events:
        tracker.update(event)
        assert patched(domain, tracker, omit_unset_slots=omit) == \
            rasa_states(domain, tracker, omit_unset_slots=omit)


def test_a_conversation_is_extended_not_rebuilt_and_callers_get_their_own_copy(
        domain: Domain) -> None:
    patched = pststates.states_for_tracker_history(rasa_states_unpatched())
    tracker = DialogueStateTracker("rest:u1", domain.slots)
    for n in range(30):
        for event in [ActionExecuted("action_listen"),
                      UserUttered(f"第{n}句", {"name": "greet", "confidence": 1.0}),
                      ActionExecuted("utter_greet"), BotUttered("您好")]:
            tracker.update(event)
        patched(domain, tracker)
    memo = tracker._walletbot_states
    replay = memo.replay

    states = patched(domain, tracker)
    states[-1]["user"]["intent"] = "edited by a caller"  # Rasa edits the last state like this

    assert tracker._walletbot_states.replay is replay  # extended, same replayed tracker
    assert patched(domain, tracker) == rasa_states(domain, tracker)
    assert len(states) == 61


def test_rule_only_turns_are_left_to_rasa(domain: Domain) -> None:
    patched = pststates.states_for_tracker_history(rasa_states_unpatched())
    tracker = DialogueStateTracker("rest:u1", domain.slots)
    tracker.update(ActionExecuted("action_listen"))
    patched(domain, tracker, ignore_rule_only_turns=True, rule_only_data={"slots": []})
    assert not hasattr(tracker, "_walletbot_states")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_states_are_rasas_with_entities_follow_ups_and_interrupted_loops(domain: Domain,
                                                                          data: Any) -> None:
    patched = pststates.states_for_tracker_history(rasa_states_unpatched())
    tracker = DialogueStateTracker("rest:u1", domain.slots)
    for event in data.draw(more_events(domain)):
        tracker.update(event)
        assert patched(domain, tracker) == rasa_states(domain, tracker)


def test_a_form_turn_is_extended_not_rebuilt(domain: Domain) -> None:
    """Activation, validation and deactivation undo nothing: the states so far are kept."""
    patched = pststates.states_for_tracker_history(rasa_states_unpatched())
    tracker = DialogueStateTracker("rest:u1", domain.slots)
    for event in [ActionExecuted("action_listen"),
                  UserUttered("查一下WD202611180002", {"name": "check_transaction",
                                                       "confidence": 0.9})]:
        tracker.update(event)
    patched(domain, tracker)
    replay = tracker._walletbot_states.replay
    for event in [ActionExecuted("transaction_form"), ActiveLoop("transaction_form"),
                  SlotSet("order_id", "WD202611180002"), SlotSet("requested_slot", None),
                  ActiveLoop(None), ActionExecuted("action_check_transaction")]:
        tracker.update(event)
        assert patched(domain, tracker) == rasa_states(domain, tracker)
    assert tracker._walletbot_states.replay is replay
    tracker.update(Restarted())  # undoes everything: built again from the start
    assert patched(domain, tracker) == rasa_states(domain, tracker)
    assert tracker._walletbot_states.replay is not replay
