"""walletbot.rasa_compat.lockstore.AtomicRedisLockStore when Redis hangs or is gone (fast).

Rasa calls the lock store synchronously on a replica's event loop, so a call
waiting for Redis stalls every request of that replica: the store gives up
after a short timeout, then fails at once for a while, and works again by
itself once Redis answers. tests/prod/test_replicas.py checks the same through
the whole production profile.
"""

from __future__ import annotations

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
