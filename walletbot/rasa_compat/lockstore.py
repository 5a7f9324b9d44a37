"""A Redis lock store that stays correct with several Rasa replicas.

Rasa serialises the turns of one conversation with a *ticket lock*: each
incoming message takes a ticket, waits until its number is served, runs the
turn, then gives the ticket back. Rasa 3.6's ``RedisLockStore`` keeps the lock
as one JSON value and changes it by reading it, editing it in Python and
writing it back. Two replicas doing that at the same moment for the same
conversation can both draw ticket 0 and run two turns of one conversation at
once, or one replica's release can overwrite the other's new ticket
(RasaHQ/rasa#9213; Rasa's fix, #11256, was reverted in #11428).

:class:`AtomicRedisLockStore` makes every change of a lock one Lua script,
which Redis runs atomically, so ticket numbers are unique and turns of one
conversation never overlap, whichever replica the messages reach. Keys, their
format and the waiting logic are Rasa's own (Rasa's stores read what the
scripts write).

A turn that finds its conversation free costs two round trips: one script
issues the ticket and says whether it is served already, one gives it back
(only a ticket that must wait polls Rasa's way). A read-modify-write in a
watched transaction costs seven per turn. A turn's lock (``lock()``, the only
way Rasa's agent and server take one) talks to Redis with ``redis.asyncio``,
so while Redis answers, the replica's event loop runs other requests; Rasa's
own store blocks the loop for every round trip, which under load, with Redis
competing for the same cores, is what a whole replica waits for. The
synchronous methods (``issue_ticket``, ``get_lock``...) stay for other callers.

When Redis is down or hangs, a turn must fail fast (the channels then answer
with an apology), and a synchronous call that waits blocks *every* request of
that replica. Hence a short socket timeout (2 s instead of Rasa's 10 s, for
connecting too), and after a failed call the store fails at once, without
touching Redis, for ``retry_after`` seconds: a burst of messages during an
outage costs one timeout per replica, not one each, one after the other. The
first call after that tries Redis again (on a new connection), so the store
recovers by itself when Redis is back. In ``endpoints.yml``::

    lock_store:
      type: walletbot.rasa_compat.lockstore.AtomicRedisLockStore
      url: ${REDIS_HOST}          # host, as for Rasa's `type: redis`
      port: ${REDIS_PORT}
      db: ${REDIS_DB}
      password: ${REDIS_PASSWORD} # empty: no AUTH
      key_prefix: walletbot       # keys are walletbot:lock:<conversation id>
      # socket_timeout: 2         # seconds (connect and each reply)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
import uuid
import weakref
from typing import Any, AsyncGenerator, Awaitable, Callable, List, Optional, Text, Tuple, TypeVar

import redis
from rasa.core.lock import NO_TICKET_ISSUED, Ticket, TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SOCKET_TIMEOUT = 2.0  # seconds; lock operations take well under a millisecond
DEFAULT_RETRY_AFTER = 3.0     # seconds of failing fast after Redis failed
MAX_UNCERTAIN = 1000          # tickets remembered to drop after an outage (the rest expire)

_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, asyncio.TimeoutError)


class FailingFast(redis.ConnectionError):
    """Redis failed moments ago, so the call was not even tried."""

# The lock's stored form is Rasa's (TicketLock.dumps): {"conversation_id": ...,
# "tickets": [<each ticket as a JSON string {"number": n, "expires": t}>]}.
# The scripts keep the ticket strings they do not drop as they are, and write
# the outer object with the conversation id Python encoded, so Rasa's own
# TicketLock.from_dict reads what they write. Expiry is compared against the
# `now` Python passes (the clock Rasa's own stores use), not Redis's clock.
_KEEP_LIVE = """
local function live_tickets(raw, now, drop, owner)
  local kept = {}
  local last = nil
  if raw then
    for _, text in ipairs(cjson.decode(raw)["tickets"]) do
      local ticket = cjson.decode(text)
      if ticket["expires"] >= now and ticket["number"] ~= drop
          and (owner == nil or ticket["owner"] ~= owner) then
        table.insert(kept, text)
        last = ticket["number"]
      end
    end
  end
  return kept, last
end
local function store(key, conversation, kept)
  if #kept == 0 then
    redis.call("DEL", key)
    return
  end
  local quoted = {}
  for i, text in ipairs(kept) do quoted[i] = cjson.encode(text) end
  redis.call("SET", key, '{"conversation_id": ' .. conversation .. ', "tickets": [' ..
             table.concat(quoted, ", ") .. "]}")
