"""walletbot.rasa_compat.lockstore.AtomicRedisLockStore when Redis hangs or is gone (fast).

A call waiting for Redis must not stall the replica: a turn's lock waits on
redis.asyncio while the loop runs other requests; every call gives up after a
short timeout, then fails at once for a while, and works again by itself once
Redis answers, without a ticket left behind by a call whose reply was lost. tests/prod/test_replicas.py checks the same through
the whole production profile.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from contextlib import contextmanager
from typing import Iterator

import pytest
import redis
from rasa.core.lock_store import LockError
from rasa.utils.endpoints import EndpointConfig

from tests.prod.conftest import free_ports
from tests.prod.test_lockstore import PASSWORD, redis_port, store  # noqa: F401 (a fixture)
from walletbot.rasa_compat.lockstore import DEFAULT_SOCKET_TIMEOUT, AtomicRedisLockStore


@contextmanager
def redis_stopped(port: int) -> Iterator[None]:
    """The redis-server on ``port`` stopped (SIGSTOP): it accepts connections, never answers."""
    pid = int(redis.Redis(port=port, password=PASSWORD).info("server")["process_id"])
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def timed_failure(call) -> float:
    """Seconds until ``call()`` raised LockError."""
    started = time.monotonic()
    with pytest.raises(LockError):
        call()
    return time.monotonic() - started


def test_socket_timeout_is_short_by_default_and_configurable():
    def timeout(**options: str) -> float:
        made = AtomicRedisLockStore(EndpointConfig(url="127.0.0.1", port="6379", **options))
        return made.red.connection_pool.connection_kwargs["socket_timeout"]

    assert timeout() == DEFAULT_SOCKET_TIMEOUT <= 2  # Rasa's own default: 10 s
    assert timeout(socket_timeout="0.5") == 0.5      # endpoints.yml values are strings
    assert timeout(socket_timeout="") == DEFAULT_SOCKET_TIMEOUT


def test_a_hanging_redis_costs_one_timeout_then_fails_fast_then_recovers(
        redis_port: int):  # noqa: F811
    lock_store = store(redis_port)
    lock_store.retry_after = 1.5
    assert lock_store.issue_ticket("hang") == 0  # connected before the outage
    lock_store.cleanup("hang", 0)

    with redis_stopped(redis_port):
        first = timed_failure(lambda: lock_store.issue_ticket("hang"))
        assert DEFAULT_SOCKET_TIMEOUT - 0.2 < first < DEFAULT_SOCKET_TIMEOUT + 1.5
        # Every call in the next moments fails at once instead of waiting again.
        assert timed_failure(lambda: [lock_store.issue_ticket(f"hang-{n}") for n in range(5)]) < 0.2
        with pytest.raises(redis.ConnectionError):
            lock_store.get_lock("hang")
        time.sleep(lock_store.retry_after)
        # Then Redis is tried again (and still hangs).
        assert timed_failure(lambda: lock_store.issue_ticket("hang")) > DEFAULT_SOCKET_TIMEOUT - 0.2

    time.sleep(lock_store.retry_after)
    assert lock_store.issue_ticket("hang") == 0
    assert lock_store.issue_ticket("hang") == 1
    for ticket in (0, 1):
        lock_store.cleanup("hang", ticket)
    assert lock_store.get_lock("hang") is None


def test_a_missing_redis_fails_at_once():
    lock_store = store(free_ports(1)[0])  # nothing listens there: connection refused
    lock_store.retry_after = 0.3
    assert timed_failure(lambda: lock_store.issue_ticket("gone")) < 0.5
    time.sleep(0.3)
    assert timed_failure(lambda: lock_store.issue_ticket("gone")) < 0.5


async def timed_lock_failure(lock_store: AtomicRedisLockStore, conversation: str) -> float:
    started = time.monotonic()
    with pytest.raises(LockError):
        async with lock_store.lock(conversation):
            pass
    return time.monotonic() - started


def test_a_turn_waiting_for_a_hanging_redis_does_not_stall_the_loop_or_leave_its_ticket(
        redis_port: int):  # noqa: F811
    lock_store = store(redis_port)
    lock_store.retry_after = 1.0

    async def scenario() -> None:
        async with lock_store.lock("hung-turn"):  # connected before the outage
            pass
        ticks = 0

        async def other_requests() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        others = asyncio.ensure_future(other_requests())
        with redis_stopped(redis_port):
            took = await timed_lock_failure(lock_store, "hung-turn")
            # The loop kept serving other requests all along (a blocking call: 0 ticks).
            assert ticks > 0.5 * took / 0.01
            assert DEFAULT_SOCKET_TIMEOUT - 0.2 < took < DEFAULT_SOCKET_TIMEOUT + 1.5
            assert await timed_lock_failure(lock_store, "hung-turn") < 0.2  # failing fast
        others.cancel()
        # Redis resumes and runs the script whose reply was lost: ticket 0 exists,
        # for 60 s. The store drops it before its next call, so the user's next
        # message is served at once instead of waiting a minute.
        await asyncio.sleep(lock_store.retry_after)
        started = time.monotonic()
        async with lock_store.lock("hung-turn", wait_time_in_seconds=5) as lock:
            assert [t.number for t in lock.tickets] == [0]
        assert time.monotonic() - started < 1
        assert lock_store.get_lock("hung-turn") is None

    asyncio.run(scenario())


def test_a_cancelled_turn_gives_its_ticket_back(redis_port: int):  # noqa: F811
    lock_store = store(redis_port)

    async def scenario() -> None:
        entered = asyncio.Event()

        async def turn() -> None:
            async with lock_store.lock("cancelled"):
                entered.set()
                await asyncio.sleep(10)

        inside = asyncio.ensure_future(turn())
        await entered.wait()
        inside.cancel()  # e.g. the client hung up while the turn ran
        await asyncio.gather(inside, return_exceptions=True)
        await asyncio.sleep(0.2)
        assert lock_store.get_lock("cancelled") is None

        # Cancelled while its ticket was being issued: the script sent, Redis
        # slow to answer. Redis runs it all the same; the ticket is given back
        # when the reply comes, instead of holding the conversation for 60 s.
        with redis_stopped(redis_port):
            issuing = asyncio.ensure_future(turn())
            await asyncio.sleep(0.2)
            issuing.cancel()
            await asyncio.gather(issuing, return_exceptions=True)
        await asyncio.sleep(0.3)
        assert lock_store.get_lock("cancelled") is None
        async with lock_store.lock("cancelled", wait_time_in_seconds=5) as lock:
            assert [t.number for t in lock.tickets] == [0]

    asyncio.run(scenario())
