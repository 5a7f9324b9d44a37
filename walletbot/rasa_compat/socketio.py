"""socket.io fan-out over Redis that comes back quickly after a Redis outage.

With several Rasa replicas, an emit on one replica (an agent's reply pushed
from the desk API, say) reaches a socket on another replica only through the
Redis channel that every replica is subscribed to. The stock
``socketio.AsyncRedisManager`` backs off 1, 2, 4 ... 60 s after losing Redis,
so a replica can stay unsubscribed for a minute after Redis is back, and every
cross-replica push published in that window is lost without a trace.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Dict, Optional
from urllib.parse import urlparse

import socketio
from socketio.redis_manager import parse_redis_sentinel_url

logger = logging.getLogger(__name__)

# A hung Redis (or a dead peer that never sent FIN) must not hold a publish,
# which runs inside a user's turn, for longer than about a second.
DEFAULT_REDIS_OPTIONS: Dict[str, Any] = {"socket_connect_timeout": 1.0, "socket_timeout": 1.0}


class ResilientRedisManager(socketio.AsyncRedisManager):
    """``AsyncRedisManager`` with a short reconnect backoff and bounded publishes.

    Local delivery is unchanged: ``AsyncPubSubManager.emit`` delivers to this
    replica's sockets before publishing, so it works while Redis is down.
    """

    name = "walletbot-redis"

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        channel: str = "socketio",
        write_only: bool = False,
        logger: Optional[logging.Logger] = None,
        json: Any = None,
        redis_options: Optional[Dict[str, Any]] = None,
        *,
        min_backoff: float = 0.1,
        max_backoff: float = 1.0,
        publish_retry_for: float = 1.0,
        ping_interval: float = 5.0,
        ping_timeout: float = 2.0,
    ) -> None:
        super().__init__(url, channel=channel, write_only=write_only, logger=logger, json=json,
                         redis_options={**DEFAULT_REDIS_OPTIONS, **(redis_options or {})})
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.publish_retry_for = publish_retry_for
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        # True while Redis has confirmed our SUBSCRIBE on a live connection.
        self.listening = False
        self._publish_failing = False

    def _client(self, **overrides: Any) -> Any:
        """A new Redis client (nothing connects until it is used)."""
        module = self._get_redis_module()
        options = {**self.redis_options, **overrides}
        if urlparse(self.redis_url).scheme in {"redis+sentinel", "valkey+sentinel"}:
            sentinels, service_name, connection_kwargs = parse_redis_sentinel_url(self.redis_url)
            options.update(connection_kwargs)
            return module.sentinel.Sentinel(sentinels, **options).master_for(
                service_name or self.channel)
        return module.Redis.from_url(self.redis_url, **options)

    # -- publishing -----------------------------------------------------------

    async def _publish(self, data: Any) -> Any:
        payload = self.json.dumps(data)
        loop = asyncio.get_running_loop()
        # Retrying rides out a Redis restart; once we know Redis is down, a
        # single attempt per publish, so that every bot message of a turn is
        # not held back by a full retry budget.
        deadline = loop.time() + (0.0 if self._publish_failing else self.publish_retry_for)
        delay = self.min_backoff
        while True:
            try:
                if self.redis is None:
                    # One client for the manager's life: its pool drops a
                    # broken connection and dials again on the next command,
                    # so a new client per failure would only leak pools.
                    self.redis = self._client()
                result = await self.redis.publish(self.channel, payload)
            except Exception as exc:
                if loop.time() + delay > deadline:
                    if not self._publish_failing:
                        self._publish_failing = True
                        logger.warning(
                            "socket.io fan-out: cannot publish to Redis (%s: %s); pushes to "
                            "sockets on other replicas are dropped until Redis is back",
                            type(exc).__name__, exc)
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
            else:
                if self._publish_failing:
                    self._publish_failing = False
                    logger.info("socket.io fan-out: publishing to Redis again")
                return result

    # -- listening ------------------------------------------------------------

    async def _redis_listen_with_retries(self) -> AsyncIterator[Dict[str, Any]]:
        loop = asyncio.get_running_loop()
        delay = self.min_backoff
        down_since: Optional[float] = None
        while True:
            # See _messages for why the subscription has no socket_timeout.
            client = self._client(socket_timeout=None)
            pubsub = client.pubsub()
            messages = self._messages(pubsub)
            try:
                async for message in messages:
                    if message["type"] == "subscribe":
                        self.listening = True
                        delay = self.min_backoff
                        if down_since is not None:
                            logger.info(
                                "socket.io fan-out: Redis subscription restored after %.1f s",
                                loop.time() - down_since)
                            down_since = None
                    else:
                        yield message
            except Exception as exc:
                self.listening = False
                if down_since is None:
                    down_since = loop.time()
                    logger.warning(
                        "socket.io fan-out: lost the Redis subscription (%s: %s); pushes from "
                        "other replicas are lost until it is back; retrying every %.1f s at most",
                        type(exc).__name__, exc, self.max_backoff)
                else:
                    logger.debug("socket.io fan-out: Redis still unreachable (%s)", exc)
            finally:
                # Closing the generator explicitly, not whenever it is
                # collected, ends its pending read before the connection goes.
                await messages.aclose()
                await _discard(pubsub, client)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff)

    async def _messages(self, pubsub: Any) -> AsyncIterator[Dict[str, Any]]:
        """Pubsub messages, raising ``TimeoutError`` when Redis stops answering.

        Not ``pubsub.listen()``: it reads with the connection's socket_timeout,
        so an idle channel raises TimeoutError every socket_timeout seconds
        (redis 4.6), and without a socket_timeout a peer that vanished without
        closing the connection (host gone, network partition) blocks it
        forever. Nor ``get_message(timeout=...)``: its ``async_timeout`` turns
        a cancel that lands as the timeout fires into a plain timeout, so the
        listener task could survive being cancelled at shutdown. So one read
        without any timeout stays in flight on the subscription, we wait for
        it with ``asyncio.wait`` (which never swallows a cancel), and a PING
        after ``ping_interval`` of silence tells a quiet channel from a dead one.
        """
        loop = asyncio.get_running_loop()
        # Connecting (and AUTH) has no read timeout on this connection either.
        await _bounded(pubsub.subscribe(self.channel), self.ping_timeout)
        last_read = loop.time()
        owed_since: Optional[float] = last_read  # the SUBSCRIBE is owed a reply
        read: Optional[asyncio.Future] = None
        try:
            while True:
                if read is None:
                    read = asyncio.ensure_future(pubsub.get_message(timeout=None))
                if owed_since is None:
                    deadline = last_read + self.ping_interval
                else:
                    deadline = owed_since + self.ping_timeout
                done, _ = await asyncio.wait({read}, timeout=max(deadline - loop.time(), 0.0))
                now = loop.time()
                if done:
                    finished, read = read, None
                    message = finished.result()  # raises when the connection broke
                    last_read, owed_since = now, None
                    if message is not None and message["type"] != "pong":
                        yield message
                elif owed_since is not None:
                    raise TimeoutError(f"no reply from Redis within {self.ping_timeout} s")
                else:
                    await pubsub.ping()
                    owed_since = now
        finally:
            if read is not None:
                _abandon(read)


async def _bounded(awaitable: Any, timeout: float) -> Any:
    """``awaitable``'s result, or ``TimeoutError`` after ``timeout`` seconds."""
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException:
        _abandon(task)
        raise
    if not done:
        _abandon(task)
        raise TimeoutError(f"no reply from Redis within {timeout} s")
    return task.result()


def _abandon(task: asyncio.Future) -> None:
    task.cancel()
    # An error it finished with meanwhile is moot; don't log it as unretrieved.
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


async def _discard(pubsub: Any, client: Any) -> None:
    """Close a failed attempt's connections, so reconnects do not pile them up."""
    try:
        if pubsub.connection is not None:
            # nowait: a hung peer would stall a graceful close, and the reconnect with it.
            await pubsub.connection.disconnect(nowait=True)
        await client.close(close_connection_pool=True)
    except Exception as exc:  # the connection may already be half gone
        logger.debug("socket.io fan-out: closing a Redis connection failed: %s", exc)
