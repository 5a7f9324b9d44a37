"""Login throttle: back-off, lock, reset on success, in memory and in Redis."""

from __future__ import annotations

import pytest

from walletbot.desk.throttle import (
    LoginThrottle, RedisLoginThrottle, account_key, address_key, make_throttle,
)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


KEYS = (account_key("agent1"), address_key("10.0.0.1"))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(params=["memory", "redis"])
async def make(request, clock):
    """Builds a throttle of either kind on the same fake clock."""
    made = []

    def build(max_failures=5, lock_seconds=900.0, **kwargs):
        if request.param == "memory":
            throttle = LoginThrottle(max_failures, lock_seconds, clock=clock, **kwargs)
        else:
            url = request.getfixturevalue("redis_url")
            prefix = f"walletbot:test:{request.node.name}:{len(made)}:"
            throttle = RedisLoginThrottle(url, max_failures, lock_seconds, clock=clock,
                                          prefix=prefix, **kwargs)
        made.append(throttle)
        return throttle

    yield build
    for throttle in made:
        await throttle.close()


async def test_failures_back_off_exponentially_then_lock(make, clock):
    throttle = make(max_failures=5, lock_seconds=900)
    waits = []
    for expected in (0.5, 1.0, 2.0, 4.0):
        verdict = await throttle.attempt(KEYS)
        assert verdict.allowed and not verdict.locks_now
        refused = await throttle.attempt(KEYS)
        assert not refused.allowed and not refused.locked
        waits.append(round(refused.retry_at - clock.now, 3))
        clock.now = refused.retry_at
    assert waits == [0.5, 1.0, 2.0, 4.0]
    fifth = await throttle.attempt(KEYS)
    assert fifth.allowed and fifth.locks_now  # the attempt that reaches the limit
    clock.now += 60
    locked = await throttle.attempt(KEYS)
    assert not locked.allowed and locked.locked
    assert locked.retry_after(clock.now) == 840
    clock.now += 841
    assert (await throttle.attempt(KEYS)).allowed  # the lock is over, and forgotten


async def test_a_success_resets_the_count(make, clock):
    throttle = make(max_failures=3, lock_seconds=600)
    for _ in range(2):
        assert (await throttle.attempt(KEYS)).allowed
        clock.now += 10
    await throttle.succeeded(KEYS)
    for _ in range(2):
        verdict = await throttle.attempt(KEYS)
        assert verdict.allowed and not verdict.locks_now
        clock.now += 10


async def test_account_and_address_are_counted_apart(make, clock):
    throttle = make(max_failures=2, lock_seconds=600)
    attacker = address_key("10.6.6.6")
    assert (await throttle.attempt((account_key("agent1"), attacker))).allowed
    clock.now += 5
    assert (await throttle.attempt((account_key("ghost"), attacker))).locks_now
    # The address is locked for every account...
    assert (await throttle.attempt((account_key("agent2"), attacker))).locked
    # ...agent1 from elsewhere has one failure, not a lock.
    verdict = await throttle.attempt((account_key("agent1"), address_key("10.0.0.2")))
    assert verdict.allowed and verdict.locks_now  # its second failure locks agent1


async def test_failures_are_forgotten_after_the_lock_period(make, clock):
    throttle = make(max_failures=2, lock_seconds=60)
    assert (await throttle.attempt(KEYS)).allowed
    clock.now += 61
    verdict = await throttle.attempt(KEYS)
    assert verdict.allowed and not verdict.locks_now


async def test_unknown_and_odd_logins_are_keys_too():
    assert account_key("nobody") != account_key("agent1") == account_key("agent1")
    assert account_key(None) == account_key(None) and account_key(["x"]).startswith("account:")
    assert len(account_key("x" * 10_000)) == len("account:") + 32
    assert address_key("2001:db8::1") == "addr:2001:db8::1"


async def test_memory_keeps_a_bounded_number_of_records(clock):
    throttle = LoginThrottle(3, 600, clock=clock, max_keys=10)
    for i in range(50):
        await throttle.attempt((account_key(f"n{i}"),))
    assert len(throttle._records) == 10


async def test_redis_unavailable_falls_back_to_memory(clock):
    throttle = RedisLoginThrottle("redis://127.0.0.1:1/0", 2, 600, clock=clock, timeout=0.5)
    assert (await throttle.attempt(KEYS)).allowed
    clock.now += 5
    assert (await throttle.attempt(KEYS)).locks_now
    assert (await throttle.attempt(KEYS)).locked
    await throttle.succeeded(KEYS)  # logged, not raised
    assert (await throttle.attempt(KEYS)).allowed


async def test_redis_records_expire_with_the_lock(redis_url, clock):
    import redis.asyncio as redis_asyncio

    throttle = RedisLoginThrottle(redis_url, 2, 90, clock=clock, prefix="walletbot:test:ttl:")
    await throttle.attempt(KEYS)
    server = redis_asyncio.from_url(redis_url)
    try:
        ttl = await server.pttl("walletbot:test:ttl:" + KEYS[0])
        assert 80_000 < ttl <= 90_000
    finally:
        await server.delete(*["walletbot:test:ttl:" + k for k in KEYS])
        await server.close()
        await throttle.close()


def test_make_throttle_and_bad_limits():
    assert isinstance(make_throttle(None), LoginThrottle)
    shared = make_throttle("redis://127.0.0.1:6379/0", max_failures=7, lock_minutes=2)
    assert isinstance(shared, RedisLoginThrottle)
    assert (shared.max_failures, shared.lock_seconds) == (7, 120)
    with pytest.raises(ValueError):
        LoginThrottle(0)
    with pytest.raises(ValueError):
        LoginThrottle(3, 0)
