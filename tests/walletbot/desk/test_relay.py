"""The relay records agents' words in the conversation in the order they reached it."""

from __future__ import annotations

import asyncio
import time

from rasa.core.channels.channel import CollectingOutputChannel
from rasa.shared.core.events import UserUttered

from tests.walletbot.desk.harness import FakeRasa
from walletbot.conversation import ConversationId
from walletbot.desk.relay import Relay


async def test_an_agent_reply_waiting_for_a_user_turn_is_stored_after_it_and_newer() -> None:
    """Found by the soak: the reply kept the time it was sent, older than the turn stored first."""
    rasa = FakeRasa()
    relay = Relay(rasa, [])
    relay.output_for = lambda channel: CollectingOutputChannel()  # type: ignore[assignment]
    conversation = ConversationId("wechat", "o_user")
    key = str(conversation)

    async with rasa.lock_store.lock(key):  # a user turn holds the conversation
        reply = asyncio.ensure_future(relay.say(conversation, text="您好", login="a1", name="小王"))
        await asyncio.sleep(0.05)  # the agent pressed send meanwhile
        tracker = await rasa.get_tracker(key)
        tracker.update(UserUttered("我的提现没到账", timestamp=time.time()))
        await rasa.save_tracker(tracker)
    await reply

    events = [e for e in (await rasa.get_tracker(key)).events if e.type_name in ("user", "bot")]
    assert [e.type_name for e in events] == ["user", "bot"]
    assert events[1].timestamp >= events[0].timestamp
