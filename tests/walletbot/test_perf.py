"""The hot-path speed-ups of walletbot.perf keep Rasa's behaviour."""

import asyncio
import gc

import pytest
import rasa.core.agent
from rasa.shared.core import events

from walletbot import perf


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
