"""Sessions revoked at logout: until the token's expiry, in memory or in Redis."""

from __future__ import annotations

import uuid

import pytest

from walletbot.desk.revocation import (
    RedisRevocationList, RevocationList, RevocationUnavailable, make_revocations,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_revocations_last_until_the_token_expires():
    clock = Clock()
    revoked = RevocationList(clock=clock)
    await revoked.revoke("a", clock.now + 60)
    await revoked.revoke("stale", clock.now - 1)  # expired anyway: not kept
    assert await revoked.is_revoked("a") and not await revoked.is_revoked("b")
    assert not await revoked.is_revoked("stale")
    clock.now += 61
    assert not await revoked.is_revoked("a")
    assert revoked._until == {} and revoked._expiry == []


async def test_redis_revocations_are_seen_by_another_replica_and_expire(redis_url):
    import redis.asyncio as redis_asyncio

    prefix = f"walletbot:test:revoked:{uuid.uuid4().hex[:6]}:"
    one, two = (RedisRevocationList(redis_url, prefix=prefix) for _ in range(2))
    jti = uuid.uuid4().hex
    try:
        assert not await two.is_revoked(jti)
        await one.revoke(jti, one.clock() + 120)
        assert await two.is_revoked(jti)
        server = redis_asyncio.from_url(redis_url)
        try:
            assert 100 <= await server.ttl(prefix + jti) <= 121
        finally:
            await server.close()
    finally:
        await one.close()
        await two.close()


async def test_an_unreachable_redis_refuses_rather_than_forgets():
    revoked = RedisRevocationList("redis://127.0.0.1:1/0", timeout=0.5)
    with pytest.raises(RevocationUnavailable):
        await revoked.revoke("a", revoked.clock() + 60)
    # This replica still refuses the token it was asked to revoke...
    assert await revoked.is_revoked("a")
    # ...and does not vouch for any other while the shared list is unreadable.
    with pytest.raises(RevocationUnavailable):
        await revoked.is_revoked("b")


def test_make_revocations():
    assert isinstance(make_revocations(None), RevocationList)
    assert isinstance(make_revocations("redis://127.0.0.1:6379/0"), RedisRevocationList)
