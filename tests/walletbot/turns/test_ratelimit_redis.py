"""The rate limit shared by replicas through Redis (walletbot.turns.ratelimit.RedisRateLimiter)."""

import asyncio
import socket
import time
import uuid

from walletbot.turns import ratelimit as guard
from walletbot.turns import screening
from walletbot.turns.pipeline import Inbound

from tests.walletbot.turns.doubles import FakeAgent, ScriptedBot, make_pipeline


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now


def _prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


async def test_two_replicas_share_one_window(redis_url):
    clock, prefix = Clock(), _prefix()
    replica_a = guard.RedisRateLimiter(redis_url, 3, prefix=prefix, clock=clock)
    replica_b = guard.RedisRateLimiter(redis_url, 3, prefix=prefix, clock=clock)
    try:
        results = [await replica_a.allow("u1"), await replica_b.allow("u1"),
                   await replica_a.allow("u1"), await replica_b.allow("u1")]
        assert results == [True, True, True, False]
        # Another sender has its own window.
        assert await replica_b.allow("u2")
        clock.now += 59
        assert not await replica_a.allow("u1")
        clock.now += 2
        assert await replica_b.allow("u1")
    finally:
        await replica_a.close()
        await replica_b.close()


async def test_concurrent_checks_never_exceed_the_limit(redis_url):
    prefix = _prefix()
    replicas = [guard.RedisRateLimiter(redis_url, 5, prefix=prefix) for _ in range(4)]
    try:
        verdicts = await asyncio.gather(*(r.allow("burst") for r in replicas for _ in range(10)))
        assert sum(verdicts) == 5
    finally:
        for replica in replicas:
            await replica.close()


async def test_keys_expire_after_the_window(redis_url):
    import redis.asyncio as redis_asyncio

    prefix = _prefix()
    limiter = guard.RedisRateLimiter(redis_url, 2, prefix=prefix)
    client = redis_asyncio.from_url(redis_url)
    try:
        await limiter.allow("u")
        ttl_ms = await client.pttl(prefix + "u")
        assert 0 < ttl_ms <= guard.WINDOW_SECONDS * 1000
    finally:
        await client.close()
        await limiter.close()


async def test_redis_down_lets_messages_through_quickly(caplog):
    # A port nothing listens on: refused at once.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    limiter = guard.RedisRateLimiter(f"redis://127.0.0.1:{port}/0", 1, timeout=0.5)
    started = time.monotonic()
    assert await limiter.allow("u") and await limiter.allow("u")
    assert time.monotonic() - started < 2
    assert "Redis unavailable" in caplog.text


async def test_hung_redis_costs_at_most_the_timeout(caplog):
    # A server that accepts connections and never answers (like a stopped Redis).
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    limiter = guard.RedisRateLimiter(
        f"redis://127.0.0.1:{server.getsockname()[1]}/0", 1, timeout=0.3)
    try:
        started = time.monotonic()
        assert await limiter.allow("u")
        assert time.monotonic() - started < 1.5
    finally:
        server.close()


async def test_the_pipeline_uses_the_shared_limit(redis_url):
    limiter = guard.RedisRateLimiter(redis_url, 1, prefix=_prefix())
    pipeline = make_pipeline(FakeAgent())
    pipeline.limiter = limiter
    bot = ScriptedBot()
    try:
        first = await pipeline.handle(Inbound(channel="web", sender="s", text="怎么提现"), bot)
        second = await pipeline.handle(Inbound(channel="web", sender="s", text="怎么提现"), bot)
        assert [m["text"] for m in first] == ["echo:怎么提现"]
        assert [m["text"] for m in second] == [screening.RATE_LIMITED]
    finally:
        await limiter.close()
