"""Prepares PostgreSQL for the production profile; idempotent, run at every start.

    python scripts/prod/bootstrap.py check-local     # prints the local cluster's port
    python scripts/prod/bootstrap.py setup --admin-url postgresql://postgres@/postgres?host=...
    POSTGRES_ADMIN_URL=postgresql://postgres:<pw>@postgres/postgres python scripts/prod/bootstrap.py setup
    python scripts/prod/bootstrap.py wait [--only WALLET_DB_URL] [--timeout 600]

``setup`` connects as a superuser (``--admin-url``) and, for ``TRACKER_DB_URL``
and ``WALLET_DB_URL`` (environment), creates the login role with the URL's
password (or sets the password again, so a changed secret takes effect) and
the database owned by it. Then, as those roles, it creates Rasa's tracker
table and the wallet DB's tables (with ``walletbot.store.init_db``) *before*
the Rasa replicas start, so they never race to create them.

``wait`` is for replicas that start beside a separate ``setup`` run (the
Kubernetes manifests, deploy/k8s/: an init container of every Rasa and action
server pod). As the bot's own roles (no superuser), it waits until both
databases (or the one named by ``--only``) answer and hold every table and
column that ``setup`` of this version creates; it exits 0 then, 2 after
``--timeout`` seconds. It changes nothing.

``check-local`` is for ``scripts/prod.sh``, which runs the cluster itself: both
URLs must be PostgreSQL on 127.0.0.1/localhost, on the same port, with a user
and a password.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

URL_VARS = ("TRACKER_DB_URL", "WALLET_DB_URL")
LOCAL_HOSTS = ("127.0.0.1", "localhost")


class SetupError(Exception):
    """A configuration problem, with what to do about it."""


def _urls(environ: Dict[str, str], names: Sequence[str] = URL_VARS) -> List[Tuple[str, URL]]:
    found = []
    for name in names:
        raw = (environ.get(name) or "").strip()
        if not raw:
            raise SetupError(f"{name} is not set (e.g. postgresql://rasa:<password>@127.0.0.1:5432/rasa)")
        if raw.startswith("postgres://"):
            raw = "postgresql://" + raw[len("postgres://"):]
        try:
            url = make_url(raw)
        except Exception:
            raise SetupError(f"{name} is not a SQLAlchemy URL") from None
        if url.get_backend_name() != "postgresql":
            raise SetupError(f"{name} must be a postgresql:// URL in the production profile")
        if not url.username or not url.password or not url.database:
            raise SetupError(f"{name} needs a user, a password and a database name")
        found.append((name, url))
    by_user: Dict[str, str] = {}
    for name, url in found:
        if by_user.setdefault(url.username, url.password) != url.password:
            raise SetupError(f"{' and '.join(URL_VARS)} name the same user with different passwords")
    return found


def check_local(environ: Dict[str, str]) -> int:
    """The port of the local cluster both URLs point at."""
    urls = _urls(environ)
    ports = set()
    for name, url in urls:
        if (url.host or "") not in LOCAL_HOSTS:
            raise SetupError(f"{name}: scripts/prod.sh runs PostgreSQL itself, so the host must be "
                             f"127.0.0.1, not {url.host!r}")
        ports.add(url.port or 5432)
    if len(ports) != 1:
        raise SetupError(f"{' and '.join(URL_VARS)} must use the same port (one local cluster)")
    return ports.pop()


def _connect(url: URL) -> Any:
    """A plain psycopg2 connection in autocommit mode (for CREATE DATABASE)."""
    import psycopg2

    args = url.translate_connect_args(username="user", database="dbname")
    args.update(url.query)
    connection = psycopg2.connect(**args)
    connection.autocommit = True
    return connection


def _ensure_role_and_database(admin_url: URL, url: URL) -> None:
    from psycopg2 import sql

    user, password, database = url.username, url.password, url.database
    raw = _connect(admin_url)
    try:
        with raw.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [user])
            verb = "ALTER" if cur.fetchone() else "CREATE"
            # psycopg2 quotes the password client-side; it is not logged.
            cur.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(user)),
                        [password])
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0")
                            .format(sql.Identifier(database), sql.Identifier(user)))
    finally:
        raw.close()


def _create_tables(tracker_url: URL, wallet_url: URL) -> None:
    from rasa.core.tracker_store import SQLTrackerStore

    from walletbot.store import init_db, make_engine

    from walletbot.rasa_compat.migrate import scope_conversation_ids

    tracker = sa.create_engine(tracker_url)
    try:
        SQLTrackerStore.Base.metadata.create_all(tracker)
        # Conversations stored before ids carried their channel (idempotent).
        scope_conversation_ids(tracker)
    finally:
        tracker.dispose()
    wallet = make_engine(wallet_url.render_as_string(hide_password=False))
    try:
        init_db(wallet)
    finally:
        wallet.dispose()


def setup(environ: Dict[str, str], admin_url: str) -> None:
    """Roles, databases and tables for both URLs."""
    urls = dict(_urls(environ))
    admin = make_url(admin_url)
    for url in urls.values():
        _ensure_role_and_database(admin, url)
    _create_tables(urls["TRACKER_DB_URL"], urls["WALLET_DB_URL"])


# --- wait: the schema is there (Kubernetes: before a replica starts) ------------

WAIT_TIMEOUT = 600.0
WAIT_INTERVAL = 3.0


def expected_schema(name: str) -> Dict[str, List[str]]:
    """Tables of ``setup`` for the database of ``name``, each with its columns."""
    if name == "TRACKER_DB_URL":
        from rasa.core.tracker_store import SQLTrackerStore

        tables = SQLTrackerStore.Base.metadata.sorted_tables
    else:
        from walletbot.store import metadata

        tables = metadata.sorted_tables
    return {table.name: [column.name for column in table.columns] for table in tables}


def schema_missing(name: str, url: URL) -> List[str]:
    """What ``setup`` has not created yet in the database of ``url``: ``table`` or
    ``table.column`` entries, none when it is ready. Connection errors propagate."""
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        missing: List[str] = []
        for table, columns in expected_schema(name).items():
            if not inspector.has_table(table):
                missing.append(table)
                continue
            present = {column["name"] for column in inspector.get_columns(table)}
            missing.extend(f"{table}.{column}" for column in columns if column not in present)
        return missing
    finally:
        engine.dispose()


def wait(
    environ: Dict[str, str],
    names: Sequence[str] = URL_VARS,
    *,
    timeout: float = WAIT_TIMEOUT,
    interval: float = WAIT_INTERVAL,
    check: Callable[[str, URL], List[str]] = schema_missing,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Returns once every database of ``names`` holds the schema; SetupError after ``timeout``."""
    urls = _urls(environ, names)
    deadline = clock() + timeout
    while True:
        problems = []
        for name, url in urls:
            where = url.render_as_string(hide_password=True)
            try:
                missing = check(name, url)
            except sa.exc.SQLAlchemyError as error:
                # The class only: a driver's message may quote the connection string.
                problems.append(f"{name} ({where}) does not answer ({type(error).__name__})")
                continue
            if missing:
                shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
                problems.append(f"{name} ({where}) lacks {shown}")
        if not problems:
            print("bootstrap: the schema is ready", flush=True)
            return
        if clock() >= deadline:
            raise SetupError(f"not ready after {timeout:.0f} s (has `bootstrap.py setup` run?): "
                             + "; ".join(problems))
        print("bootstrap: waiting: " + "; ".join(problems), flush=True)
        sleep(interval)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check-local", help="print the local cluster's port")
    setup_parser = commands.add_parser("setup", help="roles, databases and tables")
    setup_parser.add_argument("--admin-url", default=os.environ.get("POSTGRES_ADMIN_URL"),
                              help="SQLAlchemy URL of a superuser connection "
                                   "(default: $POSTGRES_ADMIN_URL, which keeps it out of `ps`)")
    wait_parser = commands.add_parser("wait", help="wait until setup's tables and columns exist")
    wait_parser.add_argument("--only", choices=URL_VARS, action="append",
                             help="check this database only (repeatable; default: both)")
    wait_parser.add_argument("--timeout", type=float, default=WAIT_TIMEOUT,
                             help="seconds before giving up (exit 2)")
    wait_parser.add_argument("--interval", type=float, default=WAIT_INTERVAL,
                             help="seconds between two checks")
    args = parser.parse_args(argv)
    try:
        if args.command == "setup" and not args.admin_url:
            raise SetupError("give --admin-url or set POSTGRES_ADMIN_URL")
        if args.command == "check-local":
            print(check_local(dict(os.environ)))
        elif args.command == "wait":
            wait(dict(os.environ), args.only or URL_VARS, timeout=args.timeout,
                 interval=args.interval)
        else:
            setup(dict(os.environ), args.admin_url)
    except SetupError as error:
        print(f"bootstrap: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
