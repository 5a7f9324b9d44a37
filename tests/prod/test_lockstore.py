"""walletbot.rasa_compat.lockstore.AtomicRedisLockStore on a throwaway redis-server.

Several stores with their own connections stand for several Rasa replicas.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Iterator, List

import pytest
import redis
from rasa.utils.endpoints import EndpointConfig

from tests.prod.conftest import free_ports
from walletbot.rasa_compat.lockstore import AtomicRedisLockStore

from tests.system import missing

PASSWORD = "lock-test-password"


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    binary = shutil.which("redis-server") or ("/usr/bin/redis-server"
                                              if os.path.exists("/usr/bin/redis-server") else None)
    if binary is None:
        missing("redis-server not found: apt-get install redis-server")
    port = free_ports(1)[0]
    folder = tempfile.mkdtemp(prefix="walletbot-lock-")
    process = subprocess.Popen(
        [binary, "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    process.stdin.write(
        f"bind 127.0.0.1\nport {port}\nrequirepass {PASSWORD}\nsave \"\"\ndir {folder}\n".encode())
    process.stdin.close()
    client = redis.Redis(port=port, password=PASSWORD)
    try:
        deadline = time.time() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.time() > deadline:
                    raise AssertionError("redis-server did not start")
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def store(port: int) -> AtomicRedisLockStore:
    """A store as Rasa builds it from endpoints.yml (values are strings there)."""
    return AtomicRedisLockStore(EndpointConfig(
        url="127.0.0.1", port=str(port), db="0", password=PASSWORD, key_prefix="walletbot",
        type="walletbot.rasa_compat.lockstore.AtomicRedisLockStore"))


def test_configured_from_endpoints_like_rasa_does(redis_port: int):
    from rasa.core.lock_store import LockStore

    made = LockStore.create(EndpointConfig(
        url="127.0.0.1", port=str(redis_port), db="0", password=PASSWORD, key_prefix="walletbot",
        type="walletbot.rasa_compat.lockstore.AtomicRedisLockStore"))
    assert isinstance(made, AtomicRedisLockStore)
    assert made.key_prefix == "walletbot:lock:"
    made.red.ping()
    # An empty password (an empty REDIS_PASSWORD) means no AUTH, not AUTH "".
    no_auth = AtomicRedisLockStore(EndpointConfig(url="127.0.0.1", port=str(redis_port), password=""))
    assert no_auth.red.connection_pool.connection_kwargs.get("password") is None


def test_tickets_are_unique_across_replicas_issuing_at_once(redis_port: int):
    replicas = [store(redis_port) for _ in range(6)]
    issued: List[int] = []
    barrier = threading.Barrier(len(replicas))

    def issue(replica: AtomicRedisLockStore) -> None:
        barrier.wait()
        for _ in range(40):
            issued.append(replica.issue_ticket("race", lock_lifetime=60))

    threads = [threading.Thread(target=issue, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(issued) == list(range(240))
    lock = replicas[0].get_lock("race")
    assert [t.number for t in lock.tickets] == list(range(240))
    for number in range(240):
        replicas[number % 6].cleanup("race", number)
    assert replicas[0].get_lock("race") is None  # the last release deletes the key


def test_turns_of_one_conversation_never_overlap_across_replicas(redis_port: int):
    replicas = [store(redis_port) for _ in range(3)]
    inside, overlaps, done = [0], [0], []

    async def turn(replica: AtomicRedisLockStore, n: int) -> None:
        async with replica.lock("conversation", wait_time_in_seconds=0.01):
            inside[0] += 1
            if inside[0] > 1:
                overlaps[0] += 1
            await asyncio.sleep(0.005)
            inside[0] -= 1
            done.append(n)

    def replica_loop(replica: AtomicRedisLockStore, first: int) -> None:
        async def main() -> None:
            await asyncio.gather(*(turn(replica, first + i) for i in range(8)))
        asyncio.run(main())

    threads = [threading.Thread(target=replica_loop, args=(r, 100 * i)) for i, r in enumerate(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert overlaps == [0]
    assert len(done) == 24
    assert replicas[0].get_lock("conversation") is None


class Monitor:
    """The commands clients send Redis (MONITOR), without those scripts run inside, or AUTH."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.commands: List[str] = []
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        with redis.Redis(port=self.port, password=PASSWORD).monitor() as monitor:
            self._ready.set()
            for entry in monitor.listen():
                if entry["command"] == "ECHO monitor-stop":
                    return
                name = entry["command"].split()[0].upper()
                if entry.get("client_type") != "lua" and name != "AUTH":  # AUTH: a new connection
                    self.commands.append(name)

    def __enter__(self) -> "Monitor":
        self._thread.start()
        self._ready.wait(5)
        time.sleep(0.05)  # MONITOR is in effect once Redis answered it
        return self

    def __exit__(self, *exc: object) -> None:
        redis.Redis(port=self.port, password=PASSWORD).echo("monitor-stop")
        self._thread.join(5)


