"""Attacks on the web chat's sessions, played against the channel on a real Sanic server.

Each test is an attacker: reusing a token after logout or after an agent
ended the session, flooding POST /token from one address (also behind forged
X-Forwarded-For / X-Real-IP headers), opening more sockets than an address
may, holding engine.io connections without a session, and idling. The
channel runs in a Sanic app like in production (Rasa mounts the same
blueprint); clients are python-socketio's ``AsyncClient`` and aiohttp. The
two-replica tests share a throwaway redis-server.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

import aiohttp
import jwt
import pytest
import socketio
from sanic import Sanic
from socketio import packet

from walletbot.channels.web.channel import SOCKETIO_PATH, WebChatInput
from walletbot.channels.web.sessions import end_web_session
from walletbot.store.db import make_engine
from walletbot.store.service import WalletService

from tests.walletbot.channels.wechat.doubles import free_port
from tests.walletbot.conftest import redis_server_binary, redis_url  # noqa: F401  (fixtures)
from tests.walletbot.turns.doubles import FakeAgent, ScriptedBot, make_pipeline

KEY = "a-test-web-key-that-is-32-bytes-long"
WAIT = 5.0


@pytest.fixture(autouse=True)
def _sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Sanic, "test_mode", True)


@pytest.fixture
def wallet(tmp_path) -> WalletService:
    """The real wallet DB (SQLite, demo users seeded): bindings land in its table."""
    return WalletService(lambda: make_engine(f"sqlite:///{tmp_path / 'wallet.db'}"), demo=True)


def make_channel(wallet: Optional[WalletService] = None, **options: Any) -> WebChatInput:
    if wallet is not None:
        async def bind(*, session_id: str, user_id: str) -> None:
            await wallet.bind(channel="web", sender_id=session_id, user_id=user_id)

        async def unbind(*, session_id: str) -> bool:
            return await wallet.unbind(channel="web", sender_id=session_id)

        options.setdefault("bind", bind)
        options.setdefault("unbind", unbind)
    # Long polls end at the next ping: with 25 s, each client's disconnect waits that long.
    options.setdefault("socketio_options", {"ping_interval": 1, "ping_timeout": 2})
    return WebChatInput(jwt_key=KEY, **options)


@dataclass
class Served:
    app: Sanic
    base: str
    channel: WebChatInput
    agent: FakeAgent

    @property
    def web(self) -> str:
        return f"{self.base}/webhooks/web"


@asynccontextmanager
async def serve(channel: WebChatInput) -> AsyncIterator[Served]:
    """The channel's blueprint in a Sanic app on a free port (listeners and all)."""
    agent = FakeAgent()
    if channel.pipeline is None:
        channel.pipeline = make_pipeline(agent)
    app = Sanic(f"web_security_{uuid.uuid4().hex[:8]}")
    app.ctx.agent = agent
    app.ctx.input_channels = [channel]
    app.blueprint(channel.blueprint(ScriptedBot(agent)), url_prefix="/webhooks/web")
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True,
                                     access_log=False)
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield Served(app, f"http://127.0.0.1:{port}", channel, agent)
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()
        await channel.store.close()


async def http(method: str, url: str, *, body: Any = None, token: Optional[str] = None,
               headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any, Dict[str, str]]:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as client:
        async with client.request(method, url, json=body, headers=sent) as response:
            text = await response.text()
            try:
                data = json.loads(text)
            except ValueError:
                data = text
            return response.status, data, dict(response.headers)


async def mint(served: Served, user: Optional[str] = None, **kwargs: Any) -> Tuple[int, Any]:
    status, body, _ = await http("POST", f"{served.web}/token", body={"user": user}, **kwargs)
    return status, body


def session_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["sub"]


class QuickClient(socketio.AsyncClient):
    """python-socketio's client, closing without waiting for its pending long-poll.

    (engine.io's server answers a poll pending at the client's close only at
    the next ping; the page's browser does not wait for it either.)
    """

    async def disconnect(self) -> None:
        for namespace in self.namespaces:
            await self._send_packet(self.packet_class(packet.DISCONNECT, namespace=namespace))
        await self.eio.disconnect(abort=True)


