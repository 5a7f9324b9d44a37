"""Server-side state of web chat sessions: revocations, activity, open sockets.

A web session token is a signed JWT, valid on its own until it expires; to
make it revocable (logout, an agent ending the session) every check also asks
this store whether the session was revoked. With ``REDIS_URL`` set the store
lives in Redis, so that a logout on one replica is seen by all of them, and
the socket ids of a session are listed there so that any replica can
disconnect them (python-socketio forwards a disconnect of a socket held by
another replica through its Redis channel). Without Redis, one process keeps
it in memory. Every entry expires: a revocation when the last token it can
concern has expired, activity and socket lists soon after they stop mattering.

Keys (Redis): ``walletbot:web:revoked:<session>``, ``walletbot:web:active:<session>``
(last time anything was said in it, epoch seconds), ``walletbot:web:sockets:<session>``
(a set of socket.io sids).

The desk ends a session with :func:`end_web_session`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Dict, Iterable, Optional, Set, Tuple, TypeVar, Union

logger = logging.getLogger(__name__)

KEY_PREFIX = "walletbot:web:"
T = TypeVar("T")


class SessionStoreUnavailable(RuntimeError):
    """The session store (Redis) did not answer: a revocation could not be checked or written."""


def session_of(value: Any) -> str:
    """The web session id in ``value``: a session id ``web-…`` or its conversation id ``web:web-…``.

    Raises:
        ValueError: Not a web session id.
    """
    if isinstance(value, str) and value.startswith("web:"):
        value = value[len("web:"):]
    if not isinstance(value, str) or not value.startswith("web-") or not 4 < len(value) <= 64:
        raise ValueError(f"not a web session id: {value!r}")
    return value


class MemorySessionStore:
    """The store of one process (no replicas).

    Args:
        clock: Wall-clock seconds; tests pass their own.
        max_entries: Entries of each kind kept at most (expired ones go first).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, max_entries: int = 200_000) -> None:
        self.clock = clock
        self.max_entries = max_entries
        self._revoked: Dict[str, float] = {}
        self._active: Dict[str, Tuple[float, float]] = {}  # session -> (when, expires)
        self._sockets: Dict[str, Tuple[Set[str], float]] = {}

    def _prune(self, table: Dict[str, Any], expires: Callable[[Any], float]) -> None:
        if len(table) < self.max_entries:
            return
        now = self.clock()
        for key in [k for k, v in table.items() if expires(v) <= now]:
            del table[key]
        while len(table) >= self.max_entries:  # all live: drop the oldest written
            del table[next(iter(table))]

    async def revoke(self, session_id: str, ttl: float) -> None:
        """Marks the session revoked for ``ttl`` seconds (until its tokens have expired)."""
        self._prune(self._revoked, lambda expires: expires)
        until = self.clock() + max(ttl, 1.0)
        self._revoked[session_id] = max(until, self._revoked.get(session_id, 0.0))

    async def is_revoked(self, session_id: str) -> bool:
        until = self._revoked.get(session_id)
        if until is None:
            return False
        if until <= self.clock():
            del self._revoked[session_id]
            return False
        return True

    async def revoked_among(self, session_ids: Iterable[str]) -> Set[str]:
        return {s for s in set(session_ids) if await self.is_revoked(s)}

    async def touch(self, session_id: str, ttl: float) -> None:
        """Records that something was said in the session now."""
        self._prune(self._active, lambda value: value[1])
        now = self.clock()
        self._active.pop(session_id, None)
        self._active[session_id] = (now, now + ttl)

    async def last_active(self, session_ids: Iterable[str]) -> Dict[str, float]:
        now = self.clock()
        found = {}
        for session_id in set(session_ids):
            value = self._active.get(session_id)
            if value is not None and value[1] > now:
                found[session_id] = value[0]
        return found

    async def add_socket(self, session_id: str, sid: str, ttl: float) -> None:
        self._prune(self._sockets, lambda value: value[1])
        sids, expires = self._sockets.get(session_id, (set(), 0.0))
        sids.add(sid)
        self._sockets[session_id] = (sids, max(expires, self.clock() + max(ttl, 1.0)))

    async def remove_socket(self, session_id: str, sid: str) -> None:
        value = self._sockets.get(session_id)
        if value is not None:
            value[0].discard(sid)
            if not value[0]:
                del self._sockets[session_id]

    async def sockets_of(self, session_id: str) -> Set[str]:
        value = self._sockets.get(session_id)
        if value is None or value[1] <= self.clock():
            return set()
        return set(value[0])

    async def close(self) -> None:
        return None


