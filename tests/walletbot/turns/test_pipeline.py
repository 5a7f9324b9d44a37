"""The one turn pipeline: every channel's behaviour on bad input, limits, pauses and failures."""

import logging

import pytest
from rasa.shared.core.events import ConversationPaused, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from walletbot.turns import screening
from walletbot.turns.pipeline import Inbound, TurnPipeline, deliverable, pipeline_for
from walletbot.turns.ratelimit import RateLimiter

from tests.walletbot.turns.doubles import FakeAgent, ScriptedBot, make_pipeline

CHANNELS = ["rest", "web", "wechat"]
CARD = "6222021234567890123"


def texts(messages):
    return [m.get("text") for m in messages]


@pytest.fixture
def agent():
    return FakeAgent()


@pytest.fixture
def bot(agent):
    return ScriptedBot(agent)


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("text, reply", [
    ("", screening.EMPTY), ("   ", screening.EMPTY), (None, screening.EMPTY), (42, screening.EMPTY),
    ("\x00\x07", screening.EMPTY), ("长" * 2001, screening.TOO_LONG.format(limit=2000)),
])
async def test_bad_input_gets_a_clear_answer_without_a_turn(agent, bot, channel, text, reply):
    messages = await make_pipeline(agent).handle(Inbound(channel=channel, sender="u", text=text), bot)
    assert texts(messages) == [reply] and bot.received == []


@pytest.mark.parametrize("channel", CHANNELS)
async def test_personal_data_is_masked_before_the_bot_and_the_user_reminded(agent, bot, channel):
    messages = await make_pipeline(agent).handle(
        Inbound(channel=channel, sender="u", text=f"卡号{CARD}提现没到\x07"), bot)
    seen = bot.received[0].text
    assert CARD not in seen and "提现没到" in seen and "\x07" not in seen
    assert texts(messages)[0] == screening.PII_REMINDER
    stored = " ".join(str(e.as_dict()) for e in await agent.events(f"{channel}:u"))
    assert CARD not in stored


@pytest.mark.parametrize("channel", CHANNELS)
async def test_the_limit_is_per_conversation_and_scoped_by_channel(agent, bot, channel):
    pipeline = make_pipeline(agent, per_minute=2)
    replies = [texts(await pipeline.handle(Inbound(channel=channel, sender="u", text="你好"), bot))
               for _ in range(4)]
    assert replies[2:] == [[screening.RATE_LIMITED]] * 2 and len(bot.received) == 2
    # The same sender id on another channel is another conversation with its own budget.
    other = "web" if channel != "web" else "rest"
    assert texts(await pipeline.handle(Inbound(channel=other, sender="u", text="你好"), bot)) == [
        "echo:你好"]


async def test_conversations_are_keyed_by_channel_and_sender(agent, bot):
    pipeline = make_pipeline(agent)
    await pipeline.handle(Inbound(channel="rest", sender="web-abc", text="你好"), bot)
    assert bot.received[0].sender_id == "rest:web-abc"
    assert bot.received[0].input_channel == "rest"
    assert await agent.events("web:web-abc") == []


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_payload_the_bot_never_offered_is_screened_as_text(agent, bot, channel):
    forged = '/inform{"order_id": "WD202611180002", "card": "%s"}' % CARD
    messages = await make_pipeline(agent).handle(
        Inbound(channel=channel, sender="u", text=forged, title=f"卡{CARD}"), bot)
    seen = bot.received[0]
    assert not seen.text.startswith("/"), "Rasa would read it as an intent with entities"
    assert seen.text.startswith(screening.TEXT_SLASH) and CARD not in seen.text
    assert "WD202611180002" in seen.text
    assert "button_title" not in seen.metadata
    assert texts(messages)[0] == screening.PII_REMINDER


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_payload_of_an_offered_button_goes_through_with_its_masked_title(
        agent, bot, channel):
    key = f"{channel}:u"
    buttons = [{"title": "是的，冻结", "payload": "/affirm"}, {"title": "不用", "payload": "/deny"}]
    await agent.record(key, "我的账户被盗了", [{"text": "要冻结吗？", "buttons": buttons}])
    pipeline = make_pipeline(agent)
    await pipeline.handle(Inbound(channel=channel, sender="u", text="/affirm",
                                  title=f"是的{CARD}"), bot)
    seen = bot.received[0]
    assert seen.text == "/affirm"
    assert seen.metadata["button_title"].startswith("是的") and CARD not in str(seen.metadata)
    # Offered in one conversation is not offered in another.
    await pipeline.handle(Inbound(channel=channel, sender="someone-else", text="/affirm"), bot)
    assert bot.received[1].text == screening.TEXT_SLASH + "affirm"


