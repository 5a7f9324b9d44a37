"""The hot-path speed-ups of walletbot.rasa_ext.perf keep Rasa's behaviour."""

import asyncio
import gc

import pytest
import rasa.core.agent
from rasa.shared.core import events

from walletbot.rasa_ext import perf


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


def test_loading_a_model_freezes_the_heap(unfrozen):
    perf.install()
    load = rasa.core.agent.load_agent
    assert getattr(load, "_walletbot_freezes", False), "rasa.core.agent.load_agent is not wrapped"
    assert perf.freezing_after(load) is load  # never wrapped twice

    calls = []

    async def fake_load(*args, **kwargs):
        calls.append((args, kwargs))
        assert gc.get_freeze_count() == 0  # freezing comes after loading
        return "agent"

    assert gc.get_freeze_count() == 0
    result = asyncio.run(perf.freezing_after(fake_load)("model.tar.gz", endpoints=None))
    assert result == "agent"
    assert calls == [(("model.tar.gz",), {"endpoints": None})]
    assert gc.get_freeze_count() > 0


def test_frozen_heap_still_collects_new_garbage(unfrozen):
    perf.freeze_heap()

    class Node:
        pass

    def make_cycle():
        a, b = Node(), Node()
        a.other, b.other = b, a

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