# Sets the revocation, never shortening one already there (any Redis version).
_REVOKE_LUA = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
"""


class RedisSessionStore:
    """The same store in Redis, shared by every replica.

    Args:
        url: a redis-py URL (``redis://:password@host:6379/0``).
        prefix: Prefix of the keys.
        timeout: Seconds to wait for Redis; longer is :class:`SessionStoreUnavailable`.
    """

    def __init__(self, url: str, *, prefix: str = KEY_PREFIX, timeout: float = 1.0) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self._bound: Optional[Tuple[asyncio.AbstractEventLoop, Any]] = None

    def _client(self) -> Any:
        # redis.asyncio connections belong to the event loop that opened them.
        import redis.asyncio as redis_asyncio

        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop:
            client = redis_asyncio.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                decode_responses=True)
            self._bound = (loop, client)
        return self._bound[1]

    async def _run(self, what: str, call: Callable[[Any], Awaitable[T]]) -> T:
        try:
            return await asyncio.wait_for(call(self._client()), self.timeout)
        except Exception as error:  # redis errors, timeouts, refused connections
            logger.warning("web session store (Redis) unavailable during %s: %s", what,
                           type(error).__name__)
            raise SessionStoreUnavailable(type(error).__name__) from error

    def _key(self, kind: str, session_id: str) -> str:
        return f"{self.prefix}{kind}:{session_id}"

    async def revoke(self, session_id: str, ttl: float) -> None:
        milliseconds = max(int(ttl * 1000), 1000)

        await self._run("revoke", lambda redis: redis.eval(
            _REVOKE_LUA, 1, self._key("revoked", session_id), milliseconds))

    async def is_revoked(self, session_id: str) -> bool:
        return bool(await self._run(
            "is_revoked", lambda redis: redis.exists(self._key("revoked", session_id))))

    async def revoked_among(self, session_ids: Iterable[str]) -> Set[str]:
        sessions = sorted(set(session_ids))
        if not sessions:
            return set()
        values = await self._run("revoked_among", lambda redis: redis.mget(
            [self._key("revoked", s) for s in sessions]))
        return {s for s, value in zip(sessions, values) if value is not None}

    async def touch(self, session_id: str, ttl: float) -> None:
        await self._run("touch", lambda redis: redis.set(
            self._key("active", session_id), f"{time.time():.3f}", px=max(int(ttl * 1000), 1000)))

    async def last_active(self, session_ids: Iterable[str]) -> Dict[str, float]:
        sessions = sorted(set(session_ids))
        if not sessions:
            return {}
        values = await self._run("last_active", lambda redis: redis.mget(
            [self._key("active", s) for s in sessions]))
        found = {}
        for session_id, value in zip(sessions, values):
            try:
                if value is not None:
                    found[session_id] = float(value)
            except ValueError:  # not written by us: that session has no known activity
                logger.warning("web session store: unreadable activity time of a session")
        return found

    async def add_socket(self, session_id: str, sid: str, ttl: float) -> None:
        milliseconds = max(int(ttl * 1000), 1000)

        async def call(redis: Any) -> None:
            key = self._key("sockets", session_id)
            async with redis.pipeline(transaction=True) as pipe:
                pipe.sadd(key, sid)
                pipe.pexpire(key, milliseconds)
                await pipe.execute()

        await self._run("add_socket", call)

    async def remove_socket(self, session_id: str, sid: str) -> None:
        await self._run("remove_socket", lambda redis: redis.srem(
            self._key("sockets", session_id), sid))

    async def sockets_of(self, session_id: str) -> Set[str]:
        return set(await self._run("sockets_of", lambda redis: redis.smembers(
            self._key("sockets", session_id))))

    async def close(self) -> None:
        bound, self._bound = self._bound, None
        if bound is not None and bound[0] is asyncio.get_running_loop():
            await bound[1].close()


SessionStore = Union[MemorySessionStore, RedisSessionStore]


def make_store(redis_url: Optional[str]) -> SessionStore:
    """Redis when ``redis_url`` is set (all replicas see one state), else in memory."""
    return RedisSessionStore(redis_url) if redis_url else MemorySessionStore()


def web_channel_of(app: Any) -> Any:
    """The server's web chat channel (:class:`~walletbot.channels.web.channel.WebChatInput`)."""
    from walletbot.channels.web.channel import WebChatInput

    ctx = getattr(app, "ctx", None)
    channel = getattr(ctx, "web_chat", None)
    if isinstance(channel, WebChatInput):
        return channel
    for candidate in getattr(ctx, "input_channels", None) or []:
        if isinstance(candidate, WebChatInput):
            return candidate
    raise LookupError("this server has no web chat channel (walletbot.channels.web.WebChatInput)")


async def end_web_session(app: Any, session_id: str) -> Dict[str, Any]:
    """Ends a web chat session for good: the agent desk's "end session".

    Revokes every token of the session (on every replica, through Redis when
    ``REDIS_URL`` is set), tells its open pages and disconnects their sockets
    (wherever they are connected), and removes the session's wallet-user
    binding. The conversation itself stays (the desk still shows it).

    Args:
        app: The Rasa server's Sanic app (``request.app`` in a desk handler).
        session_id: ``web-…`` or the conversation id ``web:web-…``.

    Returns:
        ``{"session": id, "sockets": sockets told to disconnect, "unbound": whether a binding was removed}``.

    Raises:
        ValueError: Not a web session id.
        LookupError: The server has no web chat channel.
        SessionStoreUnavailable: Redis is down: nothing was revoked, try again.
        walletbot.store.service.WalletUnavailable: Revoked and disconnected,
            but the wallet DB did not answer, so the binding is still there.
    """
    session = session_of(session_id)
    return await web_channel_of(app).end_session(session, reason="ended")
