"""The REST channel in a Sanic app: its transport, its token, and that it uses the pipeline."""

import json
import urllib.error
import urllib.request

import pytest
from sanic import Sanic

from walletbot.channels.rest import GuardedRestInput
from walletbot.turns import screening

from tests.walletbot.channels.wechat.doubles import free_port
from tests.walletbot.turns.doubles import FakeAgent, make_pipeline


class Bot:
    def __init__(self):
        self.messages = []

    async def __call__(self, message):
        self.messages.append(message)
        await message.output_channel.send_text_message(message.sender_id, f"echo:{message.text}")


@pytest.fixture
async def served(request):
    bot = Bot()
    app = Sanic(f"rest_test_{free_port()}")
    options = getattr(request, "param", {})
    channel = GuardedRestInput(make_pipeline(FakeAgent(), per_minute=5), **options)
    app.blueprint(channel.blueprint(bot), url_prefix="/webhooks/rest")
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


def post(url, raw, content_type="application/json", token=None):
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=raw, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def _post(url, body, token=None):
    import asyncio
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await asyncio.get_running_loop().run_in_executor(
        None, lambda: post(url, raw, token=token))


async def test_a_message_reaches_the_bot_as_rest_whatever_the_body_claims(served):
    url, bot = served
    status, body = await _post(url, {"sender": "u1", "message": "怎么提现",
                                     "input_channel": "wechat"})
    assert status == 200 and body == [{"recipient_id": "u1", "text": "echo:怎么提现"}]
    assert bot.messages[0].input_channel == "rest"
    assert bot.messages[0].sender_id == "rest:u1"


@pytest.mark.parametrize("sender", ["web-0123456789abcdef01234567", "oUSER_OPENID_123",
                                    "web:web-0123456789abcdef01234567", "wechat:oUSER"])
async def test_a_sender_naming_another_channels_user_stays_in_a_rest_conversation(served, sender):
    url, bot = served
    await _post(url, {"sender": sender, "message": "我是他"})
    assert bot.messages[0].sender_id == f"rest:{sender}"


async def test_it_uses_the_turn_pipeline(served):
    url, bot = served
    status, body = await _post(url, {"sender": "u2", "message": "我的支付密码是abc123，卡号6222020200112233445",
                                     "metadata": {"note": "卡号6222020200112233445"}})
    assert status == 200
    seen = bot.messages[0]
    assert "abc123" not in seen.text and "6222020200112233445" not in seen.text
    assert "6222020200112233445" not in str(seen.metadata)
    assert body[0] == {"recipient_id": "u2", "text": screening.PII_REMINDER}
    replies = [(await _post(url, {"sender": "fast", "message": f"第{i}条"}))[1] for i in range(6)]
    assert replies[-1][0]["text"] == screening.RATE_LIMITED


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


TOKEN = "s2s-token-0123456789abcdef0123456789"


@pytest.mark.parametrize("served", [{"token": TOKEN}], indirect=True)
async def test_with_a_token_only_servers_that_send_it_get_in(served):
    url, bot = served
    assert (await _post(url, {"sender": "u", "message": "你好"}))[0] == 401
    assert (await _post(url, {"sender": "u", "message": "你好"}, token="wrong"))[0] == 401
    assert bot.messages == []
    status, body = await _post(url, {"sender": "u", "message": "你好"}, token=TOKEN)
    assert status == 200 and body[0]["text"] == "echo:你好"


@pytest.mark.parametrize("served", [{"enabled": False}], indirect=True)
async def test_switched_off_it_refuses_every_message(served):
    url, bot = served
    status, body = await _post(url, {"sender": "u", "message": "你好"})
    assert status == 403 and "REST_CHANNEL_TOKEN" in body["error"] and bot.messages == []


def test_production_switches_it_off_unless_a_token_is_set(monkeypatch):
    monkeypatch.setenv("WALLETBOT_ENV", "production")
    monkeypatch.delenv("REST_CHANNEL_TOKEN", raising=False)
    assert GuardedRestInput.from_credentials(None).enabled is False
    monkeypatch.setenv("REST_CHANNEL_TOKEN", TOKEN)
    channel = GuardedRestInput.from_credentials(None)
    assert channel.enabled and channel.token == TOKEN
    monkeypatch.setenv("WALLETBOT_ENV", "dev")
    monkeypatch.delenv("REST_CHANNEL_TOKEN")
    assert GuardedRestInput.from_credentials(None).enabled
