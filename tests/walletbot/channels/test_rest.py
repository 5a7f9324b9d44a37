"""The guarded REST channel in a Sanic app with a recording bot."""

import json
import urllib.error
import urllib.request

import pytest
from sanic import Sanic

from walletbot.channels import guard
from walletbot.channels.rest import GuardedRestInput
from tests.walletbot.channels.wechat.doubles import free_port


class Bot:
    def __init__(self):
        self.messages = []

    async def __call__(self, message):
        self.messages.append(message)
        await message.output_channel.send_text_message(message.sender_id, f"echo:{message.text}")


@pytest.fixture
async def served():
    bot = Bot()
    app = Sanic(f"rest_test_{free_port()}")
    app.blueprint(GuardedRestInput(guard.RateLimiter(5)).blueprint(bot), url_prefix="/webhooks/rest")
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True,
                                     access_log=False)
    await server.startup()
    await server.before_start()
    await server.after_start()
    yield f"http://127.0.0.1:{port}/webhooks/rest/webhook", bot
    await server.before_stop()
    await server.close()
    await server.after_stop()


def post(url, raw, content_type="application/json"):
    request = urllib.request.Request(url, data=raw, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def _post(url, body):
    import asyncio
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await asyncio.get_running_loop().run_in_executor(None, post, url, raw)


async def test_a_message_reaches_the_bot_as_rest_whatever_the_body_claims(served):
    url, bot = served
    status, body = await _post(url, {"sender": "u1", "message": "怎么提现",
                                     "input_channel": "wechat"})
    assert status == 200 and body == [{"recipient_id": "u1", "text": "echo:怎么提现"}]
    assert bot.messages[0].input_channel == "rest"


async def test_personal_data_is_masked_before_the_bot_and_the_user_reminded(served):
    url, bot = served
    status, body = await _post(url, {"sender": "u2", "message": "我的支付密码是abc123，卡号6222020200112233445"})
    assert status == 200
    seen = bot.messages[0].text
    assert "abc123" not in seen and "6222020200112233445" not in seen
    assert body[0]["text"] == guard.PII_REMINDER


@pytest.mark.parametrize("raw", [
    b"{not json", b"[]", b'"text"', b"null", json.dumps({"message": "hi"}).encode(),
    json.dumps({"sender": "", "message": "hi"}).encode(),
    json.dumps({"sender": 5, "message": "hi"}).encode(),
    json.dumps({"sender": "x" * 200, "message": "hi"}).encode(),
    json.dumps({"sender": "u", "message": ["hi"]}).encode(),
    json.dumps({"sender": "u", "message": {"a": 1}}).encode(),
])
async def test_bad_requests_get_a_clear_400(served, raw):
    url, bot = served
    status, body = await _post(url, raw)
    assert status == 400 and "error" in body
    assert bot.messages == []


async def test_huge_body_is_refused(served):
    url, bot = served
    status, _ = await _post(url, json.dumps({"sender": "u", "message": "字" * 40000}).encode())
    assert status == 413 and bot.messages == []


async def test_senders_over_the_limit_are_told_politely(served):
    url, bot = served
    replies = [(await _post(url, {"sender": "fast", "message": f"第{i}条"}))[1] for i in range(7)]
    assert [r[0]["text"] for r in replies[5:]] == [guard.RATE_LIMITED] * 2
    assert len(bot.messages) == 5
    status, body = await _post(url, {"sender": "calm", "message": "你好"})
    assert body[0]["text"] == "echo:你好"


async def test_empty_and_overlong_messages_are_answered_without_the_bot(served):
    url, bot = served
    assert (await _post(url, {"sender": "u", "message": "  "}))[1][0]["text"] == guard.EMPTY
    assert (await _post(url, {"sender": "u", "message": None}))[1][0]["text"] == guard.EMPTY
    long = (await _post(url, {"sender": "u3", "message": "字" * 3000}))[1][0]["text"]
    assert "太长" in long
    assert bot.messages == []
