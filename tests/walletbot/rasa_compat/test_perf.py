"""The hot-path speed-ups of walletbot.rasa_compat.perf keep Rasa's behaviour."""

import asyncio
import gc
import weakref

import pytest
import rasa.core.agent
from hypothesis import given, settings, strategies as st
from rasa.shared.core import events

from walletbot.rasa_compat import perf


def test_resolve_by_type_is_memoised_and_unchanged():
    names = ["user", "bot", "action", "slot", "pause", "resume", "session_started", "active_loop"]
    before = {name: events.Event.resolve_by_type(name) for name in names}
    perf.install()
    perf.install()  # idempotent
    assert {name: events.Event.resolve_by_type(name) for name in names} == before
    assert events.Event.resolve_by_type("no-such-event", events.UserUttered) is events.UserUttered
    with pytest.raises(ValueError):
        events.Event.resolve_by_type("no-such-event")
    dumped = events.UserUttered("你好").as_dict()
    assert isinstance(events.Event.from_parameters(dumped), events.UserUttered)


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


class Node:
    """A weak-referenceable object for building reference cycles."""


def make_cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_install_wraps_rasas_model_loader_once():
    perf.install()
    load = rasa.core.agent.load_agent
    assert getattr(load, "_walletbot_freezes", False), "rasa.core.agent.load_agent is not wrapped"
    assert perf.freezing_after(load) is load  # never wrapped twice


async def test_a_load_unfreezes_first_and_freezes_after_the_caller_stored_its_result(unfrozen):
    perf.freeze_heap()  # the model in service
    seen = {}
    calls = []

    async def fake_load(*args, **kwargs):
        calls.append((args, kwargs))
        seen["during the load"] = gc.get_freeze_count()
        await asyncio.sleep(0)
        return "agent"

    server = {}
    # As rasa.server's PUT /model and rasa.core.run do: stored without an await in between.
    server["agent"] = await perf.freezing_after(fake_load)("model.tar.gz", endpoints=None)
    seen["when stored"] = gc.get_freeze_count()
    await asyncio.sleep(0)
    assert calls == [(("model.tar.gz",), {"endpoints": None})]
    assert server == {"agent": "agent"}
    assert seen == {"during the load": 0, "when stored": 0}
    assert gc.get_freeze_count() > 0


async def test_a_failed_load_freezes_again(unfrozen):
    async def failing_load():
        raise RuntimeError("no model")

    with pytest.raises(RuntimeError):
        await perf.freezing_after(failing_load)()
    await asyncio.sleep(0)
    assert gc.get_freeze_count() > 0  # the old model goes on serving, frozen


async def test_overlapping_loads_freeze_once_the_last_one_ends(unfrozen):
    release = asyncio.Event()

    async def slow_load():
        await release.wait()
        return "slow"

    async def quick_load():
        return "quick"

    slow = asyncio.create_task(perf.freezing_after(slow_load)())
    await asyncio.sleep(0)
    assert await perf.freezing_after(quick_load)() == "quick"
    await asyncio.sleep(0)
    # The quick model is in service, but what it replaced may be referenced
    # until the slow load's caller stores its result.
    assert gc.get_freeze_count() == 0
    release.set()
    assert await slow == "slow"
    await asyncio.sleep(0)
    assert gc.get_freeze_count() > 0


async def test_cycles_frozen_with_the_old_model_are_freed_after_the_next_load(unfrozen):
    server = {"agent": Node()}
    server["agent"].itself = server["agent"]  # a model whose objects refer to each other
    old = weakref.ref(server["agent"])
    perf.freeze_heap()

    async def load():
        return Node()

    server["agent"] = await perf.freezing_after(load)()
    await asyncio.sleep(0)
    assert old() is None
    assert gc.get_freeze_count() > 0


def test_without_unfreezing_frozen_cycles_are_never_freed(unfrozen):
    """Why a load unfreezes: freezing alone keeps a replaced model's cycles for good."""
    model = Node()
    model.itself = model
    old = weakref.ref(model)
    perf.freeze_heap()  # loaded
    del model  # replaced
    perf.freeze_heap()  # the old scheme: collect and freeze again after the next load
    assert old() is not None
    gc.unfreeze()
    gc.collect()
    assert old() is None


def test_frozen_heap_still_collects_new_garbage(unfrozen):
    perf.freeze_heap()
    before = sum(isinstance(o, Node) for o in gc.get_objects())
    make_cycle()
    gc.collect()
    assert sum(isinstance(o, Node) for o in gc.get_objects()) == before


def _rasa_error(response):
    """What Rasa 3.6's own RemoteAction._validate_action_result raises."""
    from jsonschema import ValidationError, validate
    from rasa.core.actions.action import RemoteAction

    try:
        validate(response, RemoteAction.action_response_format_spec())
    except ValidationError as error:
        return error
    return None


@pytest.mark.parametrize("response", [
    {"events": [{"event": "slot", "name": "x", "value": 1}], "responses": [{"text": "hi"}]},
    {"events": [], "responses": []},
    {},
    {"events": [{"event": "no-such-event"}]},
    {"events": [{"event": "slot"}]},
    {"responses": "not a list"},
    {"events": "not a list", "responses": [1]},
    [],
])
def test_action_result_validation_is_unchanged(response):
    from jsonschema import ValidationError
    from rasa.core.actions.action import RemoteAction

    perf.install()
    action = RemoteAction("action_x", None)
    expected = _rasa_error(response)
    if expected is None:
        assert action._validate_action_result(response) is True
    else:
        with pytest.raises(ValidationError) as raised:
            action._validate_action_result(response)
        assert raised.value.message == expected.message + (
            ". Failed to validate Action server response from API, make sure your response "
            "from the Action endpoint is valid. For more information about the format visit "
            "https://rasa.com/docs/rasa/custom-actions")
        assert list(raised.value.path) == list(expected.path)