def test_a_turn_on_a_free_conversation_costs_two_round_trips(redis_port: int):
    replica = store(redis_port)

    async def turns() -> List[str]:
        async with replica.lock("warm-up"):  # opens the loop's connection
            pass
        with Monitor(redis_port) as monitor:
            async with replica.lock("free"):
                pass
        return monitor.commands

    # Issue (and learn it is served) + release; Rasa's own way, or a watched
    # transaction per change, costs 7 (WATCH, GET, MULTI/SET/EXEC twice, GET).
    assert asyncio.run(turns()) == ["EVALSHA", "EVALSHA"]
    assert replica.get_lock("free") is None


def test_rasa_reads_what_the_scripts_write_and_the_other_way_round(redis_port: int):
    from rasa.core.lock_store import RedisLockStore

    ours = store(redis_port)
    rasas = RedisLockStore(host="127.0.0.1", port=redis_port, db=0, password=PASSWORD,
                           key_prefix="walletbot")
    conversation = 'wechat:o张三"/\\x'  # quotes, slashes, non-ASCII survive both ways
    assert [ours.issue_ticket(conversation, 60) for _ in range(2)] == [0, 1]
    lock = rasas.get_lock(conversation)
    assert lock.conversation_id == conversation
    assert [t.number for t in lock.tickets] == [0, 1]
    assert all(time.time() + 59 < t.expires <= time.time() + 60 for t in lock.tickets)
    assert rasas.issue_ticket(conversation, 60) == 2  # Rasa appends to our lock
    assert ours.issue_ticket(conversation, 60) == 3   # and we to Rasa's
    ours.finish_serving(conversation, 1)
    assert [t.number for t in rasas.get_lock(conversation).tickets] == [0, 2, 3]
    for number in (0, 2, 3):
        ours.finish_serving(conversation, number)
    assert rasas.get_lock(conversation) is None
    ours.finish_serving(conversation, 7)  # nothing stored: nothing happens
    assert rasas.get_lock(conversation) is None


def test_a_dead_holders_expired_ticket_does_not_block_the_next_turn(redis_port: int):
    crashed, alive = store(redis_port), store(redis_port)
    assert crashed.issue_ticket("orphan", lock_lifetime=0.05) == 0  # never given back
    time.sleep(0.1)

    async def turn() -> float:
        started = time.monotonic()
        async with alive.lock("orphan", wait_time_in_seconds=5) as lock:
            # the expired ticket is gone, so numbering starts again (as in Rasa)
            assert [t.number for t in lock.tickets] == [0]
        return time.monotonic() - started

    assert asyncio.run(turn()) < 1  # no polling round of 5 s
    assert alive.get_lock("orphan") is None

    crashed.issue_ticket("stale", lock_lifetime=0.05)
    crashed.issue_ticket("stale", lock_lifetime=60)
    time.sleep(0.1)
    alive.update_lock("stale")
    assert [t.number for t in alive.get_lock("stale").tickets] == [1]
    alive.finish_serving("stale", 1)
    assert alive.get_lock("stale") is None


def test_a_turn_behind_another_waits_until_it_is_given_back(redis_port: int):
    first, second = store(redis_port), store(redis_port)
    order: List[str] = []

    async def main() -> None:
        async def early() -> None:
            async with first.lock("queue", wait_time_in_seconds=0.01):
                order.append("first in")
                await asyncio.sleep(0.1)
                order.append("first out")

        async def late() -> None:
            await asyncio.sleep(0.02)
            async with second.lock("queue", wait_time_in_seconds=0.01):
                order.append("second in")

        await asyncio.gather(early(), late())

    asyncio.run(main())
    assert order == ["first in", "first out", "second in"]
    assert first.get_lock("queue") is None


def test_scripts_are_loaded_again_after_redis_forgets_them(redis_port: int):
    replica = store(redis_port)
    assert replica.issue_ticket("flush", 60) == 0
    redis.Redis(port=redis_port, password=PASSWORD).script_flush()  # e.g. a restarted Redis
    assert replica.issue_ticket("flush", 60) == 1
    replica.finish_serving("flush", 0)
    replica.finish_serving("flush", 1)
    assert replica.get_lock("flush") is None
