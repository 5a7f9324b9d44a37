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


# --- session lifetimes ---------------------------------------------------------

HOUR = 3600


def _lifetime(channel, user_id):
    claims = channel.verify_token(channel.issue_token(session_id="web-abc", user_id=user_id, name=None))
    return claims["exp"] - claims["iat"]


def test_logged_in_tokens_live_shorter_than_anonymous_ones(channel):
    assert _lifetime(channel, "U1001") == 12 * HOUR
    assert _lifetime(channel, None) == 7 * 24 * HOUR


def test_lifetimes_come_from_credentials_as_rasa_expands_them():
    channel = WebChatInput.from_credentials(
        {"jwt_key": KEY, "session_hours": "2", "anonymous_session_hours": "0.5"})
    assert _lifetime(channel, "U1001") == 2 * HOUR and _lifetime(channel, None) == HOUR // 2
    for bad in ("0", "-1", "abc", "10000"):
        with pytest.raises(ValueError, match="WEB_SESSION_HOURS"):
            WebChatInput.from_credentials({"jwt_key": KEY, "session_hours": bad})
    with pytest.raises(ValueError, match="idle_minutes"):
        WebChatInput.from_credentials({"jwt_key": KEY, "idle_minutes": "0"})


def test_the_repository_credentials_give_a_logged_in_session_less_than_a_week(monkeypatch):
    from rasa.shared.utils.io import read_config_file

    from walletbot.settings import DEV_ENV_FILE, PROJECT_ROOT, read_env_file

    for key, value in read_env_file(DEV_ENV_FILE).items():
        monkeypatch.setenv(key, value)
    section = read_config_file(str(PROJECT_ROOT / "credentials.yml"))["walletbot.channels.web.WebChatInput"]
    channel = WebChatInput.from_credentials(section)
    assert channel.session_ttl == 12 * HOUR < 7 * 24 * HOUR
    assert channel.anonymous_ttl == 7 * 24 * HOUR
    assert (channel.token_limiter.per_minute, channel.max_sockets_per_address,
            channel.idle_timeout) == (10, 20, 30 * 60)
    assert [str(n) for n in channel.proxies.networks] == ["127.0.0.1/32", "::1/128"]
    # The production profile sets the same variables.
    prod = read_env_file(PROJECT_ROOT / "config" / "prod" / "prod.env")
    assert prod["WEB_SESSION_HOURS"] == "12" and prod["WEB_TRUSTED_PROXIES"] == "127.0.0.1,::1"


# --- client addresses ----------------------------------------------------------

from multidict import CIMultiDict  # noqa: E402

from walletbot.channels.web.addresses import TrustedProxies, client_address, parse_ip  # noqa: E402


class _Request:
    def __init__(self, ip, headers=()):
        self.ip = ip
        self.headers = CIMultiDict(headers)


def test_parse_ip_accepts_header_spellings_and_nothing_else():
    assert str(parse_ip(" 203.0.113.7 ")) == "203.0.113.7"
    assert str(parse_ip("203.0.113.7:5123")) == "203.0.113.7"
    assert str(parse_ip("[2001:db8::1]:443")) == "2001:db8::1"
    assert str(parse_ip("::ffff:127.0.0.1")) == "127.0.0.1"
    for junk in (None, "", "unknown", "evil.example", "1.2.3", "x" * 100, 5):
        assert parse_ip(junk) is None


