"""Async access to the wallet DB for actions: the event loop never blocks.

SQLAlchemy calls run in the default thread pool. The engine is created (and
the schema set up) on first use, not at import time. Outside production the
demo users and orders of design.md §4 are seeded too; production seeds nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from typing import Any, Callable, List, Optional, TypeVar

from sqlalchemy import exc
from sqlalchemy.engine import Engine

from walletbot.store import queries
from walletbot.store.db import init_db, make_engine, make_read_engine, seed_demo
from walletbot.store.rows import Transaction, User

logger = logging.getLogger(__name__)
T = TypeVar("T")


class WalletUnavailable(RuntimeError):
    """The wallet DB could not be reached; the user gets an apology."""


class WalletService:
    """The wallet queries an action needs, as coroutines."""

    def __init__(self, engine_factory: Callable[[], Engine] = make_engine, *,
                 demo: Optional[bool] = None) -> None:
        """Creates the service (no connection yet).

        Args:
            engine_factory: Builds the engine on first use.
            demo: Seed the demo data; by default everywhere but in production.
        """
        self._engine_factory = engine_factory
        self._demo = demo
        self._engine: Optional[Engine] = None
        self._read_engine: Optional[Engine] = None
        self._lock = threading.Lock()

    def _engine_ready(self) -> Engine:
        with self._lock:
            if self._engine is None:
                engine = self._engine_factory()
                init_db(engine)
                demo = self._demo
                if demo is None:
                    from walletbot import settings

                    demo = not settings.current().is_production
                if demo:
                    seed_demo(engine)
                self._read_engine = make_read_engine(engine)
                self._engine = engine
            return self._engine

    def _read_engine_ready(self) -> Engine:
        self._engine_ready()
        assert self._read_engine is not None
        return self._read_engine

    async def run(self, query: Callable[..., T], **kwargs: Any) -> T:
        """Runs ``query(conn=..., **kwargs)`` in one transaction, off the event loop.

        Raises:
            WalletUnavailable: The database failed; the error is logged
                without the arguments (they can carry user input).
        """
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self.run_blocking, query, **kwargs))

    def run_blocking(self, query: Callable[..., T], **kwargs: Any) -> T:
        """:meth:`run` for a thread that is not the event loop's (a metrics scrape).

        Raises:
            WalletUnavailable: As :meth:`run`.
        """
        try:
            with self._engine_ready().begin() as conn:
                return query(conn=conn, **kwargs)
        except exc.SQLAlchemyError as error:
            self._log_failure(query, error)
            raise WalletUnavailable(str(type(error).__name__)) from error

    async def read(self, query: Callable[..., T], **kwargs: Any) -> T:
        """Runs ``query(conn=..., **kwargs)``, one read statement, off the event loop.

        Without a transaction of its own (see :func:`make_read_engine`): for
        queries that run a single SELECT, where that changes nothing.

        Raises:
            WalletUnavailable: As :meth:`run`.
        """
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self.read_blocking, query, **kwargs))

    def read_blocking(self, query: Callable[..., T], **kwargs: Any) -> T:
        """:meth:`read` for a thread that is not the event loop's."""
        for attempt in (1, 2):
            try:
                with self._read_engine_ready().connect() as conn:
                    return query(conn=conn, **kwargs)
            except exc.DBAPIError as error:
                # A pooled connection the server closed (a restart): SQLAlchemy
                # has dropped the pool's connections; once more, on a new one.
                if attempt == 1 and error.connection_invalidated:
                    continue
                self._log_failure(query, error)
                raise WalletUnavailable(str(type(error).__name__)) from error
            except exc.SQLAlchemyError as error:
                self._log_failure(query, error)
                raise WalletUnavailable(str(type(error).__name__)) from error
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _log_failure(query: Callable[..., Any], error: Exception) -> None:
        # Logged without arguments: they can carry the user's input.
        logger.error("wallet DB error in %s: %s", query.__name__, type(error).__name__)

    async def user_for(self, *, channel: str, sender_id: str) -> Optional[User]:
        """The wallet user bound to this sender, or None."""
        return await self.read(queries.get_user_for_sender, channel=channel, sender_id=sender_id)

    async def bind(self, *, channel: str, sender_id: str, user_id: str) -> None:
        """Binds the channel's sender (a web session at login, an OpenID) to a wallet user."""
        await self.run(queries.bind_sender, channel=channel, sender_id=sender_id, user_id=user_id)

    async def unbind(self, *, channel: str, sender_id: str) -> bool:
        """Removes the sender's binding (a web session at logout); False if there was none."""
        return await self.run(queries.unbind_sender, channel=channel, sender_id=sender_id)

    async def transaction(self, *, user_id: str, order_id: str) -> Optional[Transaction]:
        """The user's own order, or None (missing or someone else's: same answer)."""
        return await self.read(queries.get_transaction, order_id=order_id, user_id=user_id)

    async def recent(
        self, *, user_id: str, tx_type: Optional[str] = None, limit: int = 5
    ) -> List[Transaction]:
        """The user's newest transactions, optionally of one type."""
        return await self.read(
            queries.recent_transactions, user_id=user_id, tx_type=tx_type, limit=limit
        )


@functools.lru_cache(maxsize=1)
def default_service() -> WalletService:
    """The process-wide service (one engine per action server)."""
    return WalletService()
