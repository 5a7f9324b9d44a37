"""A Redis lock store that stays correct with several Rasa replicas.

Rasa serialises the turns of one conversation with a *ticket lock*: each
incoming message takes a ticket, waits until its number is served, runs the
turn, then gives the ticket back. Rasa 3.6's ``RedisLockStore`` keeps the lock
as one JSON value and changes it by reading it, editing it in Python and
writing it back. Two replicas doing that at the same moment for the same
conversation can both draw ticket 0 and run two turns of one conversation at
once, or one replica's release can overwrite the other's new ticket
(RasaHQ/rasa#9213; Rasa's fix, #11256, was reverted in #11428).

:class:`AtomicRedisLockStore` does every read-modify-write of a lock inside a
Redis transaction (``WATCH``/``MULTI``/``EXEC``, retried when another replica
changed the key in between), so ticket numbers are unique and turns of one
conversation never overlap, whichever replica the messages reach. Keys, their
format and the waiting logic are Rasa's own.

When Redis is down or hangs, a turn must fail fast (the channels then answer
with an apology): Rasa calls the lock store synchronously on the replica's
event loop, so every Redis call that waits blocks *every* request of that
replica. Hence a short socket timeout (2 s instead of Rasa's 10 s, for
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

import json
import logging
import time
from typing import Any, Callable, Optional, Text, TypeVar

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SOCKET_TIMEOUT = 2.0  # seconds; lock operations take well under a millisecond
DEFAULT_RETRY_AFTER = 3.0     # seconds of failing fast after Redis failed


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

    def _redis(self, operation: Callable[[], T]) -> T:
        """Runs ``operation`` against Redis, failing fast for a while after a failure."""
        wait = self._unavailable_until - time.monotonic()
        if wait > 0:
            raise redis.ConnectionError(
                f"Redis failed moments ago; the lock store tries again in {wait:.1f} s")
        try:
            return operation()
        except (redis.ConnectionError, redis.TimeoutError) as error:
            self._unavailable_until = time.monotonic() + self.retry_after
            logger.error("Redis lock store unavailable (%s: %s); failing fast for %g s",
                         type(error).__name__, error, self.retry_after)
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

    def _change(self, conversation_id: Text, change: Callable[[TicketLock], T],
                *, create: bool) -> Optional[T]:
        """Applies ``change`` to the stored lock atomically; returns its result.

        A lock left without tickets is deleted. Without a stored lock, nothing
        happens unless ``create`` (then ``change`` gets a new, empty lock).
        """
        key = self.key_prefix + conversation_id

        def transaction(pipe: Any) -> Optional[T]:
            raw = pipe.get(key)  # watched: EXEC fails if anyone writes the key meanwhile
            pipe.multi()
            if raw:
                lock = TicketLock.from_dict(json.loads(raw))
            elif create:
                lock = self.create_lock(conversation_id)
            else:
                return None
            result = change(lock)
            if lock.tickets:
                pipe.set(key, lock.dumps())
            else:
                pipe.delete(key)
            return result

        return self._redis(lambda: self.red.transaction(transaction, key, value_from_callable=True))

    def issue_ticket(self, conversation_id: Text, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Appends a ticket to the conversation's lock; returns its number."""
        try:
            ticket = self._change(conversation_id, lambda lock: lock.issue_ticket(lock_lifetime),
                                  create=True)
        except Exception as error:  # as Rasa's own stores do
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error
        assert ticket is not None
        return ticket

    def update_lock(self, conversation_id: Text) -> None:
        """Drops expired tickets (deleting the lock if none is left)."""
        self._change(conversation_id, lambda lock: lock.remove_expired_tickets(), create=False)

    def finish_serving(self, conversation_id: Text, ticket_number: int) -> None:
        """Gives ticket ``ticket_number`` back (deleting the lock if none is left)."""
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number),
                     create=False)

    def cleanup(self, conversation_id: Text, ticket_number: int) -> None:
        """Ends a turn: its ticket is returned; an unused lock disappears."""
        self.finish_serving(conversation_id, ticket_number)
