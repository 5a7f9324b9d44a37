"""Action-server calls carry the latest turns' events and Rasa's whole state (actionrequest)."""

import inspect
from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted, ActiveLoop, BotUttered, Event, SessionStarted, SlotSet, UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.utils.endpoints import EndpointConfig
from rasa_sdk import Action, Tracker

from walletbot.rasa_compat import actionrequest

DOMAIN = Domain.from_yaml("""
version: "3.1"
intents: [ask, inform, faq]
slots:
  order_id:
    type: text
    mappings: [{type: custom}]
  requested_slot:
    type: text
    mappings: [{type: custom}]
forms:
  transaction_form:
    required_slots: [order_id]
actions: [action_check_transaction, validate_transaction_form, action_handoff]
""")


def turn(number: int, *extra: Event) -> List[Event]:
    return [ActionExecuted("action_listen"),
            UserUttered(f"消息{number}", {"name": "faq", "confidence": 0.9},
                        input_channel="wechat"),
            *extra,
            BotUttered(f"回答{number}"),
            ActionExecuted("utter_faq")]


def conversation(turns: int) -> DialogueStateTracker:
    events: List[Event] = [ActionExecuted("action_session_start"), SessionStarted(),
                           ActionExecuted("action_listen")]
    for number in range(turns):
        events += turn(number)
    return DialogueStateTracker.from_events("wechat:o1", events, DOMAIN.slots)


def request(tracker: DialogueStateTracker, action: str) -> dict:
    actionrequest.install()
    remote = RemoteAction(action, EndpointConfig("http://127.0.0.1:1/webhook"))
    return remote._action_call_format(tracker, DOMAIN)


def texts(events: List[dict]) -> List[str]:
    return [e["text"] for e in events if e["event"] == "user"]


def test_an_action_is_sent_the_latest_three_turns_only():
    body = request(conversation(40), "action_check_transaction")
    assert texts(body["tracker"]["events"]) == ["消息37", "消息38", "消息39"]
    assert body["tracker"]["events"][0] == {**ActionExecuted("action_listen").as_dict(),
                                            "timestamp": body["tracker"]["events"][0]["timestamp"]}


def test_the_state_rasa_computes_from_all_events_is_sent_unchanged():
    tracker = conversation(40)
    tracker.update(SlotSet("order_id", "WD202611180002"))
    tracker.update(ActiveLoop("transaction_form"))
    full = tracker.current_state(EventVerbosity.ALL)
    body = request(tracker, "action_check_transaction")
    sent = body["tracker"]
    assert {k: v for k, v in sent.items() if k != "events"} == \
        {k: v for k, v in full.items() if k != "events"}
    assert sent["slots"]["order_id"] == "WD202611180002"
    assert sent["active_loop"]["name"] == "transaction_form"
    assert body["next_action"] == "action_check_transaction"
    assert body["sender_id"] == "wechat:o1"
    assert "domain" in body  # selective domain is off: Rasa sends it, so do we


def test_with_selective_domain_only_a_marked_action_is_sent_the_domain():
    actionrequest.install()
    domain = Domain.from_yaml(inspect.cleandoc("""
        version: "3.1"
        actions:
          - action_check_transaction
          - validate_transaction_form:
              send_domain: true
        """))
    endpoint = EndpointConfig("http://127.0.0.1:1/webhook", enable_selective_domain=True)
    tracker = conversation(2)
    sent = {name: "domain" in RemoteAction(name, endpoint)._action_call_format(tracker, domain)
            for name in ("action_check_transaction", "validate_transaction_form")}
    assert sent == {"action_check_transaction": False, "validate_transaction_form": True}


@pytest.mark.parametrize("action", sorted(actionrequest.HISTORY_ACTIONS))
def test_an_action_reading_the_history_is_sent_every_event(action):
    tracker = conversation(40)
    body = request(tracker, action)
    assert body["tracker"]["events"] == tracker.current_state(EventVerbosity.ALL)["events"]


def test_a_short_conversation_is_sent_whole():
    tracker = conversation(2)
    assert request(tracker, "action_check_transaction")["tracker"]["events"] == \
        tracker.current_state(EventVerbosity.ALL)["events"]


def test_the_forms_slot_candidates_at_the_end_reach_the_validation_action():
    tracker = conversation(10)
    tracker.update(ActiveLoop("transaction_form"))
    tracker.update(SlotSet("requested_slot", "order_id"))
    for event in turn(99)[:2]:
        tracker.update(event)
    tracker.update(SlotSet("order_id", "WD202611180002"))  # the candidate Rasa appends
    sent = request(tracker, "validate_transaction_form")["tracker"]
    assert Tracker.from_dict(sent).slots_to_validate() == {"order_id": "WD202611180002"}


_events = st.lists(st.sampled_from(["user", "bot", "slot", "listen", "action"]), max_size=60)


@settings(max_examples=200, deadline=None)
@given(kinds=_events)
def test_what_rasa_sdk_reads_is_the_same_as_from_the_whole_tracker(kinds):
    """Every rasa-sdk reading the project's actions (and forms) use, trimmed against whole."""
    events: List[Event] = [ActionExecuted("action_session_start"), SessionStarted()]
    for number, kind in enumerate(kinds):
        events.append({
            "user": lambda: UserUttered(f"u{number}", {"name": "faq", "confidence": 1.0},
                                        input_channel=f"c{number % 3}"),
            "bot": lambda: BotUttered(f"b{number}"),
            "slot": lambda: SlotSet("order_id", f"WD{number}"),
            "listen": lambda: ActionExecuted("action_listen"),
            "action": lambda: ActionExecuted("action_check_transaction"),
        }[kind]())
    tracker = DialogueStateTracker.from_events("rest:h", events, DOMAIN.slots)
    whole = Tracker.from_dict(tracker.current_state(EventVerbosity.ALL))
    cut = Tracker.from_dict(request(tracker, "action_check_transaction")["tracker"])
    assert cut.slots == whole.slots
    assert cut.latest_message == whole.latest_message
    assert cut.slots_to_validate() == whole.slots_to_validate()
    assert cut.get_latest_input_channel() == whole.get_latest_input_channel()
    assert cut.latest_action_name == whole.latest_action_name
    assert cut.active_loop == whole.active_loop
    assert cut.is_paused() == whole.is_paused()
    assert texts(cut.events) == texts(whole.events)[-actionrequest.RECENT_TURNS:]


def _project_actions():
    import actions.feedback
    import actions.handoff
    import actions.security
    import actions.transactions

    for module in (actions.feedback, actions.handoff, actions.security, actions.transactions):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Action) and cls.__module__ == module.__name__ \
                    and not inspect.isabstract(cls):
                yield cls


def test_every_action_reading_past_events_is_sent_the_history():
    """An action whose code escalates (the ticket's transcript) or reads ``.events`` is listed."""
    reading = {cls().name() for cls in _project_actions()
               if any(needle in inspect.getsource(cls) for needle in ("escalate(", ".events"))}
    assert {"action_handoff", "action_freeze_account"} <= reading  # the check sees them
    assert reading <= actionrequest.HISTORY_ACTIONS
    domain = Domain.load("domain.yml")
    assert actionrequest.HISTORY_ACTIONS <= set(domain.user_actions)
