"""Checks every public channel applies: masking, rate limits, apologies."""

import pytest

from walletbot.channels import guard


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


async def test_rate_limit_is_per_sender_and_slides():
    clock = Clock()
    limiter = guard.RateLimiter(3, clock=clock)
    assert [await limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert await limiter.allow("b")
    clock.now += 59
    assert not await limiter.allow("a")
    clock.now += 2
    assert await limiter.allow("a")


async def test_rate_limit_forgets_the_oldest_senders_beyond_its_size():
    limiter = guard.RateLimiter(1, max_senders=2, clock=Clock())
    for sender in "abc":
        await limiter.allow(sender)
    assert await limiter.allow("a")  # forgotten, so allowed again


async def test_make_limiter_reads_the_environment():
    off = guard.make_limiter({"RATE_LIMIT_PER_MINUTE": "0", "REDIS_URL": "redis://x"})
    assert isinstance(off, guard.RateLimiter) and await off.allow("x")
    assert guard.make_limiter({"RATE_LIMIT_PER_MINUTE": "junk"}).per_minute == 30
    assert isinstance(guard.make_limiter({}), guard.RateLimiter)
    shared = guard.make_limiter({"RATE_LIMIT_PER_MINUTE": "7", "REDIS_URL": "redis://h:1/0"})
    assert isinstance(shared, guard.RedisRateLimiter) and shared.per_minute == 7


@pytest.mark.parametrize("text, reply", [
    (None, guard.EMPTY), ("", guard.EMPTY), ("   \n ", guard.EMPTY), (123, guard.EMPTY),
    ("\x00\x01\x02", guard.EMPTY), ("字" * 2001, guard.TOO_LONG.format(limit=2000)),
])
async def test_screen_answers_bad_messages(text, reply):
    assert (await guard.screen(text, "s", guard.RateLimiter(100))).reply == reply


async def test_screen_masks_and_strips_control_characters():
    verdict = await guard.screen("卡号6222020200112233445\x07 谢谢", "s", guard.RateLimiter(100))
    assert verdict.masked and "6222020200112233445" not in verdict.text
    assert "\x07" not in verdict.text and verdict.text.endswith("谢谢")
    plain = await guard.screen("怎么提现", "s", guard.RateLimiter(100))
    assert plain.text == "怎么提现" and not plain.masked


async def _true():
    return True


async def _false():
    return False


async def test_run_turn_apologises_on_failure_or_silence_with_actions_down():
    async def boom():
        raise ConnectionError("redis down")

    async def silent():
        return None

    assert await guard.run_turn(boom, produced=lambda: 0, paused=_false, health=_true) == guard.FAILED
    assert await guard.run_turn(silent, produced=lambda: 0, paused=_false, health=_false) == guard.FAILED
    # Silence is right while a human has the conversation, or when actions are up.
    assert await guard.run_turn(silent, produced=lambda: 0, paused=_true, health=_false) is None
    assert await guard.run_turn(silent, produced=lambda: 0, paused=_false, health=_true) is None
    assert await guard.run_turn(silent, produced=lambda: 1, paused=_false, health=_false) is None


async def test_action_server_probe():
    assert await guard.action_server_up(None) is True
    assert await guard.action_server_up("http://127.0.0.1:9/webhook", timeout=0.5) is False


async def test_an_action_failure_logged_by_rasa_fails_the_turn():
    import logging

    async def failing_action():
        logging.getLogger("rasa.core.processor").error(
            "Encountered an exception while running action 'action_x'.Bot will continue")

    async def other_turn():
        return None

    assert await guard.run_turn(failing_action, produced=lambda: 2, paused=_false,
                                health=_true) == guard.FAILED
    # A failure in another turn (outside this context) does not count.
    logging.getLogger("rasa.core.processor").error("Encountered an exception while running action 'y'")
    assert await guard.run_turn(other_turn, produced=lambda: 1, paused=_false, health=_true) is None


class _App:
    """Just enough of the Rasa server's app: ctx.agent with stores."""

    def __init__(self):
        from types import SimpleNamespace

        from rasa.core.lock_store import InMemoryLockStore
        from rasa.core.tracker_store import InMemoryTrackerStore
        from rasa.shared.core.domain import Domain

        store = InMemoryTrackerStore(Domain.empty())
        self.ctx = SimpleNamespace(agent=SimpleNamespace(tracker_store=store,
                                                         lock_store=InMemoryLockStore()))


async def test_a_paused_conversation_only_stores_the_message_even_after_a_long_wait():
    from rasa.core.channels.channel import UserMessage
    from rasa.shared.core.events import ConversationPaused, SessionStarted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    app = _App()
    store = app.ctx.agent.tracker_store
    paused = DialogueStateTracker.from_events("waiting", [
        SessionStarted(timestamp=1.0), UserUttered("转人工", timestamp=2.0),
        ConversationPaused(timestamp=3.0)])  # hours ago: Rasa would start a new session
    await store.save(paused)
    turns = []

    async def turn():
        turns.append(1)

    async def ticket_open(channel, sender):
        return (channel, sender) == ("web", "waiting")

    message = UserMessage("还有人吗", None, "waiting", input_channel="web")
    assert await guard.run_turn(turn, app=app, message=message, produced=lambda: 0,
                                paused=_true, health=_false, ticket_check=ticket_open) is None
    assert turns == []
    tracker = await store.retrieve("waiting")
    assert tracker.latest_message.text == "还有人吗" and tracker.is_paused()

    # A conversation nobody paused goes to the bot as usual.
    other = UserMessage("你好", None, "free", input_channel="web")
    await guard.run_turn(turn, app=app, message=other, produced=lambda: 1, paused=_false,
                         health=_true, ticket_check=ticket_open)
    assert turns == [1]
