"""Memoised rule matching finds exactly the rules Rasa's full scan finds."""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasa.core.policies.policy import Policy
from rasa.core.policies.rule_policy import RulePolicy
from rasa.shared.core.constants import SHOULD_NOT_BE_SET
from rasa.shared.core.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from walletbot.rasa_compat import rulematch

ORIGINAL = getattr(RulePolicy._get_possible_keys, "__wrapped__", RulePolicy._get_possible_keys)


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    rulematch.install()


def policy_object() -> Any:
    """A RulePolicy without a model: the matching only needs ``self``."""
    return object.__new__(RulePolicy)


# Sub-states as Rasa builds them: strings and tuples, SHOULD_NOT_BE_SET in rules.
values = st.sampled_from(["a", "b", "c", SHOULD_NOT_BE_SET, ("x",), ("x", "y"), (1.0,), ""])
sub_state = st.dictionaries(st.sampled_from(["intent", "action_name", "name", "s1", "s2"]),
                            values, max_size=3)
state = st.dictionaries(st.sampled_from(["user", "prev_action", "active_loop", "slots"]),
                        sub_state, max_size=4)
rule = st.lists(state, min_size=1, max_size=4)


def rule_key(states: List[Dict[str, Any]]) -> str:
    # As RulePolicy stores them: JSON, so tuples come back as lists.
    return json.dumps(states, sort_keys=True)


@settings(max_examples=300, deadline=None)
@given(rules=st.lists(rule, max_size=12),
       conversations=st.lists(st.lists(state, max_size=7), min_size=1, max_size=6))
def test_the_memo_finds_what_the_full_scan_finds(rules: List[Any],
                                                  conversations: List[Any]) -> None:
    lookup = {rule_key(states): f"action_{i}" for i, states in enumerate(rules)}
    policy = policy_object()
    # Each conversation twice: the second pass is answered from the memo.
    for states in conversations + conversations:
        assert policy._get_possible_keys(lookup, states) == ORIGINAL(policy, lookup, states)


def test_a_conversation_shorter_than_the_longest_rule_is_matched_whole() -> None:
    policy = policy_object()
    opener = [{"user": {"intent": "greet"}}]
    long_rule = rule_key([{}, {"user": {"intent": "greet"}, "prev_action": {"action_name": "x"}},
                          {"prev_action": {"action_name": "y"}}])
    lookup = {long_rule: "a", rule_key(opener): "b"}
    states = [{"user": {"intent": "greet"}, "prev_action": {"action_name": "x"}},
              {"prev_action": {"action_name": "y"}}]
    assert policy._get_possible_keys(lookup, states) == ORIGINAL(policy, lookup, states)
    assert policy._get_possible_keys(lookup, states[-1:]) == ORIGINAL(policy, lookup, states[-1:])


def test_unhashable_states_are_matched_without_the_memo() -> None:
    policy = policy_object()
    lookup = {rule_key([{"slots": {"s1": ["x"]}}]): "a"}
    states = [{"slots": {"s1": ["x"]}}]  # a list: cannot be a memo key
    assert policy._get_possible_keys(lookup, states) == ORIGINAL(policy, lookup, states)
    assert policy.__dict__["_walletbot_rule_keys"][id(lookup)].memo == {}


def test_a_changed_lookup_is_not_answered_from_the_old_memo() -> None:
    policy = policy_object()
    states = [{"user": {"intent": "greet"}, "prev_action": {"action_name": "action_listen"}}]
    lookup = {rule_key([{"user": {"intent": "bye"}}]): "a"}
    assert policy._get_possible_keys(lookup, states) == set()
    lookup[rule_key(states)] = "b"
    assert policy._get_possible_keys(lookup, states) == ORIGINAL(policy, lookup, states) != set()


def test_callers_get_their_own_set() -> None:
    policy = policy_object()
    states = [{"user": {"intent": "greet"}, "prev_action": {"action_name": "action_listen"}}]
    lookup = {rule_key(states): "a"}
    policy._get_possible_keys(lookup, states).clear()
    assert policy._get_possible_keys(lookup, states) == set(lookup)


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rulematch, "CACHE_SIZE", 5)
    policy = policy_object()
    lookup = {rule_key([{"user": {"intent": "greet"}}]): "a"}
    for i in range(20):
        policy._get_possible_keys(lookup, [{"user": {"intent": f"i{i}"}}])
    assert len(policy.__dict__["_walletbot_rule_keys"][id(lookup)].memo) == 5


def test_the_states_are_formatted_only_for_a_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    states = [{"user": {"intent": "greet"}, "prev_action": {"action_name": "action_listen"}}]
    logger = logging.getLogger("rasa.core.policies.rule_policy")
    with caplog.at_level(logging.INFO, logger=logger.name):
        assert RulePolicy.format_tracker_states(states) == []
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        assert RulePolicy.format_tracker_states(states) == Policy.format_tracker_states(states) \
            != []
    assert Policy.format_tracker_states(states) != []  # other policies are not touched


# The trained model's own rules, on conversations made of the domain's intents,
# actions and form events.
def model_rule_policy(agent: Any) -> RulePolicy:
    nodes = agent.processor.graph_runner._instantiated_nodes.values()
    return next(node._component for node in nodes
                if isinstance(getattr(node, "_component", None), RulePolicy))


step = st.one_of(
    st.tuples(st.just("user"), st.sampled_from(
        ["greet", "faq", "check_transaction", "inform", "deny", "affirm", "request_human",
         "account_compromised", "thanks", "back"])),
    st.tuples(st.just("action"), st.sampled_from(
        ["utter_faq", "transaction_form", "action_lookup_transaction", "action_handoff",
         "utter_greet", "action_listen", "utter_ask_rephrase"])),
    st.tuples(st.just("loop"), st.sampled_from(["transaction_form", None])),
    st.tuples(st.just("slot"), st.sampled_from(["order_id", "requested_slot"])),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, max_size=25))
def test_the_models_predictions_are_the_same_as_with_the_full_scan(agent: Any,
                                                                   steps: List[Any]) -> None:
    policy, domain = model_rule_policy(agent), agent.processor.domain
    tracker = DialogueStateTracker("rulematch", domain.slots)
    tracker.update(ActionExecuted("action_listen"))
    for kind, value in steps:
        if kind == "user":
            tracker.update(UserUttered("消息", {"name": value, "confidence": 1.0}))
        elif kind == "action":
            tracker.update(ActionExecuted(value))
        elif kind == "loop":
            tracker.update(ActiveLoop(value))
        else:
            tracker.update(SlotSet(value, "TX20240101" if value == "order_id" else "order_id"))
        mine = policy.predict_action_probabilities(tracker, domain)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(RulePolicy, "_get_possible_keys", ORIGINAL)
            theirs = policy.predict_action_probabilities(tracker, domain)
        assert (mine.probabilities, mine.events, mine.is_end_to_end_prediction,
                mine.is_no_user_prediction, mine.hide_rule_turn) == \
            (theirs.probabilities, theirs.events, theirs.is_end_to_end_prediction,
             theirs.is_no_user_prediction, theirs.hide_rule_turn)
