"""The in-memory rate limit and the choice of limiter."""

from walletbot.settings import Settings
from walletbot.turns.ratelimit import RateLimiter, RedisRateLimiter, make_limiter


async def test_rate_limit_is_per_key_and_slides():
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert [await limiter.allow("web:a") for _ in range(3)] == [True, True, False]
    assert await limiter.allow("rest:a")
    now[0] = 61.0
    assert await limiter.allow("web:a")


async def test_rate_limit_forgets_the_oldest_keys_beyond_its_size():
    limiter = RateLimiter(1, max_senders=2)
    for key in ("a", "b", "c"):
        assert await limiter.allow(key)
    assert await limiter.allow("a")  # forgotten
    assert not await limiter.allow("c")


async def test_make_limiter_follows_the_settings():
    def settings(**env):
        return Settings.from_env(dict({"WALLETBOT_ENV": "dev"}, **env))

    off = make_limiter(settings(RATE_LIMIT_PER_MINUTE="0", REDIS_URL="redis://x"))
    assert isinstance(off, RateLimiter) and await off.allow("x")
    assert make_limiter(settings(RATE_LIMIT_PER_MINUTE="junk")).per_minute == 30
    assert isinstance(make_limiter(settings()), RateLimiter)
    shared = make_limiter(settings(RATE_LIMIT_PER_MINUTE="7", REDIS_URL="redis://h:1/0"))
    assert isinstance(shared, RedisRateLimiter) and shared.per_minute == 7
