"""Login throttling per account and per client address: back-off, then a lock.

Every login attempt is counted *before* its password is checked, under the
keys of the attempted login name and of the client address, and a success
clears both. So concurrent guesses cannot slip past the limit while the
slow hash runs: of ``max_failures`` counted attempts, the last one locks.

After ``k`` counted failures a key waits ``base_delay * 2**(k-1)`` seconds
(capped at ``max_delay``) before the next attempt; at ``max_failures`` it is
locked for ``lock_seconds``. A key's record is forgotten ``lock_seconds``
after its last counted attempt. Unknown login names are counted like real
ones, so a lock does not tell which logins exist.

:class:`LoginThrottle` keeps the records in memory (one server);
:class:`RedisLoginThrottle` in Redis, checked and updated by one Lua script,
so every replica counts together. When Redis does not answer, that replica
falls back to its own memory (and logs it) rather than either refusing every
agent or letting guesses through unchecked.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

logger = logging.getLogger(__name__)

DEFAULT_MAX_FAILURES = 5
DEFAULT_LOCK_MINUTES = 15.0
BASE_DELAY = 0.5
MAX_DELAY = 60.0


def account_key(login: Any) -> str:
    """The throttle key of an attempted login name (hashed: it is user input)."""
    text = login if isinstance(login, str) else repr(type(login))
    return "account:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


def address_key(address: str) -> str:
    """The throttle key of a client address."""
    return "addr:" + address[:64]


@dataclass(frozen=True)
class Verdict:
    """Whether an attempt may go ahead.

    Attributes:
        allowed: The attempt was counted and its password may be checked.
        retry_at: Refused: wall-clock time (epoch seconds) when to try again.
        locked: Refused because a key is locked (else: backing off).
        locks_now: Allowed, and it was the attempt that reached the limit:
            unless its password is right, the keys are now locked.
    """

    allowed: bool
    retry_at: float = 0.0
    locked: bool = False
    locks_now: bool = False

    def retry_after(self, now: float) -> int:
        """Whole seconds to wait (at least 1)."""
        return max(1, math.ceil(self.retry_at - now))


class LoginThrottle:
    """In-memory throttle (one Rasa server).

    Args:
        max_failures: Counted failures that lock a key.
        lock_seconds: How long a lock lasts; also how long failures are remembered.
        base_delay: Back-off after the first failure (doubling after each).
        max_delay: Longest back-off.
        max_keys: Records kept at most (least recently used forgotten first).
        clock: Wall-clock seconds; tests pass their own.
    """

    def __init__(self, max_failures: int = DEFAULT_MAX_FAILURES,
                 lock_seconds: float = DEFAULT_LOCK_MINUTES * 60, *,
                 base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY,
                 max_keys: int = 100_000, clock: Callable[[], float] = time.time) -> None:
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        if lock_seconds <= 0:
            raise ValueError("lock_seconds must be positive")
        self.max_failures = int(max_failures)
        self.lock_seconds = float(lock_seconds)
        self.base_delay = float(base_delay)
        self.max_delay = float(max_delay)
        self.max_keys = max_keys
        self.clock = clock
        # key -> [failures, next_at, locked_until, expires_at]
        self._records: "OrderedDict[str, List[float]]" = OrderedDict()

    def delay(self, failures: int) -> float:
        """Back-off after ``failures`` counted failures."""
        return min(self.base_delay * 2 ** (failures - 1), self.max_delay)

    def _record(self, key: str, now: float) -> Optional[List[float]]:
        record = self._records.get(key)
        if record is not None and record[3] <= now:
            del self._records[key]
            return None
        return record

    def attempt_now(self, keys: Sequence[str], now: float) -> Verdict:
        """:meth:`attempt` without awaiting (the whole check-and-count is atomic)."""
        locked_until = wait_until = 0.0
        for key in keys:
            record = self._record(key, now)
            if record is None:
                continue
            if record[2] > now:
                locked_until = max(locked_until, record[2])
            if record[1] > now:
                wait_until = max(wait_until, record[1])
        if locked_until:
            return Verdict(False, retry_at=locked_until, locked=True)
        if wait_until:
            return Verdict(False, retry_at=wait_until)
        locks_now = False
        for key in keys:
            record = self._record(key, now) or [0, 0.0, 0.0, 0.0]
            record[0] += 1
            if record[0] >= self.max_failures:
                record[1] = record[2] = now + self.lock_seconds
                locks_now = True
            else:
                record[1] = now + self.delay(int(record[0]))
            record[3] = now + self.lock_seconds
            self._records.pop(key, None)
            self._records[key] = record
        while len(self._records) > self.max_keys:
            self._records.popitem(last=False)
        return Verdict(True, locks_now=locks_now)

    async def attempt(self, keys: Sequence[str]) -> Verdict:
        """Checks the keys and, when none is locked or backing off, counts an attempt."""
        return self.attempt_now(keys, self.clock())

    def succeeded_now(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._records.pop(key, None)

    async def succeeded(self, keys: Sequence[str]) -> None:
        """A right password: forgets the keys' failures."""
        self.succeeded_now(keys)

    async def close(self) -> None:
        """Nothing to release."""


