"""The production profile end to end: scripts/prod.sh with two Rasa replicas behind nginx.

One stack for the module (PostgreSQL, Redis, action server, two replicas,
nginx; about 90 s to start). Users talk to replica A, replica B and nginx in
turn, concurrently; the tracker store in PostgreSQL must then hold every
message once, in the order sent, each followed by the answer its sender got.
Conversations are read back through the replicas' HTTP API: it is for this
machine only, nginx answers 404 for it (tests/security/test_nginx_surface.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import aiohttp
import jwt
import psycopg2
import pytest
import redis
import socketio
import websockets
import yarl

from tests.prod.conftest import ProdStack, free_ports, http
from walletbot.turns import screening as guard
from walletbot.turns.ratelimit import DEFAULT_PER_MINUTE

pytestmark = pytest.mark.slow

# Training-set questions and small talk: each gets an answer and none pauses the bot.
QUESTIONS = ["你好", "提现多久到账", "怎么充值", "提现手续费", "怎么注册", "app在哪下载", "怎么退款", "谢谢"]

Sent = Tuple[str, List[str]]  # (message, texts of the answer the sender got)


def bot_texts(answer: List[Dict[str, Any]]) -> List[str]:
    return [m.get("text") or "" for m in answer]


def turns(events: List[Dict[str, Any]]) -> List[Sent]:
    """The conversation as (user text, bot texts until the next user message)."""
    result: List[Sent] = []
    for event in events:
        if event["event"] == "user":
            result.append((event.get("text") or "", []))
        elif event["event"] == "bot" and result:
            result[-1][1].append(event.get("text") or "")
    return result


def stored_user_texts(stack: ProdStack, sender: str) -> List[str]:
    """User messages of ``sender`` as rows of Rasa's `events` table, by id."""
    with psycopg2.connect(stack.env["TRACKER_DB_URL"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT data FROM events WHERE sender_id = %s AND type_name = 'user' "
                    "ORDER BY id", [sender if ":" in sender else f"rest:{sender}"])
        return [json.loads(row[0]).get("text") for row in cur.fetchall()]


def run_together(jobs: List[Any]) -> List[Any]:
    """Runs the callables at the same moment, one thread each; their results."""
    barrier = threading.Barrier(len(jobs))

    def run(job: Any) -> Any:
        barrier.wait(timeout=30)
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return [f.result(timeout=240) for f in [pool.submit(run, job) for job in jobs]]


def test_interleaved_users_on_both_replicas_keep_order_and_completeness(prod_stack: ProdStack):
    stack = prod_stack
    a, b = stack.replicas
    targets = [a, b, stack.nginx]
    users = ["zhangsan", "lisi", "prod-visitor-3", "prod-visitor-4"]

    def conversation(index: int, user: str) -> List[Sent]:
        sent = []
        for k in range(len(QUESTIONS)):
            text = QUESTIONS[(index + k) % len(QUESTIONS)]  # another order for each user
            base = targets[(index + k) % 3]                 # A, B, nginx, A, ...: never twice
            sent.append((text, bot_texts(stack.say(base, user, text))))
        return sent

    results = run_together([lambda i=i, u=u: conversation(i, u) for i, u in enumerate(users)])

    for user, sent in zip(users, results):
        assert all(answer for _, answer in sent), f"{user}: a message got no answer: {sent}"
        # Read back through each replica (the API is not public): both see the same,
        # complete conversation.
        for base in stack.replicas:
            assert turns(stack.tracker(base, user)["events"]) == sent, (user, base)
        assert stored_user_texts(stack, user) == [text for text, _ in sent], user


def test_one_user_on_both_replicas_at_once_is_serialised(prod_stack: ProdStack):
    """Messages of one conversation racing on A and B: one turn at a time, none lost."""
    stack = prod_stack
    a, b = stack.replicas
    on_a, on_b = QUESTIONS[1:4], QUESTIONS[4:7]
    users = ["burst-1", "burst-2", "burst-3"]

    def send(base: str, user: str, texts: List[str]) -> List[Sent]:
        return [(text, bot_texts(stack.say(base, user, text))) for text in texts]

    jobs = []
    for user in users:
        jobs += [lambda u=user: send(a, u, on_a), lambda u=user: send(b, u, on_b)]
    results = run_together(jobs)

    for n, user in enumerate(users):
        sent_a, sent_b = results[2 * n], results[2 * n + 1]
        stored = turns(stack.tracker(a, user)["events"])
        # Every message exactly once; each replica's messages in their order.
        assert sorted(t for t, _ in stored) == sorted(on_a + on_b), (user, stored)
        assert [t for t, _ in stored if t in on_a] == on_a
        assert [t for t, _ in stored if t in on_b] == on_b
        # Turns never overlap: after each message come exactly the answers its sender got.
        assert sorted(stored) == sorted(sent_a + sent_b), (user, stored, sent_a, sent_b)
        assert stored_user_texts(stack, user) == [t for t, _ in stored]


def test_a_question_asked_on_one_replica_is_answered_on_the_other(prod_stack: ProdStack):
    """Each replica keeps trackers between turns; a turn must see what the other just stored.

    A keeps the conversation from the greeting on; B asks whether to freeze the
    account; the user's "no" on A is the answer to that question only if A's
    kept tracker took in B's turn (otherwise it is a "no" out of the blue).
    """
    stack = prod_stack
    a, b = stack.replicas
    user = "replica-question-1"
    stack.say(a, user, "你好")

    asked = " ".join(bot_texts(stack.say(b, user, "我的账号被盗了")))
    answer = " ".join(bot_texts(stack.say(a, user, "不用了")))
    again = " ".join(bot_texts(stack.say(b, user, "我的账号被盗了")))

    assert "是否现在冻结您的账户" in asked
    assert "暂不冻结" in answer, answer
    assert "是否现在冻结您的账户" in again
    for base in stack.replicas:
        assert [text for text, _ in turns(stack.tracker(base, user)["events"])] == \
            ["你好", "我的账号被盗了", "不用了", "我的账号被盗了"]


def test_the_rate_limit_is_shared_by_both_replicas(prod_stack: ProdStack):
    """Alternating replicas does not double a sender's allowance (counted in Redis)."""
    stack = prod_stack
    a, b = stack.replicas
    limit = DEFAULT_PER_MINUTE  # prod.env does not override it
    user = "rate-limited-visitor"
    for n in range(limit):
        answer = bot_texts(stack.say((a, b)[n % 2], user, "你好"))
        assert answer and guard.RATE_LIMITED not in answer, (n, answer)
    # Each replica has seen only half of them; a per-replica limit would let these through.
    assert bot_texts(stack.say(a, user, "你好")) == [guard.RATE_LIMITED]
    assert bot_texts(stack.say(stack.nginx, user, "你好")) == [guard.RATE_LIMITED]
    # Other senders are not affected.
    assert guard.RATE_LIMITED not in bot_texts(stack.say(b, "another-visitor", "你好"))


def test_the_lock_store_is_redis_and_shared_by_both_replicas(prod_stack: ProdStack):
    stack = prod_stack
    client = redis.Redis.from_url(stack.redis_url)
    seen: List[Dict[str, Any]] = []
    listening = threading.Event()

    def monitor() -> None:
        with client.monitor() as commands:
            listening.set()
            for command in commands.listen():
                if "stop-monitor" in command["command"]:
                    return
                seen.append(command)

    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    assert listening.wait(10)
    time.sleep(0.2)
    a, b = stack.replicas
    run_together([lambda: stack.say(a, "lock-user", "怎么充值"),
                  lambda: stack.say(b, "lock-user", "提现手续费")])
    client.echo("stop-monitor")
    watcher.join(10)

    key = "walletbot:lock:rest:lock-user"
    on_key = [c for c in seen if key in c["command"]]
    scripts = [c for c in on_key if c["command"].startswith("EVALSHA")]  # the atomic lock store
    clients = {(c["client_address"], c["client_port"]) for c in scripts}
    issued = [c for c in on_key if c["command"].startswith("SET ") and "number" in c["command"]]
    assert len(clients) >= 2, f"lock commands from one client only: {on_key}"
    assert len(scripts) >= 4  # each turn: issue and release
    assert len(issued) >= 2   # written inside the scripts
    assert client.keys("walletbot:lock:*") == []  # every lock released
    assert [t for t, _ in turns(stack.tracker(a, "lock-user")["events"])] in (
        ["怎么充值", "提现手续费"], ["提现手续费", "怎么充值"])


def test_handoff_ticket_lands_in_the_postgres_wallet_db(prod_stack: ProdStack):
    stack = prod_stack
    a, _ = stack.replicas
    stack.say(a, "prod-handoff", "你好")
    answer = " ".join(bot_texts(stack.say(stack.nginx, "prod-handoff", "转人工")))
    with psycopg2.connect(stack.env["WALLET_DB_URL"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT ticket_id, channel, category, status FROM tickets WHERE sender_id = %s",
                    ["prod-handoff"])
        rows = cur.fetchall()
    assert len(rows) == 1, rows
    ticket_id, channel, category, status = rows[0]
    assert (channel, category, status) == ("rest", "request_human", "queued")
    assert f"T{ticket_id:06d}" in answer, answer


def test_http_api_is_refused_through_nginx_and_needs_the_token_on_a_replica(prod_stack: ProdStack):
    """Rasa's HTTP API: 404 through nginx whatever the token; on a replica, the token."""
    stack = prod_stack
    for query in ("", "?token=wrong", f"?token={stack.token}"):
        assert http(f"{stack.nginx}/conversations/zhangsan/tracker{query}")[0] == 404, query
        assert http(f"{stack.nginx}/status{query}")[0] == 404, query
    for replica in stack.replicas:  # the admin listener, on 127.0.0.1 only
        assert http(f"{replica}/conversations/zhangsan/tracker")[0] == 401
        assert http(f"{replica}/conversations/zhangsan/tracker?token=wrong")[0] == 401
        assert http(f"{replica}/status?token={stack.token}")[0] == 200


def test_rest_through_nginx_needs_the_server_token(prod_stack: ProdStack):
    stack = prod_stack
    body = {"sender": "web-0123456789abcdef01234567", "message": "你好"}
    for headers in ({}, {"Authorization": "Bearer wrong"},
                    {"Authorization": f"Bearer {stack.token}"}):  # the API token is not it
        assert http(f"{stack.nginx}/webhooks/rest/webhook", body=body, headers=headers)[0] == 401
    assert stack.say(stack.nginx, "rest-caller", "你好")


def route_cookies(stack: ProdStack) -> Dict[str, str]:
    """A `wb_route` cookie value that nginx sends to each replica (``host:port`` → value)."""
    found: Dict[str, str] = {}
    for i in range(64):
        value = f"{i:032x}"
        status, _, headers = http(f"{stack.nginx}/webhooks/web/", headers={"Cookie": f"wb_route={value}"})
        assert status == 200
        assert f"wb_route={value}" in headers.get("Set-Cookie", "")
        time.sleep(0.05)
        line = [l for l in stack.access_log.read_text().splitlines() if '"GET /webhooks/web/"' in l][-1]
        upstream = line.split("upstream=")[1].split()[0]
        found.setdefault(upstream, value)
        if len(found) == 2:
            return found
    raise AssertionError(f"nginx sent every web session to the same replica: {found}")


def message_text(data: Dict[str, Any]) -> str:
    """Text of a ``bot_uttered`` event: the bot's, or an agent's (``{"custom": {...}}``)."""
    return data.get("text") or (data.get("custom") or {}).get("text") or ""


class PollingChat:
    """The web page's socket.io client on long-polling, with the page's cookies."""

    def __init__(self, base: str, cookie: str) -> None:
        self.base, self.cookie, self.got = base, cookie, []  # type: ignore[var-annotated]

    async def open(self, token: str) -> None:
        # Like a browser holding the page's cookie (unsafe=True: aiohttp otherwise keeps
        # no cookie for an IP address such as 127.0.0.1).
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.http.cookie_jar.update_cookies({"wb_route": self.cookie},
                                            yarl.URL(f"{self.base}/webhooks/web/"))
        self.client = socketio.AsyncClient(reconnection=False, http_session=self.http)
        self.client.on("bot_uttered", lambda data: self.got.append(message_text(data)))
        await self.client.connect(self.base, socketio_path="/webhooks/web/socket.io",
                                  auth={"token": token}, transports=["polling"], wait_timeout=20)

    async def say(self, text: str) -> None:
        await self.client.emit("user_uttered", {"message": text})

    async def close(self) -> None:
        # disconnect() would wait for the pending long-poll (up to the 25 s ping).
        try:
            await asyncio.wait_for(self.client.disconnect(), 2)
        except asyncio.TimeoutError:
            pass
        await self.http.close()


class WebSocketChat:
    """socket.io over a WebSocket from the first request (engine.io v4 packets by hand).

    python-engineio's own WebSocket client needs a newer aiohttp than Rasa allows.
    """

    def __init__(self, base: str, cookie: str) -> None:
        self.url = base.replace("http://", "ws://") + "/webhooks/web/socket.io/?EIO=4&transport=websocket"
        self.cookie, self.got = cookie, []  # type: ignore[var-annotated]
        self.connected = asyncio.Event()

    async def open(self, token: str) -> None:
        self.ws = await websockets.connect(self.url, extra_headers={"Cookie": f"wb_route={self.cookie}"})
        assert (await asyncio.wait_for(self.ws.recv(), 20)).startswith("0{")  # engine.io open
        await self.ws.send("40" + json.dumps({"token": token}))              # socket.io connect
        self.reader = asyncio.create_task(self._read())
        await asyncio.wait_for(self.connected.wait(), 20)

    async def _read(self) -> None:
        async for packet in self.ws:
            if packet == "2":
                await self.ws.send("3")  # pong
            elif packet.startswith("40"):
                self.connected.set()
            elif packet.startswith("42"):
                event, *args = json.loads(packet[2:])
                if event == "bot_uttered":
                    self.got.append(message_text(args[0]))

    async def say(self, text: str) -> None:
        await self.ws.send("42" + json.dumps(["user_uttered", {"message": text}]))

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


async def wait_for(got: List[str], needle: str) -> None:
    for _ in range(150):
        if any(needle in text for text in got):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"no message containing {needle!r}: {got}")


async def test_web_chat_through_nginx_is_sticky_and_fans_out_across_replicas(prod_stack: ProdStack):
    """socket.io through nginx (long-polling and WebSocket); an agent on the other replica."""
    stack = prod_stack
    log_start = len(stack.access_log.read_text())
    cookies = route_cookies(stack)
    (polling_upstream, polling_cookie), (ws_upstream, ws_cookie) = sorted(cookies.items())
    polling = PollingChat(stack.nginx, polling_cookie)
    socket_chat = WebSocketChat(stack.nginx, ws_cookie)
    opened = []
    try:
        sessions = []
        for chat in (polling, socket_chat):
            status, issued, _ = http(f"{stack.nginx}/webhooks/web/token", body={})
            assert status == 200, issued
            sessions.append(jwt.decode(issued["token"], options={"verify_signature": False})["sub"])
            await chat.open(issued["token"])
            opened.append(chat)
        for chat in opened:
            await chat.say("提现多久到账")
        for chat in opened:
            await wait_for(chat.got, "工作日")

        # Handoff from the polling page (on one replica); the agent uses the other one.
        await polling.say("转人工")
        await wait_for(polling.got, "工单")
        other = next(r for r in stack.replicas if not r.endswith(polling_upstream))
        token = await asyncio.to_thread(desk_login, other, stack.agent_password)
        ticket = await asyncio.to_thread(desk_ticket_for, other, token, sessions[0])
        for path, body in ((f"tickets/{ticket}/claim", {}),
                           (f"tickets/{ticket}/reply", {"text": "跨副本的人工回复"})):
            status, answer, _ = await asyncio.to_thread(
                http, f"{other}/webhooks/desk/api/{path}", body=body,
                headers={"Authorization": f"Bearer {token}"})
            assert status == 200, answer
        # Emitted on the other replica, delivered through Redis to this page's session.
        await wait_for(polling.got, "跨副本的人工回复")
    finally:
        for chat in opened:
            await chat.close()
    log = stack.access_log.read_text()[log_start:]
    # Every long-poll reached the replica holding its session; the WebSocket was upgraded.
    assert '/webhooks/web/socket.io/" 400' not in log, log
    assert f'"GET /webhooks/web/socket.io/" 101' in log and ws_upstream in log


def desk_login(base: str, password: str) -> str:
    status, body, _ = http(f"{base}/webhooks/desk/login", body={"login": "admin", "password": password})
    assert status == 200, body
    return body["token"]


def desk_ticket_for(base: str, token: str, sender: str) -> int:
    status, body, _ = http(f"{base}/webhooks/desk/api/tickets", headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body
    matches = [t["id"] for t in body["tickets"] if t["sender_id"] == sender]
    assert len(matches) == 1, body
    return matches[0]


# --- Redis outage ---------------------------------------------------------------

OUTAGE_ANSWER_SECONDS = 6  # while Redis is down, every message is answered this fast
RECOVERY_SECONDS = 30      # after Redis is back, both replicas answer normally within this
FAQ, FAQ_ANSWER = "怎么提现", "提现步骤如下"


def redis_admin(stack: ProdStack, port: Optional[int] = None) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port or stack.ports["redis"],
                       password=stack.env["REDIS_PASSWORD"], socket_timeout=5)


def redis_server_pid(stack: ProdStack) -> int:
    """The redis-server that scripts/prod.sh started (its own child)."""
    pid = int(redis_admin(stack).info("server")["process_id"])
    stat = Path(f"/proc/{pid}/stat").read_text()
    assert int(stat.rsplit(")", 1)[1].split()[1]) == stack.process.pid, "not prod.sh's Redis"
    return pid


@contextmanager
def redis_hangs(stack: ProdStack) -> Iterator[None]:
    """Redis stops answering (SIGSTOP): connections open, nothing comes back.

    The worst kind of outage for a client, which waits for its timeout (a
    frozen host, a network partition). Resumed (SIGCONT) on the way out.
    """
    pid = redis_server_pid(stack)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@contextmanager
def redis_down(stack: ProdStack) -> Iterator[None]:
    """Redis goes away: its port refuses connections and every connection is dropped.

    scripts/prod.sh stops the whole stack when any of its servers exits, so
    the server cannot really be killed and restarted here. It is moved to a
    spare port instead and drops every client, which is what the replicas see
    of a stopped Redis. On the way out it comes back on its own port with the
    same password and configuration (it is the same server process) and empty,
    as a restart without persistence (prod.sh's `save ""`) leaves it.
    """
    port, spare = stack.ports["redis"], free_ports(1)[0]
    redis_admin(stack).config_set("port", spare)
    moved = redis_admin(stack, spare)
    try:
        for kind in ("normal", "pubsub"):
            moved.client_kill_filter(_type=kind, skipme=True)
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, "Redis still listening"
        yield
    finally:
        moved.config_set("port", port)
        redis_admin(stack).flushall()


def timed(call: Callable[[], Any]) -> Tuple[float, Any]:
    """``(seconds, result)``; an exception (a client timeout) is the result."""
    started = time.monotonic()
    try:
        result = call()
    except Exception as error:  # a hang shows up as the client's timeout
        result = error
    return time.monotonic() - started, result


def say_timed(stack: ProdStack, base: str, sender: str, text: str) -> Tuple[float, Any]:
    """Posts to the REST channel; ``(seconds, (status, body))``."""
    headers = {"Authorization": f"Bearer {stack.env['REST_CHANNEL_TOKEN']}"}
    return timed(lambda: http(f"{base}/webhooks/rest/webhook", timeout=30, headers=headers,
                              body={"sender": sender, "message": text})[:2])


def assert_apology(seconds: float, result: Any, sender: str, where: str) -> None:
    assert result == (200, [{"recipient_id": sender, "text": guard.FAILED}]), (where, result)
    assert seconds < OUTAGE_ANSWER_SECONDS, f"{where}: {seconds:.1f} s for the apology"


class WeChat:
    """WeChat's servers posting a user's text message (signed, encrypted: safe mode)."""

    def __init__(self, stack: ProdStack, base: str) -> None:
        from wechatpy.crypto import WeChatCrypto

        from tests.walletbot.channels.wechat.doubles import WeChatServer

        self.server = WeChatServer(base, token=stack.env["WECHAT_TOKEN"])
        self.server.crypto = WeChatCrypto(stack.env["WECHAT_TOKEN"], stack.env["WECHAT_AES_KEY"],
                                          stack.env["WECHAT_APP_ID"])

    async def say(self, openid: str, text: str) -> Tuple[float, Any]:
        from tests.walletbot.channels.wechat.doubles import text_xml

        started = time.monotonic()
        try:
            reply = await self.server.post(text_xml(openid, text, random.randrange(1, 10 ** 15)),
                                           timeout=20)
            result: Any = (reply.status, reply.content)
        except Exception as error:
            result = error
        return time.monotonic() - started, result


async def web_answer(chat: "WebSocketChat", text: str, timeout: float = 30) -> Tuple[float, str]:
    """Says ``text`` in the web chat; ``(seconds, first message back)``."""
    seen = len(chat.got)
    started = time.monotonic()
    await chat.say(text)
    while len(chat.got) == seen and time.monotonic() - started < timeout:
        await asyncio.sleep(0.05)
    return time.monotonic() - started, chat.got[seen] if len(chat.got) > seen else ""


def wait_for_recovery(stack: ProdStack, probe: str) -> float:
    """Seconds until both replicas answer the FAQ again (each asked every 0.5 s)."""
    started = time.monotonic()
    for n, base in enumerate(stack.replicas):
        for attempt in range(1000):  # a new sender each time: no rate limit
            _, result = say_timed(stack, base, f"{probe}-{n}-{attempt}", FAQ)
            if isinstance(result, tuple) and result[0] == 200 and FAQ_ANSWER in str(result[1]):
                break
            assert isinstance(result, tuple) and result[0] < 500, (base, result)
            assert time.monotonic() - started < RECOVERY_SECONDS, f"{base} did not recover: {result}"
            time.sleep(0.5)
    return time.monotonic() - started


async def test_redis_outage_gets_a_clear_answer_and_the_bot_recovers(prod_stack: ProdStack):
    """Redis (lock store, WeChat de-duplication, socket.io) hangs, then goes down.

    Each time, REST through nginx and on each replica (one by one, then a
    burst), the web chat on each replica and (when Redis refuses connections)
    WeChat get the channel's apology within seconds; once Redis is back, both
    replicas answer normally within seconds, and the conversation in the
    tracker store continues in order. Before the last test: Redis comes back.
    """
    stack = prod_stack
    user = "redis-outage"
    targets = {"nginx": stack.nginx, "replica A": stack.replicas[0], "replica B": stack.replicas[1]}
    sent: List[Sent] = []   # the conversation's messages the bot answered, in order
    outage_texts = {"提现多久到账", "怎么充值", "提现手续费"}

    def say_normally(base: str, text: str) -> None:
        answer = bot_texts(stack.say(base, user, text))
        assert answer and guard.FAILED not in answer, (base, text, answer)
        sent.append((text, answer))

    chats: List[WebSocketChat] = []
    try:
        for base in stack.replicas:
            status, issued, _ = await asyncio.to_thread(http, f"{base}/webhooks/web/token", body={})
            assert status == 200, issued
            chat = WebSocketChat(base, "none")
            await chat.open(issued["token"])
            chats.append(chat)
        await asyncio.to_thread(say_normally, stack.nginx, "你好")
        await asyncio.to_thread(say_normally, stack.replicas[0], FAQ)

        observed: Dict[str, List[float]] = {}
        for outage, text in ((redis_hangs, "提现多久到账"), (redis_down, "怎么充值")):
            with outage(stack):
                latencies = observed.setdefault(outage.__name__, [])
                for where, base in targets.items():
                    seconds, result = await asyncio.to_thread(say_timed, stack, base, user, text)
                    assert_apology(seconds, result, user, f"{outage.__name__}, {where}")
                    latencies.append(seconds)
                # A burst: three users on each target at once (one replica's event loop
                # must not wait for Redis once per message, one after the other).
                burst = [(where, base, f"{user}-burst-{where[-1]}{i}")
                         for where, base in targets.items() for i in range(3)]
                results = await asyncio.to_thread(run_together, [
                    lambda b=base, s=sender: say_timed(stack, b, s, "提现手续费")
                    for _, base, sender in burst])
                for (where, _, sender), (seconds, result) in zip(burst, results):
                    assert_apology(seconds, result, sender, f"{outage.__name__}, burst, {where}")
                    latencies.append(seconds)
                for n, chat in enumerate(chats):
                    seconds, got = await web_answer(chat, text)
                    assert got == guard.FAILED and seconds < OUTAGE_ANSWER_SECONDS, (
                        outage.__name__, "web chat", n, seconds, got)
                    latencies.append(seconds)
                if outage is redis_down:
                    # Under a hanging Redis, WeChat's de-duplication store (redis.asyncio,
                    # no socket timeout) waits as long as Redis does: not checked there.
                    for where, base in targets.items():
                        seconds, result = await WeChat(stack, base).say(f"o-outage-{where[-1]}", text)
                        assert result == (200, guard.FAILED), (where, result)
                        assert seconds < OUTAGE_ANSWER_SECONDS, (where, seconds)
                        latencies.append(seconds)
            if outage is redis_down:  # back on its own port, with its password
                assert redis_admin(stack).ping()
                assert redis_admin(stack).config_get("port")["port"] == str(stack.ports["redis"])
            recovered = await asyncio.to_thread(wait_for_recovery, stack, f"{user}-{outage.__name__}")
            print(f"{outage.__name__}: answers within {max(latencies):.2f} s "
                  f"(median {sorted(latencies)[len(latencies) // 2]:.2f} s); "
                  f"recovered in {recovered:.1f} s")
            for base in stack.replicas:
                await asyncio.to_thread(say_normally, base, FAQ)
            for chat in chats:
                seconds, got = await web_answer(chat, FAQ)
                assert FAQ_ANSWER in got, got
        for where, base in targets.items():
            seconds, result = await WeChat(stack, base).say(f"o-outage-{where[-1]}", FAQ)
            assert isinstance(result, tuple) and FAQ_ANSWER in (result[1] or ""), (where, result)
    finally:
        for chat in chats:
            await chat.close()

    # The conversation from before, between and after the outages, in order, each
    # message followed by the answer the user got. (Messages sent during an outage
    # never got a turn: Rasa takes the lock before it loads the conversation.)
    for base in stack.replicas:
        stored = turns(stack.tracker(base, user)["events"])
        assert [t for t in stored if t[0] not in outage_texts] == sent, (base, stored)
    assert [t for t in stored_user_texts(stack, user) if t not in outage_texts] == [
        text for text, _ in sent]
    assert redis_admin(stack).keys("walletbot:lock:*") == []


def test_ctrl_c_stops_every_process(prod_stack: ProdStack):
    """Last in the module: SIGINT to the process group, as Ctrl-C in a terminal."""
    stack = prod_stack
    started = time.time()
    stack.stop()
    assert time.time() - started < 60
    log = stack.log.read_text(errors="replace")
    assert "prod.sh: stopped" in log
    assert "database system is shut down" in log  # PostgreSQL shut down cleanly
    for name, port in stack.ports.items():
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"{name} still listening on {port}"
