"""PostgreSQL half of the backup: ``pg_dump --format=custom`` and ``pg_restore``.

The dump covers the URL's whole database, or only the schemas of its
``search_path`` when the URL sets one (``?options=-csearch_path=bot``), so a
database shared with other applications is not dumped with them. Rasa's
``events_seq`` sequence is not owned by the ``events`` table, which is why
this dumps databases or schemas rather than a list of tables.

The password travels in the child's ``PGPASSWORD`` only: a command line can
be read by every user of the machine (``ps``) and ends up in logs.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from walletbot.ops.common import BackupError, Dump, Store, scrub
from walletbot.settings import quiet_child_env

# Seconds to wait for the server before giving up: a wrong host should fail
# fast with a message, not hang for the TCP timeout.
CONNECT_TIMEOUT = 10
_TOOL_DIRS = "/usr/lib/postgresql/*/bin"

# User tables, partitions counted through their parent, extension-owned
# tables left out (pg_dump does not dump their rows either).
_TABLES = sa.text(r"""
SELECT n.nspname AS schema_name, c.relname AS table_name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
""")


def _major(path: str) -> Tuple[int, ...]:
    number = Path(path).parent.parent.name
    return tuple(int(part) for part in number.split(".") if part.isdigit())


def find_tool(name: str) -> str:
    """``pg_dump`` or ``pg_restore``: from PATH, else the newest under /usr/lib/postgresql.

    PATH comes first so that an operator's choice wins; Debian installs the
    versioned binaries outside PATH, and a newer pg_dump reads older servers.
    """
    on_path = shutil.which(name)
    if on_path:
        return on_path
    for candidate in sorted(glob.glob(f"{_TOOL_DIRS}/{name}"), key=_major, reverse=True):
        if os.access(candidate, os.X_OK):
            return candidate
    raise BackupError(
        f"{name} not found on PATH or under {_TOOL_DIRS}: install the PostgreSQL client "
        "tools of the server's major version or newer (Debian/Ubuntu: apt-get install "
        "postgresql-client), or put their folder on PATH")


def tool_version(path: str) -> str:
    """``pg_dump (PostgreSQL) 15.18``."""
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BackupError(f"cannot run {path}: {error}; reinstall the PostgreSQL "
                          "client tools") from None
    return (proc.stdout or proc.stderr).strip() or "unknown"


def schemas_of(url: URL) -> Optional[Tuple[str, ...]]:
    """The schemas of the URL's ``search_path`` option; None when it sets none."""
    options = url.query.get("options")
    if not options:
        return None
    text = " ".join(options) if isinstance(options, tuple) else options
    try:
        tokens = shlex.split(text)
    except ValueError:
        raise BackupError("cannot read the options= part of a PostgreSQL URL: "
                          "check its quoting") from None
    value = None
    for index, token in enumerate(tokens):
        if token == "-c" and index + 1 < len(tokens):
            setting = tokens[index + 1]
        elif token.startswith("-c") or token.startswith("--"):
            setting = token[2:]
        else:
            continue
        name, _, given = setting.partition("=")
        if name.strip().replace("-", "_").lower() == "search_path":
            value = given
    if value is None:
        return None
    names = (part.strip().strip('"') for part in value.split(","))
    schemas = tuple(name for name in names if name and name != "$user")
    return schemas or None