async def test_forwarding_headers_count_only_from_a_trusted_peer():
    proxies = TrustedProxies("127.0.0.1, ::1, 10.0.0.0/8")
    forged = [("X-Real-IP", "198.51.100.1"), ("X-Forwarded-For", "203.0.113.9")]
    assert await client_address(_Request("192.0.2.10", forged), proxies) == "192.0.2.10"
    assert await client_address(_Request("127.0.0.1", forged), proxies) == "198.51.100.1"
    assert await client_address(_Request("::1"), proxies) == "::1"
    # X-Forwarded-For: the rightmost hop that is not one of our proxies.
    chain = [("X-Forwarded-For", "1.1.1.1, 203.0.113.9, 10.1.2.3")]
    assert await client_address(_Request("127.0.0.1", chain), proxies) == "203.0.113.9"
    split = [("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "203.0.113.9")]
    assert await client_address(_Request("10.0.0.5", split), proxies) == "203.0.113.9"
    garbage = [("X-Real-IP", "evil"), ("X-Forwarded-For", "1.1.1.1, nonsense")]
    assert await client_address(_Request("127.0.0.1", garbage), proxies) == "127.0.0.1"
    assert await client_address(_Request(""), proxies) == "unknown"


def test_ipv6_clients_are_counted_by_their_64():
    from walletbot.channels.web.addresses import limit_key

    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("203.0.113.7") == "203.0.113.7" and limit_key("unknown") == "unknown"


async def test_trusted_proxies_may_be_host_names():
    proxies = TrustedProxies(["localhost", "no-such-host.invalid"])
    assert await proxies.trusts(parse_ip("127.0.0.1"))
    assert not await proxies.trusts(parse_ip("192.0.2.1"))
    with pytest.raises(ValueError, match="trusted proxy"):
        TrustedProxies("10.0.0.1; rm -rf")


# --- the session store ---------------------------------------------------------

from walletbot.channels.web import sessions  # noqa: E402


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


async def _exercise(store, advance):
    assert not await store.is_revoked("web-a")
    await store.revoke("web-a", 10)
    await store.revoke("web-a", 2)  # never shortened
    assert await store.is_revoked("web-a") and not await store.is_revoked("web-b")
    assert await store.revoked_among(["web-a", "web-b"]) == {"web-a"}
    await store.touch("web-b", 10)
    assert set(await store.last_active(["web-a", "web-b"])) == {"web-b"}
    await store.add_socket("web-b", "sid1", 10)
    await store.add_socket("web-b", "sid2", 10)
    await store.remove_socket("web-b", "sid1")
    assert await store.sockets_of("web-b") == {"sid2"}
    await advance(11)
    assert not await store.is_revoked("web-a"), "entries expire with the token"
    assert await store.last_active(["web-b"]) == {}
    assert await store.sockets_of("web-b") == set()


async def test_the_memory_store_expires_what_it_keeps():
    clock = _Clock()
    store = sessions.MemorySessionStore(clock=clock, max_entries=3)

    async def advance(seconds):
        clock.now += seconds

    await _exercise(store, advance)
    for n in range(10):  # bounded: the oldest go
        await store.revoke(f"web-{n}", 100)
    assert len(store._revoked) <= 3 and await store.is_revoked("web-9")


async def test_the_redis_store_shares_and_expires(redis_url):
    import asyncio
    import uuid

    store = sessions.RedisSessionStore(redis_url, prefix=f"walletbot:test:{uuid.uuid4().hex[:8]}:")
    other_replica = sessions.RedisSessionStore(redis_url, prefix=store.prefix)
    await store.revoke("web-x", 60)
    assert await other_replica.is_revoked("web-x")
    await store.close()
    await other_replica.close()

    fast = sessions.RedisSessionStore(redis_url, prefix=f"walletbot:test:{uuid.uuid4().hex[:8]}:")
    # Redis keeps at least a second; scale the walk-through down to that.
    originals = {}
    for name in ("revoke", "touch", "add_socket"):
        originals[name] = getattr(fast, name)

    async def advance(seconds):
        await asyncio.sleep(1.3)

    async def revoke(session_id, ttl):
        await originals["revoke"](session_id, ttl / 10)

    async def touch(session_id, ttl):
        await originals["touch"](session_id, ttl / 10)

    async def add_socket(session_id, sid, ttl):
        await originals["add_socket"](session_id, sid, ttl / 10)

    fast.revoke, fast.touch, fast.add_socket = revoke, touch, add_socket
    await _exercise(fast, advance)
    await fast.close()


async def test_a_redis_outage_is_reported_not_guessed():
    from tests.walletbot.channels.wechat.doubles import free_port

    store = sessions.RedisSessionStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.3)
    for call in (store.is_revoked("web-a"), store.revoke("web-a", 5), store.revoked_among(["web-a"])):
        with pytest.raises(sessions.SessionStoreUnavailable):
            await call
    await store.close()


def test_session_ids_are_checked():
    assert sessions.session_of("web:web-abc") == sessions.session_of("web-abc") == "web-abc"
    for bad in ("wechat:o_x", "rest:web-abc", "web-", "web-" + "x" * 70, None, 5):
        with pytest.raises(ValueError):
            sessions.session_of(bad)


async def test_end_web_session_needs_the_web_channel():
    class App:
        class ctx:
            input_channels = []

    with pytest.raises(LookupError):
        await sessions.end_web_session(App(), "web-abc")


# --- revocation at each message ------------------------------------------------

def _wired(store=None):
    from tests.walletbot.turns.doubles import FakeAgent, ScriptedBot, make_pipeline

    agent = FakeAgent()
    bot = ScriptedBot(agent)
    channel = WebChatInput(jwt_key=KEY, pipeline=make_pipeline(agent), store=store)
    channel.blueprint(bot)
    sio = channel.sio
    emitted, disconnected = [], []

    async def get_session(sid, namespace=None):
        return {"sender": "web-abc", "exp": 4102444800}

    async def emit(event, data=None, room=None, to=None, **kwargs):
        emitted.append((event, room or to, data))

    async def disconnect(sid, namespace=None, ignore_queue=False):
        disconnected.append(sid)

    sio.get_session, sio.emit, sio.disconnect = get_session, emit, disconnect
    return channel, bot, emitted, disconnected


async def test_a_message_of_a_revoked_session_is_refused_and_its_socket_dropped():
    channel, bot, emitted, disconnected = _wired()
    await channel.store.revoke("web-abc", 60)
    await channel.sio.handlers["/"]["user_uttered"]("sid1", {"message": "你好"})
    assert bot.received == []
    assert emitted == [("session_end", "sid1", {"reason": "revoked"})] and disconnected == ["sid1"]


async def test_a_message_is_refused_when_revocations_cannot_be_checked():
    class Down(sessions.MemorySessionStore):
        async def is_revoked(self, session_id):
            raise sessions.SessionStoreUnavailable("ConnectionError")

    channel, bot, emitted, disconnected = _wired(Down())
    await channel.sio.handlers["/"]["user_uttered"]("sid1", {"message": "你好"})
    assert bot.received == [] and disconnected == []
    from walletbot.turns import screening

    assert emitted == [("bot_uttered", "sid1", {"text": screening.FAILED})]


# --- the binding goes with the session -----------------------------------------

async def test_unbind_removes_only_that_web_sessions_binding(tmp_path):
    from walletbot.store import queries
    from walletbot.store.db import make_engine
    from walletbot.store.service import WalletService

    service = WalletService(lambda: make_engine(f"sqlite:///{tmp_path / 'w.db'}"), demo=True)
    await service.bind(channel="web", sender_id="web-a", user_id="U1001")
    await service.bind(channel="web", sender_id="web-b", user_id="U1001")
    assert await service.unbind(channel="web", sender_id="web-a") is True
    assert await service.unbind(channel="web", sender_id="web-a") is False
    assert await service.user_for(channel="web", sender_id="web-a") is None
    assert (await service.user_for(channel="web", sender_id="web-b")).user_id == "U1001"
    assert await service.unbind(channel="web", sender_id="") is False
    with pytest.raises(ValueError):
        await service.run(queries.unbind_sender, channel="sms", sender_id="x")
    with pytest.raises(TypeError):
        queries.unbind_sender(None, "web", "web-a")  # keyword-only
