"""De-duplication of WeChat's retries and per-user channel state.

WeChat re-sends a message it got no answer for within 5 seconds, up to three
times, with the same ``MsgId`` (events: the same sender and ``CreateTime``).
The first delivery *claims* the key and runs the bot turn; every retry waits
for the stored *result* (the passive reply, or the note that the answer goes
out through the customer-service API) instead of running the turn again.

The store also remembers the payloads of the numbered options last shown to
each OpenID, so that a reply of "2" can be mapped to the second button.

Two implementations: ``MemoryDedupeStore`` (one process, the default) and
``RedisDedupeStore`` (``REDIS_URL`` set: several Rasa replicas agree).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from abc import ABC, abstractmethod
from typing import Any, Callable, Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)

# Retries come within ~15 s; keep keys well past that.
DEFAULT_TTL = 600.0
# Numbered options stay answerable for a day.
DEFAULT_CHOICES_TTL = 24 * 3600.0
POLL_INTERVAL = 0.05

Result = Dict[str, Any]


class DedupeStore(ABC):
    """Where the channel records claimed messages, their results and options."""

    poll_interval: float = POLL_INTERVAL

    @abstractmethod
    async def claim(self, key: str) -> bool:
        """Claims ``key`` for processing.

        Args:
            key: the message's de-duplication key.

        Returns:
            ``True`` for the first caller within the TTL, ``False`` for retries.
        """

    @abstractmethod
    async def set_result(self, key: str, result: Result) -> None:
        """Stores the result of the claimed message ``key`` (JSON-serialisable)."""

    @abstractmethod
    async def get_result(self, key: str) -> Optional[Result]:
        """The stored result of ``key``, ``None`` while it is still being processed."""

    async def wait_result(self, key: str, timeout: float) -> Optional[Result]:
        """Waits up to ``timeout`` seconds for the result of ``key``.

        Returns:
            The result, or ``None`` if there was none in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = await self.get_result(key)
            if result is not None:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            await asyncio.sleep(min(self.poll_interval, remaining))

    @abstractmethod
    async def set_choices(self, openid: str, choices: List[str]) -> None:
        """Remembers the payloads of the options last shown to ``openid``.

        An empty list forgets them.
        """

    @abstractmethod
    async def get_choices(self, openid: str) -> List[str]:
        """The payloads of the options last shown to ``openid`` (maybe empty)."""

    async def claim_with_choices(self, key: str, openid: str) -> Tuple[bool, List[str]]:
        """:meth:`claim` and :meth:`get_choices` at once (a retry does not use the options)."""
        return await self.claim(key), await self.get_choices(openid)

    async def finish(self, key: str, result: Result, openid: str,
                     choices: Optional[List[str]]) -> None:
        """:meth:`set_choices` (unless ``choices`` is None), then :meth:`set_result`.

        In this order: a retry that sees the result may be followed at once
        by the user's next message, which must find the options.
        """
        if choices is not None:
            await self.set_choices(openid, choices)
        await self.set_result(key, result)

    async def close(self) -> None:
        """Releases connections (no-op by default)."""


class MemoryDedupeStore(DedupeStore):
    """In-process store with expiry; right for a single Rasa server."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        choices_ttl: float = DEFAULT_CHOICES_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Creates an empty store.

        Args:
            ttl: seconds a claim and its result are kept.
            choices_ttl: seconds the numbered options of a user are kept.
            clock: monotonic clock (tests pass a fake one).
        """
        self.ttl = ttl
        self.choices_ttl = choices_ttl
        self._clock = clock
        self._data: Dict[str, Tuple[Any, float]] = {}
        self._next_sweep = 0.0

    def _sweep(self) -> None:
        now = self._clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 1.0
        for key in [k for k, (_, exp) in self._data.items() if exp <= now]:
            del self._data[key]

    def _get(self, key: str) -> Any:
        self._sweep()
        item = self._data.get(key)
        if item is None or item[1] <= self._clock():
            return None
        return item[0]

    def _set(self, key: str, value: Any, ttl: float) -> None:
        self._data[key] = (value, self._clock() + ttl)

    def __len__(self) -> int:
        self._sweep()
        return len(self._data)

    async def claim(self, key: str) -> bool:
        if self._get(f"claim:{key}") is not None:
            return False
        self._set(f"claim:{key}", True, self.ttl)
        return True

    async def set_result(self, key: str, result: Result) -> None:
        self._set(f"result:{key}", json.loads(json.dumps(result)), self.ttl)

    async def get_result(self, key: str) -> Optional[Result]:
        return self._get(f"result:{key}")

    async def set_choices(self, openid: str, choices: List[str]) -> None:
        if choices:
            self._set(f"choices:{openid}", list(choices), self.choices_ttl)
        else:
            self._data.pop(f"choices:{openid}", None)

    async def get_choices(self, openid: str) -> List[str]:
        return list(self._get(f"choices:{openid}") or [])


