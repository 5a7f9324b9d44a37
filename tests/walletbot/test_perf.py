"""The memoised event-type lookup gives the same answers as Rasa's own."""

import pytest
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