@dataclass
class Chat:
    """A page's socket.io client: what it received, how it ended."""

    client: socketio.AsyncClient
    bot: List[Dict[str, Any]] = field(default_factory=list)
    ends: List[Dict[str, Any]] = field(default_factory=list)
    errors: List[Any] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)

    async def say(self, text: str) -> None:
        await self.client.emit("user_uttered", {"message": text})

    async def until(self, predicate, what: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if self.client.connected:
            await self.client.disconnect()


async def open_chat(served: Served, token: Any, *, transport: str = "polling",
                    headers: Optional[Dict[str, str]] = None) -> Chat:
    """Connects like the page does; raises socketio.exceptions.ConnectionError when refused."""
    client = QuickClient(reconnection=False)
    chat = Chat(client)
    client.on("bot_uttered", lambda data: chat.bot.append(data))
    client.on("session_end", lambda data: chat.ends.append(data))
    client.on("connect_error", lambda data: chat.errors.append(data))
    client.on("disconnect", lambda *args: chat.disconnected.set())
    try:
        await client.connect(served.base, socketio_path=SOCKETIO_PATH, auth={"token": token},
                             transports=[transport], headers=headers or {}, wait_timeout=WAIT)
    except socketio.exceptions.ConnectionError as error:
        raise Refusal(chat.errors[-1] if chat.errors else None) from error
    return chat


class Refusal(Exception):
    """The server refused the socket.io connection; ``data`` is what connect_error carried."""

    def __init__(self, data: Any) -> None:
        super().__init__(data)
        self.data = data


async def refused(served: Served, token: Any, **kwargs: Any) -> str:
    """Why the connection was refused (``data.reason``); fails the test if it was accepted."""
    try:
        chat = await open_chat(served, token, **kwargs)
    except Refusal as refusal:
        # What the page's connect_error gets: err.message (shown), err.data.reason.
        assert isinstance(refusal.data, dict) and refusal.data.get("message"), refusal.data
        return refusal.data["data"]["reason"]
    await chat.close()
    raise AssertionError("the connection was accepted")


# --- reusing a token after logout -------------------------------------------


async def test_a_token_is_dead_after_logout_everywhere(wallet):
    async with serve(make_channel(wallet)) as served:
        status, issued = await mint(served, "zhangsan")
        assert status == 200, issued
        token, session = issued["token"], session_of(issued["token"])
        assert (await wallet.user_for(channel="web", sender_id=session)).user_id == "U1001"
        chat = await open_chat(served, token)
        other_tab = await open_chat(served, token)
        await chat.say("你好")
        await chat.until(lambda: chat.bot, "the bot's answer")
        assert (await http("GET", f"{served.web}/history", token=token))[0] == 200

        status, body, _ = await http("POST", f"{served.web}/logout", token=token)
        assert status == 200 and body["ok"] is True, body

        # The attacker kept the token (a shared computer, a copied localStorage).
        status, body, _ = await http("GET", f"{served.web}/history", token=token)
        assert status == 401 and body["error"] == "会话无效或已过期"
        assert await refused(served, token) == "revoked"
        # Pages still open on the session are told and disconnected.
        for page in (chat, other_tab):
            await asyncio.wait_for(page.disconnected.wait(), WAIT)
            assert {"reason": "logout"} in page.ends
        # The wallet user is no longer bound to the session.
        assert await wallet.user_for(channel="web", sender_id=session) is None
        assert served.channel._sockets == {} and not served.channel._per_address
        # Logging out again is harmless; a forged token cannot log anyone out.
        assert (await http("POST", f"{served.web}/logout", token=token))[0] == 200
        forged = jwt.encode({"sub": "web-victim", "exp": time.time() + 60}, "k" * 40)
        assert (await http("POST", f"{served.web}/logout", token=forged))[0] == 401
        assert (await http("POST", f"{served.web}/logout"))[0] == 401


async def test_a_revoked_socket_that_stays_connected_cannot_talk(wallet):
    """Even a socket the disconnect missed (another replica while Redis hiccuped) is refused."""
    channel = make_channel(wallet, sweep_interval=60)
    async with serve(channel) as served:
        _, issued = await mint(served, "lisi")
        chat = await open_chat(served, issued["token"])
        session = session_of(issued["token"])
        await channel.store.revoke(session, 60)  # revoked behind the socket's back
        await chat.say("帮我查一下WD202611180002")
        await asyncio.wait_for(chat.disconnected.wait(), WAIT)
        assert chat.ends == [{"reason": "revoked"}] and chat.bot == []
        assert await served.agent.events(f"web:{session}") == []


# --- the agent ends the session ---------------------------------------------


async def test_a_token_is_dead_after_the_agent_ends_the_session(wallet):
    async with serve(make_channel(wallet)) as served:
        _, issued = await mint(served, "zhangsan")
        token, session = issued["token"], session_of(issued["token"])
        chat = await open_chat(served, token)
        await chat.say("转人工")
        await chat.until(lambda: chat.bot, "the bot's answer")

        ended = await end_web_session(served.app, f"web:{session}")
        assert ended["session"] == session and ended["sockets"] == 1 and ended["unbound"] is True

        await asyncio.wait_for(chat.disconnected.wait(), WAIT)
        assert chat.ends == [{"reason": "ended"}]
        assert (await http("GET", f"{served.web}/history", token=token))[0] == 401
        assert await refused(served, token) == "revoked"
        assert await wallet.user_for(channel="web", sender_id=session) is None
        # Other sessions are untouched.
        _, other = await mint(served)
        assert (await http("GET", f"{served.web}/history", token=other["token"]))[0] == 200
        with pytest.raises(ValueError):
            await end_web_session(served.app, "wechat:o_demo_zhangsan")


async def test_logout_on_one_replica_ends_the_session_on_the_other(redis_url, wallet):  # noqa: F811
    """Two replicas on one Redis: revocation, the disconnect and the token limit are shared."""
    prefix = f"walletbot:test:{uuid.uuid4().hex[:8]}:"
    one = make_channel(wallet, redis_url=redis_url, tokens_per_minute=3)
    two = make_channel(wallet, redis_url=redis_url, tokens_per_minute=3, sweep_interval=60)
    for channel in (one, two):  # a fresh key space for this test
        channel.store.prefix = prefix
        channel.token_limiter.prefix = prefix + "token:"
    async with serve(one) as first, serve(two) as second:
        _, issued = await mint(first, "zhangsan")
        token = issued["token"]
        chat = await open_chat(second, token)  # the page is on the other replica
        await chat.until(lambda: second.channel.sio.manager.listening, "the fan-out subscription")
        assert (await http("POST", f"{first.web}/logout", token=token))[0] == 200
        # Disconnected at once (through Redis), not at the other replica's next sweep.
        await asyncio.wait_for(chat.disconnected.wait(), WAIT)
        assert {"reason": "logout"} in chat.ends
        assert (await http("GET", f"{second.web}/history", token=token))[0] == 401
        assert await refused(second, token) == "revoked"
        # The token budget of an address is one across replicas: 1 + 2 more, then 429.
        assert [(await mint(server))[0] for server in (second, first, second)] == [200, 200, 429]


# --- flooding POST /token ----------------------------------------------------


async def test_token_minting_flood_from_one_address_is_cut_off():
    async with serve(make_channel(tokens_per_minute=5)) as served:
        answers = [await mint(served) for _ in range(8)]
        assert [status for status, _ in answers] == [200] * 5 + [429] * 3
        status, body, headers = await http("POST", f"{served.web}/token", body={})
        assert status == 429 and body == {"error": "请求过于频繁，请稍后再试"}
        assert headers.get("Retry-After") == "60"
        # Malformed requests spend the budget too (no free probing).
        assert (await http("POST", f"{served.web}/token", body=["zhangsan"]))[0] == 429


async def test_forged_forwarding_headers_from_a_non_proxy_do_not_buy_new_budgets():
    # The test client is 127.0.0.1; here only 127.0.0.9 is a proxy, so it is an outsider.
    async with serve(make_channel(tokens_per_minute=5, trusted_proxies="127.0.0.9")) as served:
        statuses = []
        for n in range(8):
            forged = {"X-Forwarded-For": f"203.0.113.{n}", "X-Real-IP": f"198.51.100.{n}"}
            statuses.append((await mint(served, headers=forged))[0])
        assert statuses == [200] * 5 + [429] * 3


async def test_behind_the_proxy_the_real_address_counts_not_the_forged_part():
    # The client is the trusted proxy (nginx on loopback): it names the client.
    async with serve(make_channel(tokens_per_minute=2)) as served:
        # nginx appends the address it saw; the client controls only what comes before.
        statuses = [(await mint(served, headers={
            "X-Forwarded-For": f"10.9.9.{n}, 203.0.113.7"}))[0] for n in range(3)]
        assert statuses == [200, 200, 429]
        # X-Real-IP (set by nginx, replacing the client's) wins.
        assert (await mint(served, headers={"X-Real-IP": "198.51.100.1",
                                            "X-Forwarded-For": "203.0.113.7"}))[0] == 200
        # Other users behind the same proxy keep their own budgets.
        assert (await mint(served, headers={"X-Real-IP": "198.51.100.2"}))[0] == 200


async def test_rotating_ipv6_addresses_of_one_subscriber_share_a_budget():
    # One phone or home gets a /64: a new address per request is free for it.
    async with serve(make_channel(tokens_per_minute=3)) as served:
        statuses = [(await mint(served, headers={"X-Real-IP": f"2001:db8:7:7::{n:x}"}))[0]
                    for n in range(1, 6)]
        assert statuses == [200, 200, 200, 429, 429]
        assert (await mint(served, headers={"X-Real-IP": "2001:db8:7:8::1"}))[0] == 200


# --- sockets: too many, never joined, idle -----------------------------------


async def test_too_many_sockets_from_one_address_are_refused():
    async with serve(make_channel(max_sockets_per_address=3, trusted_proxies="127.0.0.9")) as served:
        _, issued = await mint(served)
        chats = [await open_chat(served, issued["token"]) for _ in range(3)]
        assert await refused(served, issued["token"]) == "too_many"
        # Forged forwarding headers do not make the attacker someone else.
        assert await refused(served, issued["token"], headers={
            "X-Forwarded-For": "203.0.113.50", "X-Real-IP": "203.0.113.51"}) == "too_many"
        # A closed socket frees its place.
        await chats[0].close()
        await chats[0].until(lambda: served.channel._per_address.get("127.0.0.1") == 2, "the count")
        chats[0] = await open_chat(served, issued["token"])
        for chat in chats:
            await chat.close()


async def test_engine_io_connections_without_a_session_are_dropped():
    """Holding bare engine.io connections (no socket.io connect) does not dodge the cap."""
    channel = make_channel(handshake_timeout=0.5, sweep_interval=0.2)
    async with serve(channel) as served:
        url = served.base.replace("http", "ws") + SOCKETIO_PATH + "/?EIO=4&transport=websocket"
        async with aiohttp.ClientSession() as client:
            async with client.ws_connect(url) as ws:
                opened = await ws.receive(timeout=WAIT)
                assert opened.data.startswith("0{")
                since = time.monotonic()
                while True:
                    message = await ws.receive(timeout=WAIT)
                    if message.type != aiohttp.WSMsgType.TEXT or message.data == "1":
                        break  # engine.io CLOSE (or the WebSocket closed)
                    if message.data == "2":
                        await ws.send_str("3")  # answers pings: alive, just never joins
                assert time.monotonic() - since < 2


async def test_an_idle_socket_is_dropped_even_though_pings_flow():
    # Pings every 0.2 s; idle after 1 s without a message.
    channel = make_channel(idle_timeout=1.0, sweep_interval=0.2,
                           socketio_options={"ping_interval": 0.2, "ping_timeout": 5})
    async with serve(channel) as served:
        _, issued = await mint(served)
        idle = await open_chat(served, issued["token"])
        started = time.monotonic()
        await asyncio.wait_for(idle.disconnected.wait(), WAIT)
        assert time.monotonic() - started >= 0.9
        assert idle.ends == [{"reason": "idle"}]
        # The page reconnects with the same (valid) token when the user writes again.
        again = await open_chat(served, issued["token"])
        await again.say("你好")
        await again.until(lambda: again.bot, "the bot's answer")
        await again.close()


async def test_a_socket_in_use_is_not_idle():
    channel = make_channel(idle_timeout=1.0, sweep_interval=0.2)
    async with serve(channel) as served:
        _, typing_token = await mint(served)
        _, waiting_token = await mint(served)
        typing = await open_chat(served, typing_token["token"])
        waiting = await open_chat(served, waiting_token["token"])  # an agent talks to this one
        output = channel.get_output_channel()
        for _ in range(8):
            await typing.say("你好")
            await output.send_text_message(session_of(waiting_token["token"]), "客服正在为您处理")
            await asyncio.sleep(0.3)
        assert typing.client.connected and waiting.client.connected
        assert typing.ends == [] and waiting.ends == []
        await typing.close()
        await waiting.close()


async def test_a_socket_is_dropped_when_its_token_expires():
    channel = make_channel(sweep_interval=0.2, anonymous_ttl=2)
    async with serve(channel) as served:
        _, issued = await mint(served)
        chat = await open_chat(served, issued["token"])
        await asyncio.wait_for(chat.disconnected.wait(), WAIT)
        assert chat.ends == [{"reason": "expired"}]


# --- the page ----------------------------------------------------------------


async def test_the_page_may_connect_only_to_its_own_origin():
    async with serve(make_channel()) as served:
        status, _, headers = await http("GET", f"{served.web}/chat")
        assert status == 200
        policy = dict(part.strip().split(" ", 1) for part in
                      headers["Content-Security-Policy"].split(";") if part.strip())
        # No ws:/wss: wildcards: a script injected into the page cannot ship data elsewhere.
        assert policy["connect-src"] == "'self'"
        assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