end
"""

# KEYS[1] lock key; ARGV: now, the new ticket's expiry (Python repr), the
# conversation id as JSON, the ticket's owner (a random token; Rasa ignores the
# key). Returns {ticket number, number now served}.
_ISSUE = _KEEP_LIVE + """
local raw = redis.call("GET", KEYS[1])
local kept, last = live_tickets(raw or nil, tonumber(ARGV[1]), nil, nil)
local number = (last or NO_TICKET_ISSUED) + 1
table.insert(kept, '{"number": ' .. number .. ', "expires": ' .. ARGV[2] ..
                   ', "owner": "' .. ARGV[4] .. '"}')
store(KEYS[1], ARGV[3], kept)
return {number, cjson.decode(kept[1])["number"]}
""".replace("NO_TICKET_ISSUED", str(NO_TICKET_ISSUED))

# KEYS[1] lock key; ARGV: now, the ticket number to give back (empty: none),
# the conversation id as JSON, the owner whose tickets to drop (empty: none).
# Expired tickets go too. Writes only when something was dropped; returns how
# many tickets were.
_RELEASE = _KEEP_LIVE + """
local raw = redis.call("GET", KEYS[1])
if not raw then return 0 end
local before = #cjson.decode(raw)["tickets"]
local owner = nil
if ARGV[4] ~= "" then owner = ARGV[4] end
local kept = live_tickets(raw, tonumber(ARGV[1]), tonumber(ARGV[2]), owner)
if #kept ~= before then store(KEYS[1], ARGV[3], kept) end
return before - #kept
"""


class AtomicRedisLockStore(RedisLockStore):
    """Rasa's Redis ticket lock with atomic updates (safe across replicas)."""

    retry_after = DEFAULT_RETRY_AFTER

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        """Connects to Redis.

        Args:
            endpoint_config: The ``lock_store`` section of ``endpoints.yml``
                (Rasa passes it for a custom ``type``): ``url`` is the host;
                ``port``, ``db``, ``username``, ``password``, ``use_ssl``,
                ``key_prefix``, ``socket_timeout`` as for ``type: redis``.
            **kwargs: The same keys directly (tests); they win over the section.
        """
        options: dict = {}
        if endpoint_config is not None:
            options.update(endpoint_config.kwargs)
            if endpoint_config.url:
                options["host"] = endpoint_config.url
        options.update(kwargs)
        for key in ("username", "password"):
            if options.get(key) in ("", None):  # `${REDIS_PASSWORD}` may be empty
                options.pop(key, None)
        if isinstance(options.get("use_ssl"), str):
            options["use_ssl"] = options["use_ssl"].strip().lower() in ("1", "true", "yes")
        timeout = options.get("socket_timeout")
        options["socket_timeout"] = (DEFAULT_SOCKET_TIMEOUT if timeout in ("", None)
                                     else float(timeout))
        super().__init__(**options)
        # Monotonic time until which calls fail without trying Redis (see the module).
        self._unavailable_until = 0.0
        self._per_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Tuple[Any, Any]]" = (
            weakref.WeakKeyDictionary())
        self._pending: set = set()  # releases still running for cancelled turns
        self._sync_scripts: Optional[Tuple[Any, Any]] = None
        # (conversation, owner) of tickets whose issue call failed on the way.
        self._uncertain: List[Tuple[Text, Text]] = []
        self._ssl_options = ({key: options[key] for key in
                              ("ssl_certfile", "ssl_keyfile", "ssl_ca_certs") if options.get(key)}
                             if options.get("use_ssl") else None)

    def _failed(self, error: Exception) -> None:
        self._unavailable_until = time.monotonic() + self.retry_after
        logger.error("Redis lock store unavailable (%s: %s); failing fast for %g s",
                     type(error).__name__, error, self.retry_after)

    def _check_available(self) -> None:
        wait = self._unavailable_until - time.monotonic()
        if wait > 0:
            raise FailingFast(
                f"Redis failed moments ago; the lock store tries again in {wait:.1f} s")

    def _redis(self, operation: Callable[[], T]) -> T:
        """Runs ``operation`` against Redis, failing fast for a while after a failure."""
        self._check_available()
        try:
            if self._uncertain:
                self._sweep(lambda conversation_id, owner: self._scripts()[1](
                    keys=[self.key_prefix + conversation_id],
                    args=self._release_args(conversation_id, None, owner)))
            return operation()
        except _UNAVAILABLE as error:
            self._failed(error)
            raise

    async def _aredis(self, operation: Callable[[], Awaitable[T]]) -> T:
        """:meth:`_redis` for ``redis.asyncio`` calls (the same fail-fast window)."""
        self._check_available()
        try:
            if self._uncertain:
                for conversation_id, owner in self._take_uncertain():
                    try:
                        await self._async_scripts()[1](
                            keys=[self.key_prefix + conversation_id],
                            args=self._release_args(conversation_id, None, owner))
                    except BaseException:
                        self._uncertain.append((conversation_id, owner))
                        raise
            return await operation()
        except _UNAVAILABLE as error:
            self._failed(error)
            raise

    def _take_uncertain(self) -> List[Tuple[Text, Text]]:
        taken, self._uncertain = self._uncertain, []
        return taken

    def _sweep(self, release: Callable[[Text, Text], Any]) -> None:
        for conversation_id, owner in self._take_uncertain():
            try:
                release(conversation_id, owner)
            except BaseException:
                self._uncertain.append((conversation_id, owner))
                raise

    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        """The conversation's lock, if any (Rasa's, through :meth:`_redis`)."""
        return self._redis(lambda: super(AtomicRedisLockStore, self).get_lock(conversation_id))

    def delete_lock(self, conversation_id: Text) -> None:
        """Deletes the conversation's lock (Rasa's, through :meth:`_redis`)."""
        self._redis(lambda: super(AtomicRedisLockStore, self).delete_lock(conversation_id))

    def save_lock(self, lock: TicketLock) -> None:
        """Stores ``lock`` (Rasa's, through :meth:`_redis`)."""
        self._redis(lambda: super(AtomicRedisLockStore, self).save_lock(lock))

    # -- the scripts, synchronous (Rasa's methods) and on redis.asyncio (lock()) --

    def _scripts(self) -> Tuple[Any, Any]:
        """The two scripts on the synchronous client (EVALSHA; loaded again if Redis lost them)."""
        if self._sync_scripts is None:
            self._sync_scripts = (self.red.register_script(_ISSUE),
                                  self.red.register_script(_RELEASE))
        return self._sync_scripts

    def _async_scripts(self) -> Tuple[Any, Any]:
        """The running loop's ``redis.asyncio`` scripts (its connections belong to that loop)."""
        loop = asyncio.get_running_loop()
        scripts = self._per_loop.get(loop)
        if scripts is None:
            import redis.asyncio as redis_asyncio

            options = self.red.connection_pool.connection_kwargs
            client = redis_asyncio.Redis(
                host=options["host"], port=options["port"], db=options["db"],
                username=options.get("username"), password=options.get("password"),
                socket_timeout=options["socket_timeout"],
                socket_connect_timeout=(options.get("socket_connect_timeout")
                                        or options["socket_timeout"]),
                ssl=self._ssl_options is not None, **(self._ssl_options or {}))
            scripts = self._per_loop[loop] = (client.register_script(_ISSUE),
                                              client.register_script(_RELEASE))
        return scripts

    def _issue_args(self, conversation_id: Text, lock_lifetime: float) -> Tuple[List[str], float, str]:
        now = time.time()
        expires = now + lock_lifetime
        owner = uuid.uuid4().hex
        return [repr(now), repr(expires), json.dumps(conversation_id), owner], expires, owner

    def _release_args(self, conversation_id: Text, ticket_number: Optional[int],
                      owner: Optional[str] = None) -> List[str]:
        return [repr(time.time()), "" if ticket_number is None else str(ticket_number),
                json.dumps(conversation_id), owner or ""]

    def _unsure(self, conversation_id: Text, owner: str, error: BaseException) -> None:
        """After an issue call that failed on the way: its ticket may exist; drop it later."""
        if (isinstance(error, _UNAVAILABLE) and not isinstance(error, FailingFast)
                and len(self._uncertain) < MAX_UNCERTAIN):
            # The script may have run with its reply lost (Redis hung, then
            # resumed): the ticket would hold the conversation until it expired.
            self._uncertain.append((conversation_id, owner))

    def _issue(self, conversation_id: Text, lock_lifetime: float) -> Tuple[int, int, float]:
        """Runs the issuing script: the new ticket's number, the number now served, its expiry."""
        args, expires, owner = self._issue_args(conversation_id, lock_lifetime)
        issue, _ = self._scripts()
        try:
            number, serving = self._redis(
                lambda: issue(keys=[self.key_prefix + conversation_id], args=args))
        except Exception as error:  # as Rasa's own stores do
            self._unsure(conversation_id, owner, error)
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error
        return int(number), int(serving), expires

    async def _aissue(self, conversation_id: Text, lock_lifetime: float) -> Tuple[int, int, float]:
        args, expires, owner = self._issue_args(conversation_id, lock_lifetime)
        issue, _ = self._async_scripts()
        try:
            number, serving = await self._aredis(
                lambda: issue(keys=[self.key_prefix + conversation_id], args=args))
        except Exception as error:  # as Rasa's own stores do
            self._unsure(conversation_id, owner, error)
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error
        return int(number), int(serving), expires

    def _release(self, conversation_id: Text, ticket_number: Optional[int]) -> None:
        _, release = self._scripts()
        args = self._release_args(conversation_id, ticket_number)
        self._redis(lambda: release(keys=[self.key_prefix + conversation_id], args=args))

    async def _arelease(self, conversation_id: Text, ticket_number: Optional[int]) -> None:
        _, release = self._async_scripts()
        args = self._release_args(conversation_id, ticket_number)
        await self._aredis(lambda: release(keys=[self.key_prefix + conversation_id], args=args))

    # -- Rasa's LockStore interface --

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Appends a ticket to the conversation's lock; returns its number."""
        return self._issue(conversation_id, lock_lifetime)[0]

    def update_lock(self, conversation_id: Text) -> None:
        """Drops expired tickets (deleting the lock if none is left)."""
        self._release(conversation_id, None)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        """Gives ticket ``ticket_number`` back (deleting the lock if none is left)."""
        self._release(conversation_id, ticket_number)

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Ends a turn: its ticket is returned; an unused lock disappears."""
        self.finish_serving(conversation_id, ticket_number)

    @contextlib.asynccontextmanager
    async def lock(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME,
                   wait_time_in_seconds: float = 1) -> AsyncGenerator[TicketLock, None]:
        """Rasa's ``LockStore.lock``, on ``redis.asyncio``, one script to enter and one to leave.

        Behind another ticket, it waits as Rasa does: polling every
        ``wait_time_in_seconds``, dropping expired tickets, failing with
        :class:`LockError` if its own ticket expired meanwhile.
        """
        number, serving, expires = await self._issue_for_turn(conversation_id, lock_lifetime)
        try:
            while number != serving:
                await asyncio.sleep(wait_time_in_seconds)
                lock = await self._aget_lock(conversation_id)
                if lock is None or lock._ticket_for_ticket_number(number) is None:
                    raise LockError(
                        f"Could not acquire lock for conversation_id '{conversation_id}'.")
                serving = lock.now_serving
            # Callers (Agent.handle_message, Rasa's server) do not look into the lock.
            yield TicketLock(conversation_id, collections.deque([Ticket(number, expires)]))
        finally:
            # Shielded: a cancelled turn still gives its ticket back.
            releasing = asyncio.ensure_future(self._arelease(conversation_id, number))
            try:
                await asyncio.shield(releasing)
            except asyncio.CancelledError:
                self._keep_until_done(releasing)
                raise

    async def _issue_for_turn(self, conversation_id: Text,
                              lock_lifetime: float) -> Tuple[int, int, float]:
        """Issues a ticket; if the turn is cancelled meanwhile, the ticket is still given back.

        Once the script has run, the ticket exists whether or not its reply
        arrives before the cancellation; left alone it would hold the
        conversation until it expires.
        """
        issuing = asyncio.ensure_future(self._aissue(conversation_id, lock_lifetime))
        try:
            return await asyncio.shield(issuing)
        except asyncio.CancelledError:
            def give_back(done: "asyncio.Future[Tuple[int, int, float]]") -> None:
                if not done.cancelled() and done.exception() is None:
                    self._keep_until_done(asyncio.ensure_future(
                        self._arelease(conversation_id, done.result()[0])))
            issuing.add_done_callback(give_back)
            raise

    def _keep_until_done(self, task: "asyncio.Future[Any]") -> None:
        """Keeps a release running for a cancelled turn referenced, and logs if it fails."""
        self._pending.add(task)

        def finished(done: "asyncio.Future[Any]") -> None:
            self._pending.discard(done)
            if not done.cancelled() and done.exception() is not None:
                logger.error("Redis lock store: a ticket was not given back (%s); it "
                             "expires by itself", done.exception())
        task.add_done_callback(finished)

    async def _aget_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        """The lock with its expired tickets dropped (Rasa's ``update_lock`` + ``get_lock``)."""
        await self._arelease(conversation_id, None)
        client = self._async_scripts()[1].registered_client
        raw = await self._aredis(lambda: client.get(self.key_prefix + conversation_id))
        return TicketLock.from_dict(json.loads(raw)) if raw else None