def test_action_response_schema_is_checked_once(monkeypatch):
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    perf.install()

    class OtherRemoteAction(RemoteAction):  # not cached yet
        pass

    cls = validator_for(RemoteAction.action_response_format_spec())
    checks = []
    original = cls.check_schema.__func__
    monkeypatch.setattr(cls, "check_schema",
                        classmethod(lambda c, schema, **kw: (checks.append(1), original(c, schema, **kw))[1]))
    action = OtherRemoteAction("action_x", None)
    for _ in range(3):
        assert action._validate_action_result({"events": [], "responses": [{"text": "hi"}]})
    assert len(checks) == 1


# Values of every JSON kind, to put where the schema wants one kind.
_ANY = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner,
                                                                  max_size=2),
    max_leaves=4)
_EVENT_NAMES = ["user", "action", "slot", "entities", "active_loop", "bot", "session_started",
                "restart", "pause", "resume", "followup", "rewind", "undo", "agent",
                "no-such-event"]
_WELL_FORMED = [
    {"event": "slot", "timestamp": None, "name": "order_id", "value": "TX1"},
    {"event": "slot", "name": "requested_slot", "value": None},
    {"event": "active_loop", "name": None},
    {"event": "action", "name": "action_listen", "policy": None, "confidence": 1.0},
    {"event": "bot", "text": "好的", "data": {}, "metadata": {}},
    {"event": "user", "text": "你好", "parse_data": {"intent": {"name": "greet",
                                                                 "confidence": 0.9},
                                                     "entities": [{"entity": "order_id",
                                                                   "value": "TX1"}]}},
    {"event": "followup", "name": "utter_greet"},
    {"event": "pause"},
    {"event": "session_started", "timestamp": 1.5, "metadata": None},
]
_FIELDS = ["name", "value", "text", "timestamp", "metadata", "policy", "confidence",
           "entities", "parse_data", "hide_rule_turn", "input_channel"]


@st.composite
def _responses(draw):
    def event():
        if draw(st.booleans()):  # a well-formed event, perhaps with one field changed
            fields = dict(draw(st.sampled_from(_WELL_FORMED)))
            if draw(st.booleans()):
                fields[draw(st.sampled_from(_FIELDS + ["event"]))] = draw(_ANY)
            return fields
        fields = {key: draw(_ANY) for key in draw(st.lists(st.sampled_from(_FIELDS), max_size=4,
                                                           unique=True))}
        if draw(st.integers(0, 9)):  # mostly with an event name
            fields["event"] = draw(st.sampled_from(_EVENT_NAMES) | _ANY)
        return fields

    response = {}
    if draw(st.integers(0, 9)):
        response["events"] = [draw(st.just(None)) if not draw(st.integers(0, 19)) else event()
                              for _ in range(draw(st.integers(0, 4)))]
    if draw(st.booleans()):
        response["responses"] = draw(st.lists(st.dictionaries(st.sampled_from(["text", "image"]),
                                                              _ANY, max_size=2)
                                              | _ANY, max_size=2))
    return response if draw(st.integers(0, 29)) else draw(_ANY)


@settings(max_examples=600, deadline=None)
@given(_responses())
def test_each_event_checked_against_its_own_branch_is_rasas_check(response):
    """The dispatch answers valid exactly when Rasa's whole schema does; errors are Rasa's."""
    from jsonschema import ValidationError
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    expected = _rasa_error(response)
    if isinstance(response, dict):  # what the patched check asks the dispatch
        assert perf._EventDispatch(schema, cls).valid(response) is (expected is None)
    perf.install()
    action = RemoteAction("action_x", None)
    if expected is None:
        assert action._validate_action_result(response) is True
    else:
        with pytest.raises(ValidationError) as raised:
            action._validate_action_result(response)
        assert raised.value.message.startswith(expected.message + ". Failed to validate")
        assert list(raised.value.path) == list(expected.path)


def test_a_schema_of_another_shape_is_left_to_the_full_check():
    from jsonschema.validators import Draft4Validator

    dispatch = perf._EventDispatch({"type": "object", "properties": {"events": {"type": "array"}}},
                                   Draft4Validator)
    assert dispatch.outer is None and not dispatch.valid({"events": []})


def test_is_empty_is_rasas_answer_without_building_an_empty_domain_each_time(monkeypatch):
    from rasa.shared.core.domain import Domain

    from walletbot.settings import PROJECT_ROOT

    rasa = getattr(Domain.is_empty, "__wrapped__", Domain.is_empty)
    monkeypatch.setattr(Domain, "is_empty", rasa)  # restored after the test
    perf._empty_domain_built_once()
    ours = Domain.is_empty
    assert ours.__wrapped__ is rasa
    domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))
    for candidate in (domain, Domain.empty(), Domain.from_dict({"intents": ["greet"]})):
        assert ours(candidate) == rasa(candidate)
    built = []
    real_empty = Domain.empty.__func__
    monkeypatch.setattr(Domain, "empty", classmethod(lambda cls: built.append(1) or real_empty(cls)))
    for _ in range(5):
        assert ours(domain) is False
    assert built == []
