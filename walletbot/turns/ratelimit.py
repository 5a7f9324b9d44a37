"""Per-conversation rate limits: in memory (one server) or in Redis (replicas).

The key is the conversation id (``channel:sender``), so the limit is per
sender and per channel: a sender id on one channel never spends the budget of
the same id on another.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict, deque
from typing import Any, Callable, Deque, Optional, Tuple, Union

from walletbot.settings import DEFAULT_RATE_LIMIT_PER_MINUTE, Settings

logger = logging.getLogger(__name__)

DEFAULT_PER_MINUTE = DEFAULT_RATE_LIMIT_PER_MINUTE
WINDOW_SECONDS = 60


class RateLimiter:
    """Sliding-window limit per key, in memory (one Rasa server).

    Args:
        per_minute: Messages a key may send in any 60 seconds.
        max_senders: Keys remembered at most (oldest forgotten first).
        clock: Monotonic seconds; tests pass their own.
    """

    def __init__(self, per_minute: int = DEFAULT_PER_MINUTE, *, max_senders: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.max_senders = max_senders
        self.clock = clock
        self._seen: "OrderedDict[str, Deque[float]]" = OrderedDict()

    async def allow(self, sender: str) -> bool:
        """Records a message of ``sender``; False if it is over the limit."""
        if self.per_minute <= 0:
            return True
        now = self.clock()
        window = self._seen.pop(sender, None) or deque()
        while window and now - window[0] >= WINDOW_SECONDS:
            window.popleft()
        allowed = len(window) < self.per_minute
        if allowed:
            window.append(now)
        self._seen[sender] = window
        while len(self._seen) > self.max_senders:
            self._seen.popitem(last=False)
        return allowed


# Atomic, so two replicas checking the same sender at once cannot both slip
# under the limit: drop entries older than the window, count, maybe add.
_SLIDING_WINDOW_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(ARGV[2] * 1000))
return 1
"""


class RedisRateLimiter:
    """The same sliding window kept in Redis, so every replica counts together.

    Behind a load balancer a per-replica limit lets a sender through N times
    as often as configured. When Redis does not answer within ``timeout`` the
    message is allowed (and logged): throttling is abuse protection, not worth
    refusing service for; the lock store reports the outage to the user anyway.

    Args:
        url: a redis-py URL (``redis://:password@host:6379/0``).
        per_minute: Messages a key may send in any 60 seconds.
        prefix: Prefix of the keys this limiter writes.
        timeout: Seconds to wait for Redis.
        clock: Wall-clock seconds (shared by replicas on one machine); tests pass their own.
    """

    def __init__(self, url: str, per_minute: int = DEFAULT_PER_MINUTE, *,
                 prefix: str = "walletbot:ratelimit:", timeout: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.per_minute = per_minute
        self.prefix = prefix
        self.timeout = timeout
        self.clock = clock
        self._bound: Optional[Tuple[asyncio.AbstractEventLoop, Any, Any]] = None

    def _script(self) -> Any:
        # redis.asyncio connections belong to the event loop that opened them.
        import redis.asyncio as redis_asyncio

        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop:
            client = redis_asyncio.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout)
            self._bound = (loop, client, client.register_script(_SLIDING_WINDOW_LUA))
        return self._bound[2]

    async def allow(self, sender: str) -> bool:
        """Records a message of ``sender``; False if it is over the limit."""
        if self.per_minute <= 0:
            return True
        now = self.clock()
        member = f"{now:.6f}:{uuid.uuid4().hex[:8]}"
        try:
            allowed = await asyncio.wait_for(
                self._script()(keys=[self.prefix + sender],
                               args=[now, WINDOW_SECONDS, self.per_minute, member]),
                self.timeout,
            )
        except Exception as error:  # redis errors, timeouts, refused connections
            logger.warning("rate limit not checked, Redis unavailable: %s", error)
            return True
        return bool(allowed)

    async def close(self) -> None:
        bound, self._bound = self._bound, None
        if bound is not None and bound[0] is asyncio.get_running_loop():
            await bound[1].close()


Limiter = Union[RateLimiter, RedisRateLimiter]


def make_limiter(settings: Settings) -> Limiter:
    """The limiter for this deployment: shared through Redis when ``REDIS_URL`` is set."""
    if settings.redis_url and settings.rate_limit_per_minute > 0:
        return RedisRateLimiter(settings.redis_url, settings.rate_limit_per_minute)
    return RateLimiter(settings.rate_limit_per_minute)