class RedisDedupeStore(DedupeStore):
    """Redis store: ``SET NX EX`` claims, so several replicas process a message once."""

    poll_interval = 0.1

    def __init__(
        self,
        url: str,
        ttl: float = DEFAULT_TTL,
        choices_ttl: float = DEFAULT_CHOICES_TTL,
        prefix: str = "walletbot:wechat:",
    ) -> None:
        """Creates a store on the Redis server at ``url``.

        Args:
            url: a redis-py URL (``redis://host:6379/0``).
            ttl: seconds a claim and its result are kept.
            choices_ttl: seconds the numbered options of a user are kept.
            prefix: prefix of every key this store writes.
        """
        self.url = url
        self.ttl = ttl
        self.choices_ttl = choices_ttl
        self.prefix = prefix
        self._bound: Optional[Tuple[asyncio.AbstractEventLoop, Any]] = None

    def _client(self) -> Any:
        # redis.asyncio connections belong to the event loop that opened them.
        import redis.asyncio as redis_asyncio

        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop:
            # Short timeouts: a hung Redis must not hold WeChat's request past
            # its 5 s; the channel then answers without de-duplication.
            self._bound = (loop, redis_asyncio.from_url(
                self.url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2))
        return self._bound[1]

    async def claim(self, key: str) -> bool:
        done = await self._client().set(
            f"{self.prefix}claim:{key}", "1", nx=True, ex=int(self.ttl)
        )
        return bool(done)

    async def set_result(self, key: str, result: Result) -> None:
        await self._client().set(
            f"{self.prefix}result:{key}",
            json.dumps(result, ensure_ascii=False),
            ex=int(self.ttl),
        )

    # The two pairs a message always needs go out as one pipeline each: one
    # round trip instead of two (a message's four channel commands were a
    # third of a replica's Redis time, bench/RESULTS.md). Not MULTI: each
    # command stands alone, as when sent one by one.
    async def claim_with_choices(self, key: str, openid: str) -> Tuple[bool, List[str]]:
        pipe = self._client().pipeline(transaction=False)
        pipe.set(f"{self.prefix}claim:{key}", "1", nx=True, ex=int(self.ttl))
        pipe.get(f"{self.prefix}choices:{openid}")
        done, raw = await pipe.execute()
        return bool(done), list(json.loads(raw)) if raw else []

    async def finish(self, key: str, result: Result, openid: str,
                     choices: Optional[List[str]]) -> None:
        pipe = self._client().pipeline(transaction=False)
        if choices is not None:
            self._queue_choices(pipe, openid, choices)
        pipe.set(f"{self.prefix}result:{key}", json.dumps(result, ensure_ascii=False),
                 ex=int(self.ttl))
        await pipe.execute()

    def _queue_choices(self, client: Any, openid: str, choices: List[str]) -> Any:
        key = f"{self.prefix}choices:{openid}"
        if choices:
            return client.set(key, json.dumps(list(choices), ensure_ascii=False),
                              ex=int(self.choices_ttl))
        return client.delete(key)

    async def get_result(self, key: str) -> Optional[Result]:
        raw = await self._client().get(f"{self.prefix}result:{key}")
        return json.loads(raw) if raw else None

    async def set_choices(self, openid: str, choices: List[str]) -> None:
        await self._queue_choices(self._client(), openid, choices)

    async def get_choices(self, openid: str) -> List[str]:
        raw = await self._client().get(f"{self.prefix}choices:{openid}")
        return list(json.loads(raw)) if raw else []

    async def close(self) -> None:
        bound, self._bound = self._bound, None
        if bound is not None and bound[0] is asyncio.get_running_loop():
            try:
                await bound[1].close()
            except Exception:  # pragma: no cover - closing a dead connection
                logger.debug("closing the Redis client failed", exc_info=True)


def make_store(redis_url: Optional[str] = None) -> DedupeStore:
    """The store for this deployment: Redis when ``redis_url`` is set, else memory."""
    if redis_url:
        return RedisDedupeStore(redis_url)
    return MemoryDedupeStore()
