"""Engine construction and schema set-up for the wallet database.

Nothing here runs at import time: callers build one engine at start-up with
:func:`make_engine`, run :func:`init_db` once, and pass connections to the
functions in :mod:`walletbot.store.queries`::

    engine = make_engine()          # WALLET_DB_URL, default sqlite:///var/wallet.db
    init_db(engine)                 # tables only; seed_demo(engine) adds the demo data
    with engine.begin() as conn:    # commits on success, rolls back on error
        user = get_user_for_sender(conn=conn, channel="rest", sender_id="zhangsan")
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool, StaticPool

from walletbot.store.demo import DEMO_BINDINGS, DEMO_TRANSACTIONS, DEMO_USERS
from walletbot.store.schema import bindings, metadata, transactions, users, utcnow

logger = logging.getLogger(__name__)

ENV_VAR = "WALLET_DB_URL"
DEFAULT_URL = "sqlite:///var/wallet.db"

# Seconds a SQLite connection waits for another writer before "database is locked".
_SQLITE_BUSY_TIMEOUT = 15
# Key of the PostgreSQL advisory lock that serialises init_db across processes.
_PG_INIT_LOCK_KEY = 0x77616C6C6574  # "wallet"


def wallet_db_url(environ: Optional[Mapping[str, str]] = None) -> str:
    """The wallet database's SQLAlchemy URL.

    Args:
        environ: Where to read ``WALLET_DB_URL``; the settings' environment by default.

    Returns:
        ``WALLET_DB_URL`` if set and non-empty, else ``sqlite:///var/wallet.db``
        (relative to the current working directory). A ``postgres://`` URL, as
        some hosting providers hand out, is rewritten to ``postgresql://``.
    """
    from walletbot.settings import Settings

    return Settings.from_env(environ).wallet_db_url


def _sqlite_is_memory(url: sa.engine.URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def use_write_ahead_log(cursor: Any) -> None:
    """Switches the file to write-ahead logging, once (the mode stays in the file).

    Readers then no longer wait for a writer (the Rasa server, the action
    server and the desk share the file), and a commit syncs once. SQLite
    refuses the switch while another connection uses the file, without
    waiting for it: that connection's process switches it, or the next
    connection does, and until then the default journal works as before.
    """
    mode = str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    if mode in ("wal", "memory"):
        return
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as error:
        logger.debug("SQLite journal stays %s for now: %s", mode, error)


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        use_write_ahead_log(cursor)
    finally:
        cursor.close()


def make_engine(url: Optional[str] = None) -> Engine:
    """Builds the engine of the wallet database (2.0-style, ``future=True``).

    Args:
        url: SQLAlchemy URL; :func:`wallet_db_url` when omitted.

    Returns:
        An engine. SQLite: usable from several threads, foreign keys enforced,
        the file's parent folder created; an in-memory URL (``sqlite://``)
        shares one database across threads. PostgreSQL: connections are
        checked before use (``pool_pre_ping``).

    Raises:
        ValueError: The URL cannot be parsed or names a backend other than
            SQLite or PostgreSQL.
    """
    raw = wallet_db_url() if url is None else url
    try:
        parsed = sa.engine.make_url(raw)
    except exc.ArgumentError:
        raise ValueError(
            f"cannot parse wallet database URL {raw!r}: set {ENV_VAR} to e.g. "
            "sqlite:///var/wallet.db or postgresql://user:password@host:5432/wallet"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        connect_args: Dict[str, Any] = {"check_same_thread": False}
        if "timeout" not in parsed.query:
            connect_args["timeout"] = _SQLITE_BUSY_TIMEOUT
        kwargs: Dict[str, Any] = {"connect_args": connect_args}
        if _sqlite_is_memory(parsed):
            kwargs["poolclass"] = StaticPool
        else:
            # SQLAlchemy 1.4 opens a new connection per use of a file database
            # (NullPool): a connect, its pragmas and a close on every query
            # (a sixth of the action server's time in bench/pyspy_profile.py).
            kwargs.update(poolclass=QueuePool, pool_size=5, max_overflow=10)
            if not (parsed.database or "").startswith("file:"):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, future=True, **kwargs)
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
        return engine
    if backend == "postgresql":
        return sa.create_engine(parsed, future=True, pool_pre_ping=True)
    raise ValueError(
        f"unsupported wallet database {backend!r} in {parsed.render_as_string()!r}: "
        f"set {ENV_VAR} to a sqlite:/// or postgresql:// URL"
    )


def autocommit_twin(engine: Engine, **kwargs: Any) -> Engine:
    """A second engine on ``engine``'s PostgreSQL database whose connections autocommit.

    For single statements, each atomic by itself: in a transaction of its own
    each costs a BEGIN and a COMMIT or ROLLBACK round trip more. Its own pool,
    autocommit from the connect on (switching a pooled connection of
    ``engine`` back and forth costs a ``SET default_transaction_isolation``
    round trip each time); disposed with ``engine``. ``kwargs`` go to
    ``create_engine``. Any other database (SQLite: no round trips, and
    pysqlite opens no transaction for a read): ``engine`` itself.
    """
    if engine.dialect.name != "postgresql":
        return engine
    twin = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT", **kwargs)
    event.listen(engine, "engine_disposed", lambda *_: twin.dispose())
    return twin


def make_read_engine(engine: Engine) -> Engine:
    """The engine of the wallet DB's single-statement reads (:func:`autocommit_twin`).

    Without the pre-use check as well: with it, a read cost four statements
    for one (the action server and the turn pipeline run one to three such
    reads a message). A connection the server closed (a restart) fails its
    statement instead of the check; :meth:`walletbot.store.service.WalletService.read`
    then runs the read again on a new one.
    """
    return autocommit_twin(engine, future=True)


def _insert(dialect_name: str, table: sa.Table) -> Any:
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect_name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - make_engine refuses other backends
        raise ValueError(f"unsupported dialect {dialect_name!r}")
    return insert(table)


def _insert_missing(conn: Connection, table: sa.Table, rows: Iterable[Dict[str, Any]]) -> None:
    """Inserts the rows whose primary key is not there yet; leaves others alone."""
    values: List[Dict[str, Any]] = list(rows)
    if not values:
        return
    stmt = _insert(conn.dialect.name, table).on_conflict_do_nothing(
        index_elements=[column.name for column in table.primary_key.columns]
    )
    conn.execute(stmt, values)


def _seed_demo(conn: Connection) -> None:
    _insert_missing(conn, users, (dataclasses.asdict(u) for u in DEMO_USERS))
    now = utcnow()
    _insert_missing(
        conn,
        bindings,
        (
            {"channel": c, "sender_id": s, "user_id": u, "created_at": now}
            for c, s, u in DEMO_BINDINGS
        ),
    )
    _insert_missing(conn, transactions, (dataclasses.asdict(t) for t in DEMO_TRANSACTIONS))


def _lock_for_init(conn: Connection) -> None:
    """Serialises concurrent ``init_db`` runs (threads or processes)."""
    name = conn.dialect.name
    if name == "postgresql":
        # Held until this transaction ends; DDL is transactional in PostgreSQL.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_INIT_LOCK_KEY})
    elif name == "sqlite":
        # Take the write lock before looking at the schema; others wait (busy timeout).
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _is_creation_race(error: exc.DBAPIError) -> bool:
    return isinstance(error, exc.IntegrityError) or "already exists" in str(error.orig)


def _add_missing_columns(conn: Connection) -> None:
    # create_all never alters a table that exists: columns added to the schema
    # since (all nullable) are added here, so an older database keeps working.
    inspector = sa.inspect(conn)
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise RuntimeError(
                    f"wallet DB: table {table.name} lacks the non-nullable column "
                    f"{column.name}; it cannot be added in place"
                )
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')
            logger.info("wallet DB: added column %s.%s", table.name, column.name)


def init_db(engine: Engine) -> None:
    """Creates the tables and the (nullable) columns that are missing. Seeds nothing.

    See :func:`seed_demo` for the demo data.

    Idempotent and safe to run from several processes at once: runs are
    serialised by a database lock, and a run that still loses a creation race
    is retried once.

    Args:
        engine: From :func:`make_engine`.
    """
    for attempt in (1, 2):
        try:
            with engine.begin() as conn:
                _lock_for_init(conn)
                _add_missing_columns(conn)
                metadata.create_all(conn)
            return
        except exc.DBAPIError as error:
            if attempt == 2 or not _is_creation_race(error):
                raise


def seed_demo(engine: Engine) -> None:
    """Adds the demo users, bindings and orders of design.md §4 (dev and tests only).

    Rows are inserted only where their primary key is missing: existing rows,
    e.g. a frozen account, are kept as they are. The production profile never
    calls this (see :class:`walletbot.store.service.WalletService`).
    """
    with engine.begin() as conn:
        _lock_for_init(conn)
        _seed_demo(conn)
