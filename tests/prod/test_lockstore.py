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
