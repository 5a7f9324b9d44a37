"""The web channel's Redis fan-out against a real redis-server that dies and comes back.

Each test gets its own redis-server, so that it can be SIGKILLed (or
SIGSTOPped, to look hung) and restarted on the same port. Two "replicas" are
two ``socketio.AsyncServer`` instances on that Redis; a socket is a registered
sid whose engine.io transport is replaced by a list of the packets sent to it,
so everything from ``sio.emit`` down to the packet for the socket is real.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, List, Optional, Tuple

import pytest
import socketio

from walletbot.rasa_compat.socketio import ResilientRedisManager

from tests.walletbot.channels.wechat.doubles import free_port

LOGGER = "walletbot.rasa_compat.socketio"


# --- a redis-server this test may kill -------------------------------------




class RedisServer:
    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="walletbot-fanout-redis-")
        self.process: Optional[subprocess.Popen] = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.command("PING").startswith(b"+PONG"):
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not start (exit {self.process.poll()})")
            time.sleep(0.02)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def command(self, *args: str) -> bytes:
        """One inline command on a fresh connection; the raw reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall((" ".join(args) + "\r\n").encode())
            data = sock.recv(65536)
            if data.startswith(b"$"):  # bulk reply: read up to its declared length
                header, _, body = data.partition(b"\r\n")
                while len(body) < int(header[1:]) + 2:
                    body += sock.recv(65536)
                return body
            return data

    def clients(self) -> List[str]:
        """CLIENT LIST lines, without the connection that asks."""
        return [line for line in self.command("CLIENT", "LIST").decode().splitlines()
                if line.strip() and " cmd=client" not in line]

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def redis_server(redis_server_binary: str) -> Iterator[RedisServer]:
    server = RedisServer(redis_server_binary)
    try:
        server.start()
        yield server
    finally:
        server.close()


# --- two replicas ------------------------------------------------------------


class Replica:
    """A socket.io server on the fan-out with one connected (fake-transport) socket."""

    def __init__(self, name: str, url: str, channel: str, **options: Any) -> None:
        self.manager = ResilientRedisManager(url, channel=channel, **options)
        self.sio = socketio.AsyncServer(client_manager=self.manager, async_mode="asgi")
        self.packets: List[Tuple[str, str]] = []

        async def send_eio_packet(eio_sid: str, pkt: Any) -> None:
            self.packets.append((eio_sid, pkt.data))

        self.sio._send_eio_packet = send_eio_packet  # type: ignore[method-assign]
        self.sio.manager_initialized = True
        self.manager.initialize()
        self.name = name
        self.sid = ""

    async def connect_socket(self) -> None:
        self.sid = await self.manager.connect(f"eio-{self.name}", "/")

    def got(self, text: str) -> int:
        return sum(text in data for _, data in self.packets)

    async def close(self) -> None:
        self.manager.thread.cancel()
        await asyncio.gather(self.manager.thread, return_exceptions=True)
        if self.manager.redis is not None:
            await self.manager.redis.close()


@pytest.fixture
async def replicas(redis_server: RedisServer) -> AsyncIterator[Callable[..., Awaitable[Replica]]]:
    made: List[Replica] = []
    channel = f"fanout-test-{uuid.uuid4().hex[:8]}"

    async def make(name: str, **options: Any) -> Replica:
        replica = Replica(name, redis_server.url, channel, **options)
        made.append(replica)
        await replica.connect_socket()
        return replica

    yield make
    for replica in made:
        await replica.close()


