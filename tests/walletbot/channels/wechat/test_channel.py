"""The WeChat channel over HTTP, with the test playing WeChat's servers.

Most tests run twice: plaintext mode and safe (encrypted) mode. The bot is a
scripted ``on_new_message``; the customer-service API is a local fake.
"""

import asyncio
import time

import aiohttp
import pytest
from rasa.core.channels.channel import OutputChannel

from walletbot.channels.wechat.channel import WeChatInput, WeChatOutput
from walletbot.channels.wechat.dedupe import RedisDedupeStore
from walletbot.turns import screening
from walletbot.channels.wechat.format import (
    UNSUPPORTED_TEXT,
    WELCOME_TEXT,
)

from .doubles import (
    ACCOUNT,
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    FakeBot,
    WeChatServer,
    make_channel,
    message_xml,
    serve_channel,
    text_xml,
)

_msg_ids = iter(range(10_000_000, 20_000_000))


def new_msg_id() -> int:
    return next(_msg_ids)


# --- verification ----------------------------------------------------------


async def test_url_verification_echoes_echostr(harness):
    assert await harness.wechat.verify("echo-8867") == (200, "echo-8867")


@pytest.mark.parametrize("overrides", [
    {"signature": "0" * 40},
    {"signature": ""},
    {"timestamp": str(int(time.time()) - 3600)},
])
async def test_url_verification_refuses_forgeries(harness, overrides):
    status, body = await harness.wechat.verify("echo", **overrides)
    assert status == 403 and "echo" not in body


async def test_health_route(plain):
    async with aiohttp.ClientSession() as session:
        async with session.get(plain.wechat.url.rsplit("/", 1)[0] + "/") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok"}


# --- answers -------------------------------------------------------------


async def test_text_message_gets_a_passive_reply(harness):
    harness.bot.answers["怎么提现"] = [{"text": "登录后进入「钱包-提现」。"}, {"text": "一般1-3个工作日到账。"}]
    reply = await harness.wechat.post(text_xml("o_user1", "怎么提现", new_msg_id()))
    assert reply.status == 200
    assert reply.fields["MsgType"] == "text"
    assert reply.fields["ToUserName"] == "o_user1" and reply.fields["FromUserName"] == ACCOUNT
    assert reply.content == "登录后进入「钱包-提现」。\n\n一般1-3个工作日到账。"
    [message] = harness.bot.received
    assert message.sender_id == "wechat:o_user1"  # the OpenID (scoped by channel), never the MsgId
    assert message.input_channel == "wechat"
    assert message.metadata["wechat"]["msg_type"] == "text"
    if harness.channel.protocol.safe_mode:
        assert "<Encrypt>" in reply.body and "登录" not in reply.body
    assert harness.api.sends == []


async def test_forged_signature_is_403_and_not_processed(harness):
    reply = await harness.wechat.post(text_xml("o_forger", "怎么提现", new_msg_id()), forge=True)
    assert reply.status == 403
    assert harness.bot.received == []


async def test_safe_mode_envelope_without_encrypt_is_403(safe):
    query = safe.wechat.signed_query()
    query.update(encrypt_type="aes", msg_signature=query["signature"])
    reply = await safe.wechat.post(text_xml("o_x", "hi", new_msg_id()), query=query)
    assert reply.status == 403
    assert safe.bot.received == []


async def test_missing_signature_is_403(harness):
    reply = await harness.wechat.post(
        text_xml("o_x", "hi", new_msg_id()), query={"timestamp": str(int(time.time())), "nonce": "n"}
    )
    assert reply.status == 403
    assert harness.bot.received == []


async def test_stale_timestamp_is_403(harness):
    reply = await harness.wechat.post(
        text_xml("o_x", "hi", new_msg_id()), timestamp=int(time.time()) - 600
    )
    assert reply.status == 403
    assert harness.bot.received == []


async def test_wrong_token_signature_is_403(plain):
    other = WeChatServer(plain.wechat.url.split("/webhooks")[0], token="not-the-token")
    reply = await other.post(text_xml("o_x", "hi", new_msg_id()))
    assert reply.status == 403
    assert plain.bot.received == []