async def test_metadata_strings_are_masked_and_odd_values_dropped(agent, bot):
    await make_pipeline(agent).handle(Inbound(
        channel="rest", sender="u", text="你好",
        metadata={"note": f"卡{CARD}", "nested": {"id": f"身份证110101199003071234"},
                  "n": 3, "obj": object(), 5: "x"}), bot)
    metadata = bot.received[0].metadata
    assert CARD not in str(metadata) and "110101199003071234" not in str(metadata)
    assert metadata["n"] == 3 and "obj" not in metadata and 5 not in metadata


async def test_a_paused_conversation_only_stores_the_message_after_one_ticket_read(agent, bot):
    key = "web:waiting"
    await agent.tracker_store.save(DialogueStateTracker.from_events(key, [
        SessionStarted(timestamp=1.0), UserUttered("转人工", timestamp=2.0),
        ConversationPaused(timestamp=3.0)]))  # hours ago: Rasa would start a new session
    reads = []

    async def ticket_open(conversation):
        reads.append(str(conversation))
        return str(conversation) == key

    pipeline = make_pipeline(agent, paused=ticket_open)
    messages = await pipeline.handle(Inbound(channel="web", sender="waiting",
                                             text=f"还有人吗 {CARD}"), bot)
    assert bot.received == [] and texts(messages) == [screening.PII_REMINDER]
    assert reads == [key], "the pause is read once per turn, from the ticket"
    tracker = await agent.tracker_store.retrieve(key)
    assert tracker.latest_message.text.startswith("还有人吗") and CARD not in tracker.latest_message.text
    # The ticket, not the tracker, decides: a conversation without one goes to the bot.
    await pipeline.handle(Inbound(channel="web", sender="free", text="你好"), bot)
    assert [m.sender_id for m in bot.received] == ["web:free"]


async def _down():
    return False


@pytest.mark.parametrize("channel", CHANNELS)
async def test_failures_give_the_same_apology_and_drop_partial_output(agent, channel):
    async def boom(message):
        await message.output_channel.send_text_message(message.sender_id, "half an answer")
        raise ConnectionError("lock store down")

    async def failing_action(message):
        await message.output_channel.send_text_message(message.sender_id, "misleading")
        logging.getLogger("rasa.core.processor").error(
            "Encountered an exception while running action 'action_x'.Bot will continue")

    async def silent(message):
        return None

    pipeline = make_pipeline(agent)
    for turn in (boom, failing_action):
        messages = await pipeline.handle(Inbound(channel=channel, sender="u", text="你好"), turn)
        assert texts(messages) == [screening.FAILED]
    # Silence is an apology only when the action server is unreachable.
    assert await make_pipeline(agent).handle(Inbound(channel=channel, sender="u", text="你好"),
                                             silent) == []
    down = make_pipeline(agent, health=_down)
    assert texts(await down.handle(Inbound(channel=channel, sender="u", text="你好"), silent)) == [
        screening.FAILED]
    # The PII reminder stays in front of the apology.
    messages = await pipeline.handle(Inbound(channel=channel, sender="u", text=f"卡{CARD}"), boom)
    assert texts(messages) == [screening.PII_REMINDER, screening.FAILED]


async def test_an_action_failure_in_another_turn_does_not_count(agent, bot):
    logging.getLogger("rasa.core.processor").error("Encountered an exception while running action 'y'")
    messages = await make_pipeline(agent).handle(Inbound(channel="rest", sender="u", text="你好"), bot)
    assert texts(messages) == ["echo:你好"]


def test_one_pipeline_per_server():
    from types import SimpleNamespace

    app = SimpleNamespace(ctx=SimpleNamespace(agent=None))
    first = pipeline_for(app)
    assert isinstance(first, TurnPipeline) and pipeline_for(app) is first
    assert isinstance(first.limiter, RateLimiter)


def test_deliverable_drops_the_recipient():
    assert deliverable({"recipient_id": "web:x", "text": "hi"}) == {"text": "hi"}