async def until(condition: Callable[[], Any], timeout: float, what: str) -> float:
    """Seconds it took for condition() to hold; fails after timeout."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def first_delivery(sender: Replica, receiver: Replica, timeout: float) -> float:
    """Seconds until one of a stream of emits on sender reaches receiver's socket."""
    start = time.monotonic()
    tag = uuid.uuid4().hex
    n = 0
    while not receiver.got(tag):
        if time.monotonic() - start > timeout:
            raise AssertionError(f"no emit reached the other replica within {timeout} s")
        n += 1
        await sender.sio.emit("bot_uttered", {"text": f"{tag}-{n}"}, to=receiver.sid)
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def close_wait_sockets_to(port: int) -> int:
    """Our TCP sockets to port that the peer closed and we did not (state CLOSE_WAIT)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == "08":
                count += 1
    return count


# --- tests -------------------------------------------------------------------


async def test_an_emit_on_one_replica_reaches_a_socket_on_the_other(replicas) -> None:
    a, b = await replicas("a"), await replicas("b")
    await until(lambda: a.manager.listening and b.manager.listening, 3, "both subscribed")

    await a.sio.emit("bot_uttered", {"text": "agent reply 1"}, to=b.sid)
    await a.sio.emit("bot_uttered", {"text": "agent reply 2"}, to=b.sid)
    await until(lambda: b.got("agent reply 2"), 3, "the push reached replica b")

    # Exactly once, to b's socket only; Redis carries the messages in order.
    assert b.got("agent reply 1") == 1
    assert [sid for sid, _ in b.packets] == ["eio-b", "eio-b"]
    assert a.packets == []


async def test_fan_out_resumes_within_a_second_of_redis_coming_back(
    replicas, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    a, b = await replicas("a"), await replicas("b")
    await until(lambda: a.manager.listening and b.manager.listening, 3, "both subscribed")

    redis_server.kill()
    await until(lambda: not a.manager.listening and not b.manager.listening, 2, "outage noticed")
    # The stock AsyncRedisManager retries 1 s after the failure, then 2 s
    # later, then 4 s later ...: after this 1.2 s outage it resubscribes only
    # ~1.8 s after Redis is back (measured; after a 10 s outage ~5 s, after
    # longer ones up to 60 s), and every cross-replica push meanwhile is lost.
    await asyncio.sleep(1.2)
    await asyncio.to_thread(redis_server.start)

    a_to_b = await first_delivery(a, b, timeout=3)
    b_to_a = await first_delivery(b, a, timeout=3)
    print(f"after Redis came back: a->b in {a_to_b:.2f} s, then b->a in {b_to_a:.2f} s")
    # The backoff is capped at 1 s.
    assert a_to_b < 1.5

    records = [r for r in caplog.records if r.name == LOGGER]
    lost = [r for r in records if "lost the Redis subscription" in r.getMessage()]
    restored = [r for r in records if "subscription restored" in r.getMessage()]
    retries = [r for r in records
               if r.levelno == logging.DEBUG and "still unreachable" in r.getMessage()]
    # One warning per replica for the whole outage, however many retries.
    assert len(lost) == 2 and all(r.levelno == logging.WARNING for r in lost)
    assert "Error" in lost[0].getMessage()  # the Redis error is in the message
    assert len(restored) == 2 and all(r.levelno == logging.INFO for r in restored)
    assert len(retries) >= 4
    assert not [r for r in records if r.levelno >= logging.ERROR]


async def test_publishing_while_redis_is_down_returns_and_local_delivery_still_works(
    replicas, redis_server: RedisServer
) -> None:
    a = await replicas("a", publish_retry_for=0.5)
    await until(lambda: a.manager.listening, 3, "subscribed")
    redis_server.kill()

    start = time.monotonic()
    await a.sio.emit("bot_uttered", {"text": "first while down"}, to=a.sid)
    first = time.monotonic() - start
    start = time.monotonic()
    await a.sio.emit("bot_uttered", {"text": "second while down"}, to=a.sid)
    second = time.monotonic() - start

    # The first publish rides out a short blip, within its budget; once Redis
    # is known to be down, one quick attempt only.
    assert first < 0.5 + 0.3
    assert second < 0.2
    assert a.got("first while down") == 1 and a.got("second while down") == 1


async def test_a_hung_redis_bounds_publishes_and_is_left_for_a_new_connection(
    replicas, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    fast = dict(redis_options={"socket_timeout": 0.3, "socket_connect_timeout": 0.3},
                publish_retry_for=0.3, ping_interval=0.2, ping_timeout=0.2)
    a, b = await replicas("a", **fast), await replicas("b", **fast)
    await until(lambda: a.manager.listening and b.manager.listening, 3, "both subscribed")
    await first_delivery(a, b, timeout=3)  # a's publish connection is open now

    # A quiet channel on a healthy Redis is not taken for a dead one: its
    # PINGs are answered (with pubsub.listen() and a socket_timeout, or
    # with silence alone as the sign, it would reconnect every cycle).
    await asyncio.sleep(3 * (0.2 + 0.2))
    assert a.manager.listening and b.manager.listening
    assert not [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.INFO]

    redis_server.pause()  # connections stay open; nothing answers
    try:
        start = time.monotonic()
        await a.sio.emit("bot_uttered", {"text": "while hung"}, to=a.sid)
        assert time.monotonic() - start < 1.0  # socket_timeout, not forever
        assert a.got("while hung") == 1
        # The silent subscription is noticed by its PING going unanswered.
        await until(lambda: not a.manager.listening and not b.manager.listening, 2,
                    "hung Redis noticed")
        await asyncio.sleep(0.5)  # a few reconnect attempts into the hung server
    finally:
        redis_server.resume()

    await first_delivery(a, b, timeout=3)
    await first_delivery(b, a, timeout=3)
    # Every abandoned attempt was closed: Redis sees one subscriber per replica.
    await until(lambda: sum(" sub=1 " in c for c in redis_server.clients()) == 2, 2,
                "no leftover subscriber connections")


async def test_repeated_outages_leave_no_connections_behind(
    replicas, redis_server: RedisServer
) -> None:
    a, b = await replicas("a", publish_retry_for=0.1), await replicas("b", publish_retry_for=0.1)
    await until(lambda: a.manager.listening and b.manager.listening, 3, "both subscribed")

    for _ in range(3):
        redis_server.kill()
        await until(lambda: not a.manager.listening and not b.manager.listening, 2,
                    "outage noticed")
        await a.sio.emit("bot_uttered", {"text": "lost"}, to=b.sid)
        await b.sio.emit("bot_uttered", {"text": "lost"}, to=a.sid)
        await asyncio.to_thread(redis_server.start)
        await first_delivery(a, b, timeout=3)
        await first_delivery(b, a, timeout=3)

    clients = redis_server.clients()
    assert sum(" sub=1 " in c for c in clients) == 2, clients
    assert len(clients) <= 4, clients  # a listener and a publisher per replica
    assert close_wait_sockets_to(redis_server.port) == 0