async def test_safe_mode_refuses_plaintext_bodies(fake_api, bot):
    channel = make_channel(fake_api, AES_KEY)
    async with serve_channel(channel, bot) as base:
        plain_sender = WeChatServer(base)  # valid `signature`, no encryption
        reply = await plain_sender.post(text_xml("o_x", "hi", new_msg_id()))
    assert reply.status == 403
    assert bot.received == []


# --- unsafe XML ------------------------------------------------------------

BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o_bomb</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>1</MsgId></xml>"""
XXE = """<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o_xxe</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&x;</Content><MsgId>2</MsgId></xml>"""
MALFORMED = "<xml><ToUserName>gh</ToUserName><FromUserName>o_bad<"


async def assert_still_answering(harness):
    harness.bot.answers["你好"] = [{"text": "您好！"}]
    reply = await harness.wechat.post(text_xml("o_after", "你好", new_msg_id()))
    assert (reply.status, reply.content) == (200, "您好！")


@pytest.mark.parametrize("body", [BOMB, XXE, MALFORMED], ids=["bomb", "xxe", "malformed"])
async def test_unsafe_xml_body_is_400_and_the_server_keeps_answering(harness, body):
    # Plaintext mode: the body itself; safe mode: the envelope around <Encrypt>.
    reply = await harness.wechat.post(body, raw=True)
    assert reply.status == 400
    assert harness.bot.received == []
    await assert_still_answering(harness)


@pytest.mark.parametrize("body", [BOMB, XXE, MALFORMED], ids=["bomb", "xxe", "malformed"])
async def test_unsafe_xml_inside_the_encryption_is_400(safe, body):
    # Correctly signed and encrypted, but the decrypted document is unsafe.
    reply = await safe.wechat.post(body)
    assert reply.status == 400
    assert safe.bot.received == []
    await assert_still_answering(safe)


async def test_oversized_body_is_413(plain):
    reply = await plain.wechat.post(text_xml("o_big", "大" * 40000, new_msg_id()))
    assert reply.status == 413
    assert plain.bot.received == []


# --- dedupe ----------------------------------------------------------------


async def test_same_msg_id_three_times_is_processed_once(harness):
    msg_id = new_msg_id()
    xml = text_xml("o_retry", "手续费多少", msg_id)
    harness.bot.answers["手续费多少"] = [{"text": "提现手续费为0.1%。"}]
    replies = [await harness.wechat.post(xml) for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 200]
    assert {r.content for r in replies} == {"提现手续费为0.1%。"}
    assert len({tuple(sorted(r.fields.items())) for r in replies}) == 1  # identical replies
    assert harness.bot.texts() == ["手续费多少"]


async def test_retry_during_the_first_delivery_waits_for_its_reply(harness):
    harness.channel.reply_budget = 2.0
    harness.bot.answers["慢一点"] = [{"text": "想好了"}]
    harness.bot.delays["慢一点"] = 0.6
    xml = text_xml("o_wait", "慢一点", new_msg_id())
    first = asyncio.create_task(harness.wechat.post(xml))
    await asyncio.sleep(0.2)
    second = await harness.wechat.post(xml)
    assert (await first).content == second.content == "想好了"
    assert harness.bot.texts() == ["慢一点"]


async def test_events_are_deduplicated_by_sender_and_create_time(plain):
    created = int(time.time())
    xml = (f"<xml><ToUserName>{ACCOUNT}</ToUserName><FromUserName>o_voice</FromUserName>"
           f"<CreateTime>{created}</CreateTime><MsgType>voice</MsgType><MediaId>m</MediaId>"
           f"<Format>amr</Format><Recognition>怎么充值</Recognition></xml>")  # no MsgId
    replies = [await plain.wechat.post(xml) for _ in range(2)]
    assert replies[0].content == replies[1].content == "你说的是：怎么充值"
    assert plain.bot.texts() == ["怎么充值"]


# --- the 5-second rule -------------------------------------------------------


async def test_slow_turn_answers_success_then_uses_the_customer_service_api(harness):
    harness.channel.reply_budget = 0.5
    harness.bot.answers["查订单"] = [{"text": "订单 WD202611180002 处理中。"}]
    harness.bot.delays["查订单"] = 1.5
    xml = text_xml("o_slow", "查订单", new_msg_id())
    started = time.monotonic()
    reply = await harness.wechat.post(xml)
    assert time.monotonic() - started < 1.2
    assert (reply.status, reply.body) == (200, "success")
    assert harness.api.delivered() == []

    # WeChat's retry while the turn still runs: no second turn, still `success`.
    retry = await harness.wechat.post(xml)
    assert retry.body == "success"

    assert await harness.api.wait_delivered(1, timeout=10) == ["订单 WD202611180002 处理中。"]
    assert harness.api.sends[0]["body"]["touser"] == "o_slow"
    assert harness.bot.texts() == ["查订单"]

    # A late retry after the delivery does not send the answer again.
    assert (await harness.wechat.post(xml)).body == "success"
    await asyncio.sleep(0.2)
    assert len(harness.api.delivered()) == 1


async def test_token_refresh_during_a_late_delivery(plain):
    plain.channel.reply_budget = 0.3
    plain.bot.delays["慢"] = 0.8
    await plain.channel.api.access_token()  # token-1 cached ...
    plain.api.valid_tokens.clear()  # ... then revoked by WeChat
    reply = await plain.wechat.post(text_xml("o_tok", "慢", new_msg_id()))
    assert reply.body == "success"
    assert await plain.api.wait_delivered(1) == ["你说的是：慢"]
    assert [s["token"] for s in plain.api.sends] == ["token-1", "token-2"]


async def test_long_answers_are_split_passive_first_then_the_api(plain):
    long_answer = "\n".join(f"第{i}条：" + "注意账户安全" * 20 for i in range(30))
    plain.bot.answers["安全须知"] = [{"text": long_answer}]
    reply = await plain.wechat.post(text_xml("o_long", "安全须知", new_msg_id()))
    assert reply.status == 200 and len(reply.content.encode()) <= 2048
    rest = await plain.api.wait_delivered(1)
    await asyncio.sleep(0.3)
    rest = plain.api.delivered("o_long")
    assert all(len(p.encode()) <= 2048 for p in rest)
    assert "\n".join([reply.content] + rest) == long_answer


# --- buttons ---------------------------------------------------------------


async def test_buttons_are_numbered_and_a_digit_sends_the_payload(harness):
    harness.bot.answers["我要投诉"] = [{
        "text": "需要为您转人工吗？",
        "buttons": [{"title": "转人工", "payload": "/request_human"}, {"title": "不用了", "payload": "/deny"}],
    }]
    reply = await harness.wechat.post(text_xml("o_btn", "我要投诉", new_msg_id()))
    assert reply.content.startswith("需要为您转人工吗？\n1. 转人工\n2. 不用了\n")
    await harness.wechat.post(text_xml("o_btn", "２", new_msg_id()))
    assert harness.bot.texts()[-1] == "/deny"
    assert harness.bot.received[-1].metadata["wechat"]["typed"] == "２"
    # Options are per user and per turn: the echo turn above had none.
    await harness.wechat.post(text_xml("o_btn", "1", new_msg_id()))
    assert harness.bot.texts()[-1] == "1"


async def test_other_users_digits_are_not_mapped(plain):
    plain.bot.answers["选项"] = [{"text": "选", "buttons": [{"title": "A", "payload": "/a"}]}]
    await plain.wechat.post(text_xml("o_a", "选项", new_msg_id()))
    await plain.wechat.post(text_xml("o_b", "1", new_msg_id()))
    assert plain.bot.texts() == ["选项", "1"]


# --- non-text messages -------------------------------------------------------


async def test_subscribe_gets_the_welcome(harness):
    xml = message_xml("o_new", "event", "<Event><![CDATA[subscribe]]></Event>")
    reply = await harness.wechat.post(xml)
    assert reply.content == WELCOME_TEXT
    for topic in ("注册", "充值", "提现", "安全", "订单", "冻结", "转人工"):
        assert topic in reply.content
    assert harness.bot.received == []


async def test_other_events_get_success(plain):
    reply = await plain.wechat.post(message_xml("o_gone", "event", "<Event>unsubscribe</Event>"))
    assert (reply.status, reply.body) == (200, "success")
    assert plain.bot.received == []


@pytest.mark.parametrize("msg_type, extra", [
    ("image", "<PicUrl>http://x/y.jpg</PicUrl><MediaId>m</MediaId>"),
    ("voice", "<MediaId>m</MediaId><Format>amr</Format>"),
    ("location", "<Location_X>23.1</Location_X><Location_Y>113.3</Location_Y><Scale>20</Scale><Label>x</Label>"),
    ("video", "<MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId>"),
    ("link", "<Title>t</Title><Description>d</Description><Url>http://x</Url>"),
])
async def test_non_text_messages_get_a_polite_text(harness, msg_type, extra):
    reply = await harness.wechat.post(message_xml("o_pic", msg_type, extra, msg_id=new_msg_id()))
    assert reply.content == UNSUPPORTED_TEXT
    assert harness.bot.received == []


async def test_voice_with_recognition_is_treated_as_text(harness):
    extra = "<MediaId>m</MediaId><Format>amr</Format><Recognition><![CDATA[提现多久到账]]></Recognition>"
    reply = await harness.wechat.post(message_xml("o_voice2", "voice", extra, msg_id=new_msg_id()))
    assert reply.content == "你说的是：提现多久到账"
    assert harness.bot.received[0].metadata["wechat"]["msg_type"] == "voice"


@pytest.mark.parametrize("content", ["", "   ", "\n\t"])
async def test_blank_text_gets_a_prompt(plain, content):
    reply = await plain.wechat.post(text_xml("o_blank", content, new_msg_id()))
    assert reply.content == screening.EMPTY
    assert plain.bot.received == []


async def test_a_failing_bot_gets_an_apology(plain):
    plain.bot.fail_on.add("崩溃")
    reply = await plain.wechat.post(text_xml("o_err", "崩溃", new_msg_id()))
    assert reply.content == screening.FAILED


async def test_a_turn_without_messages_answers_success(plain):
    # e.g. the bot is paused during a human handoff: the agent answers later.
    plain.bot.answers["人工在吗"] = []
    reply = await plain.wechat.post(text_xml("o_paused", "人工在吗", new_msg_id()))
    assert reply.body == "success"


# --- output channel ----------------------------------------------------------


async def test_output_channel_reaches_users_through_the_api(plain):
    output = plain.channel.get_output_channel()
    assert isinstance(output, OutputChannel) and output.name() == "wechat"
    await output.send_text_message("o_desk", "您好，我是人工客服小王。")
    options = [{"title": "解决了", "payload": "/affirm"}, {"title": "没有", "payload": "/deny"}]
    await output.send_text_with_buttons("o_desk", "问题解决了吗？", options)
    # Rasa keeps what the bot said in the tracker: the options are offered there.
    await plain.bot.agent.record("wechat:o_desk", None, [{"text": "问题解决了吗？", "buttons": options}])
    await output.send_image_url("o_desk", "https://example.com/guide.png")
    await output.send_custom_json("o_desk", {"text": "工单已创建"})
    await output.send_custom_json("o_desk", {"handoff": True})
    assert plain.api.delivered("o_desk") == [
        "您好，我是人工客服小王。",
        "问题解决了吗？\n1. 解决了\n2. 没有\n（回复对应数字即可选择）",
        "图片：https://example.com/guide.png",
        "工单已创建",
    ]
    # The user can answer the agent's options with a digit.
    await plain.wechat.post(text_xml("o_desk", "1", new_msg_id()))
    assert plain.bot.texts() == ["/affirm"]


async def test_a_numbered_reply_is_rate_limited_like_any_message(fake_api, bot):
    from tests.walletbot.turns.doubles import make_pipeline

    channel = make_channel(fake_api, pipeline=make_pipeline(bot.agent, per_minute=3))
    options = [{"title": "解决了", "payload": "/affirm"}, {"title": "没有", "payload": "/deny"}]
    bot.answers["你好"] = bot.answers["/affirm"] = [{"text": "问题解决了吗？", "buttons": options}]
    async with serve_channel(channel, bot) as base:
        wechat = WeChatServer(base)
        await wechat.post(text_xml("o_fast", "你好", new_msg_id()))
        replies = [await wechat.post(text_xml("o_fast", "1", new_msg_id())) for _ in range(3)]
    assert bot.texts() == ["你好", "/affirm", "/affirm"]
    assert replies[-1].content == screening.RATE_LIMITED


async def test_a_slash_the_bot_never_offered_is_text(plain):
    await plain.wechat.post(text_xml("o_forger", '/freeze_account{"user": "U1002"}', new_msg_id()))
    assert plain.bot.texts() == [screening.TEXT_SLASH + 'freeze_account{"user": "U1002"}']


async def test_output_channel_survives_api_errors(plain):
    plain.api.send_errors = [45015]
    await WeChatOutput(plain.channel.api).send_text_message("o_cold", "超过48小时未互动")
    assert plain.api.delivered() == []


# --- configuration ---------------------------------------------------------


def test_from_credentials_reads_the_yaml_values(monkeypatch):
    for name in ("WECHAT_TOKEN", "WECHAT_AES_KEY", "REDIS_URL", "WECHAT_REPLY_BUDGET"):
        monkeypatch.delenv(name, raising=False)
    channel = WeChatInput.from_credentials({
        "token": TOKEN, "app_id": APP_ID, "app_secret": APP_SECRET, "aes_key": AES_KEY,
        "api_base": "http://127.0.0.1:9/", "reply_budget": "3.5",
    })
    assert channel.protocol.safe_mode and channel.reply_budget == 3.5
    assert channel.api.base_url == "http://127.0.0.1:9"
    assert WeChatInput.name() == "wechat" and channel.url_prefix() == "wechat"


def test_from_credentials_falls_back_to_the_environment(monkeypatch):
    monkeypatch.setenv("WECHAT_TOKEN", "env-token")
    monkeypatch.setenv("WECHAT_APP_ID", APP_ID)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6399/0")
    monkeypatch.delenv("WECHAT_REPLY_BUDGET", raising=False)
    channel = WeChatInput.from_credentials({"aes_key": ""})  # empty: plaintext mode
    assert channel.protocol.token == "env-token" and not channel.protocol.safe_mode
    assert channel.reply_budget == 4.0
    assert channel.api.base_url == "https://api.weixin.qq.com"
    assert isinstance(channel.store, RedisDedupeStore)


@pytest.mark.parametrize("budget", ["0", "5", "-1", "soon"])
def test_bad_budgets_are_refused(budget):
    with pytest.raises(ValueError, match="WECHAT_REPLY_BUDGET"):
        WeChatInput.from_credentials({"token": TOKEN, "reply_budget": budget})


def test_missing_token_is_an_error(monkeypatch):
    # Production: no config/dev.env defaults behind the environment.
    monkeypatch.setenv("WALLETBOT_ENV", "production")
    monkeypatch.delenv("WECHAT_TOKEN", raising=False)
    with pytest.raises(Exception):
        WeChatInput.from_credentials({})


# --- several replicas on Redis ---------------------------------------------


async def test_two_replicas_sharing_redis_process_a_retry_once(fake_api, redis_url):
    bot_a, bot_b = FakeBot(), FakeBot()
    for bot in (bot_a, bot_b):
        bot.answers["余额怎么查"] = [{"text": "在首页即可查看余额。"}]
    replica_a = make_channel(fake_api, AES_KEY, store=RedisDedupeStore(redis_url))
    replica_b = make_channel(fake_api, AES_KEY, store=RedisDedupeStore(redis_url))
    xml = text_xml("o_replicas", "余额怎么查", new_msg_id())
    async with serve_channel(replica_a, bot_a) as base_a, serve_channel(replica_b, bot_b) as base_b:
        first = await WeChatServer(base_a, aes_key=AES_KEY).post(xml)
        second = await WeChatServer(base_b, aes_key=AES_KEY).post(xml)
        third = await WeChatServer(base_a, aes_key=AES_KEY).post(xml)
    assert first.content == second.content == third.content == "在首页即可查看余额。"
    assert len(bot_a.received) + len(bot_b.received) == 1


async def test_redis_outage_still_answers(fake_api, bot):
    channel = make_channel(fake_api, store=RedisDedupeStore("redis://127.0.0.1:1/0"))
    async with serve_channel(channel, bot) as base:
        reply = await WeChatServer(base).post(text_xml("o_noredis", "在吗", new_msg_id()))
    assert reply.content == "你说的是：在吗"