# Same algorithm as LoginThrottle.attempt_now, atomic across replicas. Numbers
# go back as strings (Redis would cut floats to integers).
_ATTEMPT_LUA = """
local now = tonumber(ARGV[1])
local max_failures = tonumber(ARGV[2])
local lock = tonumber(ARGV[3])
local base = tonumber(ARGV[4])
local max_delay = tonumber(ARGV[5])
local locked_until, wait_until = 0, 0
for _, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'locked_until', 'next_at', 'expires_at')
  if (tonumber(v[3]) or 0) <= now then
    redis.call('DEL', key)  -- forgotten (Redis's own expiry may lag behind the clock)
  else
    local l = tonumber(v[1]) or 0
    local n = tonumber(v[2]) or 0
    if l > now and l > locked_until then locked_until = l end
    if n > now and n > wait_until then wait_until = n end
  end
end
if locked_until > 0 then return {'locked', tostring(locked_until)} end
if wait_until > 0 then return {'wait', tostring(wait_until)} end
local locks_now = '0'
for _, key in ipairs(KEYS) do
  local failures = redis.call('HINCRBY', key, 'failures', 1)
  if failures >= max_failures then
    redis.call('HSET', key, 'locked_until', tostring(now + lock), 'next_at', tostring(now + lock))
    locks_now = '1'
  else
    redis.call('HSET', key, 'next_at', tostring(now + math.min(base * 2 ^ (failures - 1), max_delay)))
  end
  redis.call('HSET', key, 'expires_at', tostring(now + lock))
  redis.call('PEXPIRE', key, math.ceil(lock * 1000))
end
return {'ok', locks_now}
"""


class RedisLoginThrottle:
    """The same throttle kept in Redis, shared by every replica.

    Args:
        url: A redis-py URL (``redis://:password@host:6379/0``).
        max_failures, lock_seconds, base_delay, max_delay, clock: As for
            :class:`LoginThrottle` (the clock is wall time, shared by replicas).
        prefix: Prefix of the keys written.
        timeout: Seconds to wait for Redis before falling back to memory.
    """

    def __init__(self, url: str, max_failures: int = DEFAULT_MAX_FAILURES,
                 lock_seconds: float = DEFAULT_LOCK_MINUTES * 60, *,
                 base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY,
                 prefix: str = "walletbot:desk:login:", timeout: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.fallback = LoginThrottle(max_failures, lock_seconds, base_delay=base_delay,
                                      max_delay=max_delay, clock=clock)
        self._bound: Optional[Tuple[asyncio.AbstractEventLoop, Any, Any]] = None

    @property
    def max_failures(self) -> int:
        return self.fallback.max_failures

    @property
    def lock_seconds(self) -> float:
        return self.fallback.lock_seconds

    @property
    def clock(self) -> Callable[[], float]:
        return self.fallback.clock

    def _client(self) -> Tuple[Any, Any]:
        # redis.asyncio connections belong to the event loop that opened them.
        import redis.asyncio as redis_asyncio

        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop:
            client = redis_asyncio.from_url(self.url, decode_responses=True,
                                            socket_timeout=self.timeout,
                                            socket_connect_timeout=self.timeout)
            self._bound = (loop, client, client.register_script(_ATTEMPT_LUA))
        return self._bound[1], self._bound[2]

    async def attempt(self, keys: Sequence[str]) -> Verdict:
        """As :meth:`LoginThrottle.attempt`, for every replica at once."""
        local = self.fallback
        now = local.clock()
        try:
            _, script = self._client()
            kind, value = await asyncio.wait_for(
                script(keys=[self.prefix + k for k in keys],
                       args=[repr(now), local.max_failures, repr(local.lock_seconds),
                             repr(local.base_delay), repr(local.max_delay)]),
                self.timeout,
            )
        except Exception as error:  # redis errors, timeouts, refused connections
            logger.warning("login throttle: Redis unavailable (%s), counting in memory",
                           type(error).__name__)
            return local.attempt_now(keys, now)
        if kind == "locked":
            return Verdict(False, retry_at=float(value), locked=True)
        if kind == "wait":
            return Verdict(False, retry_at=float(value))
        return Verdict(True, locks_now=value == "1")

    async def succeeded(self, keys: Sequence[str]) -> None:
        """Forgets the keys' failures on every replica."""
        self.fallback.succeeded_now(keys)
        try:
            client, _ = self._client()
            await asyncio.wait_for(client.delete(*[self.prefix + k for k in keys]), self.timeout)
        except Exception as error:
            logger.warning("login throttle: Redis unavailable (%s), failures not cleared",
                           type(error).__name__)

    async def close(self) -> None:
        bound, self._bound = self._bound, None
        if bound is not None and bound[0] is asyncio.get_running_loop():
            await bound[1].close()


Throttle = Union[LoginThrottle, RedisLoginThrottle]


def make_throttle(redis_url: Optional[str], *, max_failures: int = DEFAULT_MAX_FAILURES,
                  lock_minutes: float = DEFAULT_LOCK_MINUTES) -> Throttle:
    """The throttle for this deployment: shared through Redis when ``redis_url`` is set."""
    if redis_url:
        return RedisLoginThrottle(redis_url, max_failures, lock_minutes * 60)
    return LoginThrottle(max_failures, lock_minutes * 60)
