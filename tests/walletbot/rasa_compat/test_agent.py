"""Reading the Rasa server: the action server probe and the buttons the bot offered."""

import pytest
from rasa.shared.core.events import BotUttered, UserUttered

from walletbot.rasa_compat.agent import action_server_up, offered_payloads


async def test_action_server_probe():
    assert await action_server_up(None) is True
    assert await action_server_up("http://127.0.0.1:9/webhook", timeout=0.5) is False


def test_offered_payloads_are_the_bots_buttons_only():
    events = [
        UserUttered("/affirm"),  # a user typing a payload offers nothing
        BotUttered("要冻结吗？", data={"buttons": [{"title": "是", "payload": "/affirm"},
                                               {"title": "否", "payload": " /deny "}]}),
        BotUttered("好的", data={"buttons": [{"title": "坏", "payload": None}, "junk"]}),
        BotUttered("没有按钮"),
    ]
    assert offered_payloads(events) == {"/affirm", "/deny"}


# --- writers outside a user turn: the kept tracker, under the lock -------------------

from types import SimpleNamespace  # noqa: E402

from rasa.core.lock_store import InMemoryLockStore  # noqa: E402

from tests.walletbot.rasa_compat.test_trackercache import (  # noqa: E402,F401
    fresh, replica, replicas, state, turn,
)
from tests.walletbot.rasa_compat.test_trackerstore import conversation, url  # noqa: E402,F401
from walletbot.rasa_compat.agent import locked_turn, store_user_message  # noqa: E402


def agent_on(store, lock_store=None):
    return SimpleNamespace(tracker_store=store, lock_store=lock_store or InMemoryLockStore())


async def test_a_message_stored_while_paused_uses_the_kept_tracker(replicas):
    store = replicas[0]
    await store.save(conversation("u1"))
    kept = await turn(store, "u1", "查 WD1", "WD1")
    misses = store.cache.misses

    assert await store_user_message(agent_on(store), "u1", text="人工客服在吗", input_channel="wechat")

    # No whole-session read: the kept tracker took the message and was saved.
    assert store.cache.misses == misses and store.cache.hits == 1
    assert kept.events[-1].text == "人工客服在吗"
    stored = await fresh(store, "u1")
    assert state(stored) == state(kept)
    after = await turn(store, "u1", "查 WD2", "WD2")
    assert after is kept and store.cache.misses == misses


async def test_a_message_stored_on_one_replica_reaches_the_others_next_turn(replicas):
    a, b = replicas
    await a.save(conversation("u1"))
    on_a = await turn(a, "u1", "查 WD1", "WD1")

    assert await store_user_message(agent_on(b), "u1", text="还在等", input_channel="wechat")
    again = await turn(a, "u1", "查 WD2", "WD2")

    assert again is on_a and a.cache.partial == 1
    texts = [e.text for e in again.events if isinstance(e, UserUttered)]
    assert texts[-2:] == ["还在等", "查 WD2"]
    assert state(again) == state(await fresh(b, "u1"))


async def test_a_writer_that_fails_before_saving_leaves_no_trace_in_the_next_turn(replicas):
    store = replicas[0]
    await store.save(conversation("u1"))
    await turn(store, "u1", "查 WD1", "WD1")
    agent = agent_on(store)

    with pytest.raises(RuntimeError, match="before the save"):
        async with locked_turn(agent, "u1"):
            tracker = await store.retrieve("u1")
            tracker.update(BotUttered("从未保存"))
            raise RuntimeError("the push failed before the save")

    after = await turn(store, "u1", "查 WD2", "WD2")
    assert "从未保存" not in [getattr(e, "text", None) for e in after.events]
    assert state(after) == state(await fresh(store, "u1"))


async def test_locked_turn_holds_the_conversations_lock_and_marks_the_turn():
    import asyncio

    from walletbot.rasa_compat.trackercache import in_turn

    lock_store = InMemoryLockStore()
    agent = agent_on(None, lock_store)
    entered = []

    async def user_turn():
        async with lock_store.lock("u1", wait_time_in_seconds=0.01):
            entered.append("turn")

    async with locked_turn(agent, "u1"):
        assert in_turn("u1") and not in_turn("u2")
        waiting = asyncio.create_task(user_turn())
        await asyncio.sleep(0.1)
        assert entered == []  # the user's turn waits for the writer
    await asyncio.wait_for(waiting, 5)
    assert entered == ["turn"] and not in_turn("u1")


def test_offered_payloads_read_event_dicts_too():
    events = [BotUttered("要冻结吗？", data={"buttons": [{"title": "是", "payload": "/affirm"}]}),
              UserUttered("/affirm")]
    assert offered_payloads([e.as_dict() for e in events]) == {"/affirm"}


async def test_the_offered_buttons_are_read_from_the_latest_events_only(replicas):
    from rasa.shared.core.events import ActionExecuted

    from walletbot.rasa_compat.agent import OFFERED_WITHIN_MESSAGES, payloads_offered_in

    store = replicas[0]
    tracker = conversation("u1")
    tracker.update(BotUttered("很久以前", data={"buttons": [{"title": "旧", "payload": "/old"}]}))
    for number in range(OFFERED_WITHIN_MESSAGES):
        tracker.update(UserUttered(f"消息{number}"))
        tracker.update(BotUttered(f"回答{number}"))
        tracker.update(ActionExecuted("action_listen"))
    tracker.update(BotUttered("要冻结吗？", data={"buttons": [{"title": "是", "payload": "/affirm"}]}))
    for number in range(3 * OFFERED_WITHIN_MESSAGES):  # the user writes on: no bot messages
        tracker.update(UserUttered(f"还有{number}"))
    await store.save(tracker)

    assert await payloads_offered_in(agent_on(store), "u1") == {"/affirm"}
    assert await payloads_offered_in(agent_on(store), "nobody") == set()
