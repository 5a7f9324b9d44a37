"""Sessions revoked at logout, keyed by the token's ``jti``, until the token expires.

A signed session token is valid until its ``exp`` on its own; logging out
puts its ``jti`` on this list so that the same token (cookie or Bearer)
stops working at once. :class:`RevocationList` is one server's memory;
:class:`RedisRevocationList` is shared by every replica (``SET … EX`` with the
token's remaining lifetime, so the list never outgrows the live sessions).

When Redis does not answer, :meth:`RedisRevocationList.is_revoked` raises
:class:`RevocationUnavailable`: the desk then refuses the request (503)
rather than accept a token another replica may have revoked.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

logger = logging.getLogger(__name__)


class RevocationUnavailable(RuntimeError):
    """The shared revocation list could not be read."""


class RevocationList:
    """Revoked token ids in memory (one Rasa server).

    Args:
        clock: Wall-clock seconds; tests pass their own.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._until: Dict[str, float] = {}
        self._expiry: List[Tuple[float, str]] = []

    def _prune(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            until, jti = heapq.heappop(self._expiry)
            if self._until.get(jti) == until:
                del self._until[jti]

    def revoke_now(self, jti: str, expires_at: float) -> None:
        now = self.clock()
        self._prune(now)
        if expires_at > now:
            self._until[jti] = expires_at
            heapq.heappush(self._expiry, (expires_at, jti))

    async def revoke(self, jti: str, expires_at: float) -> None:
        """Refuses the token ``jti`` from now until ``expires_at`` (epoch seconds)."""
        self.revoke_now(jti, expires_at)

    def is_revoked_now(self, jti: str) -> bool:
        self._prune(self.clock())
        return jti in self._until

    async def is_revoked(self, jti: str) -> bool:
        """Whether the token was revoked."""
        return self.is_revoked_now(jti)

    async def close(self) -> None:
        """Nothing to release."""


class RedisRevocationList:
    """Revoked token ids in Redis, seen by every replica.

    Args:
        url: A redis-py URL.
        prefix: Prefix of the keys written.
        timeout: Seconds to wait for Redis.
        clock: Wall-clock seconds.
    """

    def __init__(self, url: str, *, prefix: str = "walletbot:desk:revoked:",
                 timeout: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.clock = clock
        # This replica's own revocations hold even while Redis is down.
        self.local = RevocationList(clock=clock)
        self._bound: Optional[Tuple[asyncio.AbstractEventLoop, Any]] = None

    def _client(self) -> Any:
        import redis.asyncio as redis_asyncio

        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop:
            self._bound = (loop, redis_asyncio.from_url(
                self.url, decode_responses=True, socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout))
        return self._bound[1]

    async def revoke(self, jti: str, expires_at: float) -> None:
        """Refuses the token on every replica until ``expires_at``.

        Raises:
            RevocationUnavailable: Redis did not take it (this replica still refuses it).
        """
        self.local.revoke_now(jti, expires_at)
        seconds = int(expires_at - self.clock()) + 1
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._client().set(self.prefix + jti, "1", ex=seconds),
                                   self.timeout)
        except Exception as error:
            logger.error("session revocation not shared, Redis unavailable: %s",
                         type(error).__name__)
            raise RevocationUnavailable(type(error).__name__) from error

    async def is_revoked(self, jti: str) -> bool:
        """Whether any replica revoked the token.

        Raises:
            RevocationUnavailable: Redis did not answer.
        """
        if self.local.is_revoked_now(jti):
            return True
        try:
            return bool(await asyncio.wait_for(self._client().exists(self.prefix + jti),
                                               self.timeout))
        except Exception as error:
            logger.warning("session revocation not checked, Redis unavailable: %s",
                           type(error).__name__)
            raise RevocationUnavailable(type(error).__name__) from error

    async def close(self) -> None:
        bound, self._bound = self._bound, None
        if bound is not None and bound[0] is asyncio.get_running_loop():
            await bound[1].close()


Revocations = Union[RevocationList, RedisRevocationList]


def make_revocations(redis_url: Optional[str]) -> Revocations:
    """The list for this deployment: shared through Redis when ``redis_url`` is set."""
    return RedisRevocationList(redis_url) if redis_url else RevocationList()