def _quote_conninfo(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def conninfo(url: URL) -> str:
    """libpq's ``key='value'`` form of the URL, without the password.

    The query's parameters pass through, as psycopg2 passes them to libpq
    (``sslmode``, ``options``, ``host`` of a socket folder...).
    """
    params: Dict[str, str] = {}
    for key, value in (("host", url.host), ("port", url.port), ("user", url.username),
                       ("dbname", url.database)):
        if value:
            params[key] = str(value)
    for key, value in url.query.items():
        if key.lower() in ("password", "sslpassword"):
            continue
        params[key] = ",".join(value) if isinstance(value, tuple) else str(value)
    return " ".join(f"{key}={_quote_conninfo(value)}" for key, value in params.items())


def child_env(url: URL) -> Dict[str, str]:
    """This process's environment plus ``PGPASSWORD`` for a pg_dump or pg_restore."""
    env = quiet_child_env()
    password = url.password or url.query.get("password")
    if password:
        env["PGPASSWORD"] = str(password)
    env.setdefault("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT))
    return env


def _hint(message: str) -> str:
    lowered = message.lower()
    if "server version mismatch" in lowered:
        return (" — install the PostgreSQL client tools of the server's major version or newer "
                f"(e.g. apt-get install postgresql-client-<major>); PATH is searched first, "
                f"then {_TOOL_DIRS}")
    if "password authentication failed" in lowered:
        return " — check the user and password in the URL"
    if "could not connect" in lowered or "connection refused" in lowered or "timeout" in lowered:
        return " — check that the server is running and reachable from here"
    return ""


def _run(*, store: Store, args: Sequence[str], what: str) -> None:
    try:
        proc = subprocess.run(list(args), env=child_env(store.url), capture_output=True,
                              text=True, check=False)
    except OSError as error:
        raise BackupError(f"cannot run {args[0]}: {error}; reinstall the PostgreSQL "
                          "client tools") from None
    if proc.returncode != 0:
        output = scrub((proc.stderr or proc.stdout).strip(), url=store.url)
        raise BackupError(f"{what} failed for {store.where} (exit {proc.returncode}): "
                          f"{output}{_hint(output)}")


def _engine(store: Store) -> Engine:
    connect_args = {} if "connect_timeout" in store.url.query else {
        "connect_timeout": CONNECT_TIMEOUT}
    # NullPool: one short connection, nothing left open behind the tools.
    return sa.create_engine(store.url, future=True, poolclass=NullPool,
                            connect_args=connect_args)


def _connect(*, store: Store, engine: Engine) -> Connection:
    try:
        return engine.connect()
    except sa.exc.DBAPIError as error:
        detail = scrub(" ".join(str(error.orig).split()), url=store.url)
        fix = f"check that the server is running and reachable, and {store.fix_url}"
        if "does not exist" in detail:
            fix = (f"create the database first (e.g. createdb -O {store.url.username or 'USER'} "
                   f"{store.url.database or 'DB'}), or {store.fix_url}")
        raise BackupError(f"cannot connect to {store.where}: {detail} — {fix}") from None


def _counts(*, conn: Connection, schemas: Optional[Tuple[str, ...]]) -> Dict[str, int]:
    quote = conn.dialect.identifier_preparer.quote
    counts: Dict[str, int] = {}
    for schema, table in conn.execute(_TABLES):
        if schemas is not None and schema not in schemas:
            continue
        counts[f"{schema}.{table}"] = conn.execute(
            sa.text(f"SELECT count(*) FROM {quote(schema)}.{quote(table)}")).scalar_one()
    return counts


def _schema_args(schemas: Optional[Tuple[str, ...]]) -> List[str]:
    # Double quotes: pg_dump then matches the schema as named (case kept), not as a pattern.
    quoted = ('"' + name.replace('"', '""') + '"' for name in schemas or ())
    return [f"--schema={name}" for name in quoted]


def dump(*, store: Store, dest: Path) -> Dump:
    """Dumps the store's database (or its search_path schemas) to ``dest``."""
    pg_dump = find_tool("pg_dump")
    tool = tool_version(pg_dump)
    schemas = schemas_of(store.url)
    engine = _engine(store)
    try:
        with _connect(store=store, engine=engine) as conn:
            # pg_dump reads the snapshot exported here, so the row counts in the
            # manifest are exactly what the dump holds, however busy the bot is.
            conn = conn.execution_options(isolation_level="REPEATABLE READ",
                                          postgresql_readonly=True)
            with conn.begin():
                snapshot = conn.execute(
                    sa.text("SELECT pg_catalog.pg_export_snapshot()")).scalar_one()
                server = conn.execute(sa.text("SHOW server_version")).scalar_one()
                counts = _counts(conn=conn, schemas=schemas)
                missing = sorted(set(schemas or ()) - {key.split(".", 1)[0] for key in counts})
                if missing and not _schemas_exist(conn=conn, names=missing):
                    raise BackupError(f"{store.where}: schema {', '.join(missing)} of its "
                                      f"search_path does not exist: {store.fix_url}")
                _run(store=store, what="pg_dump", args=[
                    pg_dump, "--format=custom", f"--file={dest}", f"--snapshot={snapshot}",
                    "--strict-names", *_schema_args(schemas), f"--dbname={conninfo(store.url)}",
                ])
    finally:
        engine.dispose()
    return Dump(tables=counts, tool=tool, server_version=str(server), schemas=schemas)


def _schemas_exist(*, conn: Connection, names: Sequence[str]) -> bool:
    found = conn.execute(sa.text("SELECT count(*) FROM pg_catalog.pg_namespace "
                                 "WHERE nspname = ANY(:names)"), {"names": list(names)})
    return found.scalar_one() == len(names)


def target_counts(*, store: Store) -> Dict[str, int]:
    """Row count per table of the store's database (or its search_path schemas)."""
    engine = _engine(store)
    try:
        with _connect(store=store, engine=engine) as conn:
            return _counts(conn=conn, schemas=schemas_of(store.url))
    finally:
        engine.dispose()


def check_restorable(*, store: Store, schemas: Optional[Sequence[str]]) -> None:
    """Refuses a target that the dump's objects would not land in, before anything changes."""
    find_tool("pg_restore")
    held = tuple(schemas) if schemas else None
    target = schemas_of(store.url)
    if target == held:
        return
    # pg_restore puts objects back under the schema names they were dumped with.
    if held is None:
        fix = "use a URL without a search_path option"
        what = "a whole database"
    else:
        fix = f"use a URL with ?options=-csearch_path={','.join(held)}"
        what = f"schema {', '.join(held)}"
    into = f"search_path {', '.join(target)}" if target else "no search_path"
    raise BackupError(f"the {store.name} backup holds {what}, but the target URL has {into}: "
                      f"{fix} ({store.fix_url})")


def load(*, store: Store, source: Path) -> None:
    """Restores the dump at ``source`` into the store's database.

    ``--clean --if-exists`` drops the dump's objects first; ``--no-owner`` and
    ``--no-privileges`` let another role on another server own the result;
    ``--single-transaction`` keeps a failed restore from leaving half a database.
    """
    pg_restore = find_tool("pg_restore")
    # Connect first: a clear message for a missing database or a server that is down.
    engine = _engine(store)
    try:
        _connect(store=store, engine=engine).close()
    finally:
        engine.dispose()
    _run(store=store, what="pg_restore", args=[
        pg_restore, "--clean", "--if-exists", "--no-owner", "--no-privileges",
        "--single-transaction", f"--dbname={conninfo(store.url)}", str(source),
    ])

