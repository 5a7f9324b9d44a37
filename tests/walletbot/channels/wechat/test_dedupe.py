"""De-duplication stores: in memory and on a throwaway Redis server."""

import asyncio
import uuid

import pytest

from walletbot.channels.wechat.dedupe import (
    MemoryDedupeStore,
    RedisDedupeStore,
    make_store,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def exercise(store, other):
    """The contract, with ``other`` a second handle on the same state (or the same store)."""
    key = f"msg:{uuid.uuid4().hex}"
    assert await store.claim(key) is True
    assert await other.claim(key) is False
    assert await store.claim(key) is False
    assert await other.get_result(key) is None
    assert await other.wait_result(key, 0.2) is None

    async def later():
        await asyncio.sleep(0.2)
        await store.set_result(key, {"state": "reply", "xml": "<xml>答</xml>"})

    waiter = asyncio.create_task(other.wait_result(key, 5))
    await later()
    assert await waiter == {"state": "reply", "xml": "<xml>答</xml>"}

    openid = f"o_{uuid.uuid4().hex}"
    assert await other.get_choices(openid) == []
    await store.set_choices(openid, ["/a", "/b"])
    assert await other.get_choices(openid) == ["/a", "/b"]
    await store.set_choices(openid, [])
    assert await other.get_choices(openid) == []

    # A message's two pairs: claim with the options, then options and result together.
    key = f"msg:{uuid.uuid4().hex}"
    assert await store.claim_with_choices(key, openid) == (True, [])
    await store.finish(key, {"state": "reply", "xml": "<xml>选</xml>"}, openid, ["/x", "/y"])
    assert await other.get_result(key) == {"state": "reply", "xml": "<xml>选</xml>"}
    assert await other.claim_with_choices(key, openid) == (False, ["/x", "/y"])
    await other.finish(key, {"state": "empty"}, openid, None)  # None: options left as they are
    assert await store.get_choices(openid) == ["/x", "/y"]
    assert await store.get_result(key) == {"state": "empty"}
    await other.finish(key, {"state": "empty"}, openid, [])
    assert await store.get_choices(openid) == []


async def test_memory_store_contract():
    store = MemoryDedupeStore()
    await exercise(store, store)


async def test_memory_store_forgets_after_the_ttl():
    clock = FakeClock()
    store = MemoryDedupeStore(ttl=10, choices_ttl=100, clock=clock)
    assert await store.claim("k")
    await store.set_result("k", {"state": "async"})
    await store.set_choices("o", ["/x"])
    clock.now += 11
    assert await store.get_result("k") is None
    assert await store.claim("k")  # a new delivery after the TTL is processed
    assert await store.get_choices("o") == ["/x"]
    clock.now += 100
    assert await store.get_choices("o") == []
    clock.now += 100
    assert len(store) == 0  # expired entries are swept


def test_make_store_picks_redis_only_with_a_url():
    assert isinstance(make_store(None), MemoryDedupeStore)
    assert isinstance(make_store(""), MemoryDedupeStore)
    assert isinstance(make_store("redis://127.0.0.1:1/0"), RedisDedupeStore)


async def test_redis_store_contract_across_two_replicas(redis_url):
    one, two = RedisDedupeStore(redis_url), RedisDedupeStore(redis_url)
    try:
        await exercise(one, two)
    finally:
        await one.close()
        await two.close()


async def test_redis_claims_expire(redis_url):
    store = RedisDedupeStore(redis_url, ttl=1)
    try:
        key = f"msg:{uuid.uuid4().hex}"
        assert await store.claim(key)
        assert not await store.claim(key)
        await asyncio.sleep(1.6)
        assert await store.claim(key)
    finally:
        await store.close()


async def test_concurrent_claims_have_one_winner(redis_url):
    stores = [RedisDedupeStore(redis_url) for _ in range(5)]
    key = f"msg:{uuid.uuid4().hex}"
    try:
        wins = await asyncio.gather(*(s.claim(key) for s in stores))
        assert sorted(wins) == [False] * 4 + [True]
    finally:
        for store in stores:
            await store.close()


async def test_unreachable_redis_raises_for_the_channel_to_handle():
    store = RedisDedupeStore("redis://127.0.0.1:1/0")
    with pytest.raises(Exception):
        await store.claim("k")
    await store.close()


async def test_a_message_costs_the_redis_store_two_round_trips(redis_url, monkeypatch):
    """Claim + options, then options + result: each pair is one pipeline."""
    from redis.asyncio.connection import Connection

    sent = []
    original = Connection.send_packed_command

    async def counting(self, command, *args, **kwargs):
        sent.append(command)
        return await original(self, command, *args, **kwargs)

    store = RedisDedupeStore(redis_url)
    try:
        await store.claim("warm-up")  # the connection's own handshake is not the message's
        monkeypatch.setattr(Connection, "send_packed_command", counting)
        key, openid = f"msg:{uuid.uuid4().hex}", f"o_{uuid.uuid4().hex}"
        claimed, choices = await store.claim_with_choices(key, openid)
        await store.finish(key, {"state": "reply", "xml": "<xml/>"}, openid, ["/a"])
        assert (claimed, choices) == (True, [])
        assert len(sent) == 2
    finally:
        await store.close()
