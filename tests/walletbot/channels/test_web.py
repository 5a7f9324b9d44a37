"""The web chat channel: tokens, static files, history."""

import time

import jwt
import pytest

from walletbot.channels.web.channel import WebChatInput, history_lines

KEY = "a-test-web-key-that-is-32-bytes-long"


@pytest.fixture
def channel():
    return WebChatInput(jwt_key=KEY)


def test_tokens_carry_the_session_and_user(channel):
    token = channel.issue_token(session_id="web-abc", user_id="U1001", name="张三")
    claims = channel.verify_token(token)
    assert claims["sub"] == "web-abc" and claims["uid"] == "U1001"
    assert channel.verify_token("Bearer " + token)["sub"] == "web-abc"


def test_foreign_expired_or_odd_tokens_are_refused(channel):
    other = WebChatInput(jwt_key="another-key-that-is-also-32-bytes-x")
    assert channel.verify_token(other.issue_token(session_id="web-x", user_id=None, name=None)) is None
    expired = jwt.encode({"sub": "web-x", "exp": time.time() - 5}, KEY, algorithm="HS256")
    assert channel.verify_token(expired) is None
    # A validly signed token must still name one of our web sessions.
    for sub in ("zhangsan", "o_demo_zhangsan", "web-" + "x" * 100):
        token = jwt.encode({"sub": sub, "exp": time.time() + 60}, KEY, algorithm="HS256")
        assert channel.verify_token(token) is None
    for junk in (None, "", 123, {"token": "x"}, "x" * 5000):
        assert channel.verify_token(junk) is None


def test_the_channel_needs_a_key():
    with pytest.raises(ValueError, match="WEB_JWT_SECRET"):
        WebChatInput(jwt_key="")


def test_from_credentials_reads_demo_login_flag():
    assert WebChatInput.from_credentials({"jwt_key": KEY, "demo_login": "false"}).demo_login is False
    assert WebChatInput.from_credentials({"jwt_key": KEY, "demo_login": "true"}).demo_login is True


def test_history_shows_button_titles_agents_and_buttons():
    events = [
        {"event": "user", "text": "转人工"},
        {"event": "bot", "text": "请打分", "data": {"buttons": [{"title": "5分", "payload": "/rate"}]}},
        {"event": "user", "text": "/rate", "metadata": {"button_title": "5分"}},
        {"event": "user", "text": "/affirm"},
        {"event": "bot", "text": "您好", "metadata": {"agent": "agent1", "agent_name": "小王"}},
        {"event": "action", "name": "action_listen"},
    ]
    assert history_lines(events) == [
        {"role": "user", "text": "转人工"},
        {"role": "bot", "text": "请打分", "buttons": [{"title": "5分", "payload": "/rate"}]},
        {"role": "user", "text": "5分"},
        {"role": "agent", "text": "您好", "agent": "小王"},
    ]


async def test_socket_messages_go_through_the_turn_pipeline():
    from tests.walletbot.turns.doubles import FakeAgent, ScriptedBot, make_pipeline
    from walletbot.turns import screening

    agent = FakeAgent()
    bot = ScriptedBot(agent)
    channel = WebChatInput(jwt_key=KEY, pipeline=make_pipeline(agent, per_minute=2))
    channel.blueprint(bot)
    sio = channel.sio
    emitted = []

    async def get_session(sid, namespace=None):
        return {"sender": "web-abc"}

    async def emit(event, data=None, room=None, **kwargs):
        emitted.append((event, room, data))

    sio.get_session, sio.emit = get_session, emit
    handler = sio.handlers["/"]["user_uttered"]
    await handler("sid1", {"message": "/deny", "title": "卡6222021234567890123"})
    await handler("sid1", {"message": "你好"})
    await handler("sid1", {"message": "你好"})
    seen = bot.received[0]
    assert seen.sender_id == "web:web-abc" and seen.input_channel == "web"
    assert seen.text == screening.TEXT_SLASH + "deny", "never offered: text, not an intent"
    assert [room for _, room, _ in emitted] == ["web-abc"] * 3
    assert emitted[-1][2] == {"text": screening.RATE_LIMITED}
