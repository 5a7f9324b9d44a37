"""Fixtures shared by the tests under tests/walletbot/.

``pg_server``: a throwaway PostgreSQL server started once per test session from
the machine's binaries (``initdb``/``pg_ctl`` on PATH or under
``/usr/lib/postgresql/*/bin``, Debian's ``postgresql`` package), in a temporary
folder, on a free localhost port; each test gets a new schema in it. As root
the server runs as the unprivileged ``postgres`` user (created if missing),
because PostgreSQL refuses to run as root. Without the binaries the PostgreSQL
tests are skipped, or fail when ``CI=true``. ``WALLETBOT_TEST_PG_URL`` (a URL
of a database where the role may create schemas) uses an existing server instead.
Used by the wallet DB tests (store/) and the tracker store tests.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import pytest
import sqlalchemy as sa

from tests.walletbot.channels.wechat.doubles import free_port

from tests.system import missing

PG_USER = "postgres"  # OS user that runs the server when the tests run as root


def _find_pg_bin() -> Optional[Tuple[str, str]]:
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl

    def version(path: str) -> Tuple[int, ...]:
        number = Path(path).parent.name
        return tuple(int(p) for p in number.split(".") if p.isdigit())

    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        initdb, pg_ctl = os.path.join(bindir, "initdb"), os.path.join(bindir, "pg_ctl")
        if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
            return initdb, pg_ctl
    return None


def _run_as_prefix() -> Tuple[List[str], Optional[pwd.struct_passwd]]:
    """Command prefix that drops root to PG_USER, creating that user if needed."""
    if os.geteuid() != 0:
        return [], None
    try:
        account = pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home",
             "--shell", "/usr/sbin/nologin", PG_USER],
            check=True, capture_output=True,
        )
        account = pwd.getpwnam(PG_USER)
    if shutil.which("runuser"):
        return ["runuser", "-u", PG_USER, "--"], account
    return [
        "setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups",
    ], account


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A PostgreSQL database the tests carve fresh schemas out of.

    Each :meth:`new_url` is a new, empty schema, made the connection's
    ``search_path`` through the URL: milliseconds, where a new database takes
    a checkpoint (~0.2 s).
    """

    def __init__(self, admin_url: str, log: Optional[Path] = None) -> None:
        self.admin_url = sa.engine.make_url(admin_url)
        self.log = log  # the server's log file, when this run started the server
        self._counter = itertools.count(1)
        self._prefix = f"walletbot_test_{os.getpid()}_"
        self._admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")

    def new_url(self) -> str:
        """URL whose connections see only a new, empty schema."""
        schema = f"{self._prefix}{next(self._counter)}"
        with self._admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = self.admin_url.update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    def logged_url(self) -> str:
        """:meth:`new_url` whose connections (only) have every statement written to the log.

        With :meth:`log_offset` and :meth:`statements_since`, tests count what
        the server received (BEGIN and COMMIT included, which a client-side
        hook does not see).
        """
        self.log_offset()  # fails early without a log
        url = sa.engine.make_url(self.new_url())
        return url.update_query_dict({"options": url.query["options"] + " -clog_statement=all"}) \
            .render_as_string(hide_password=False)

    def log_offset(self) -> int:
        """Where the server's log ends now (bytes)."""
        if self.log is None:
            missing("the statement count needs the PostgreSQL server this run starts (its log)")
        return self.log.stat().st_size

    def statements_since(self, offset: int) -> List[str]:
        """The statements logged after ``offset`` (from :meth:`log_offset`)."""
        assert self.log is not None
        time.sleep(0.3)  # the server writes its log on its own time
        text = self.log.read_bytes()[offset:].decode(errors="replace")
        return [line.split("statement: ", 1)[1] for line in text.splitlines()
                if "statement: " in line]

    def close(self) -> None:
        """Drops the schemas this run created (they may be on a shared server)."""
        with self._admin.connect() as conn:
            names = conn.execute(
                sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                {"p": self._prefix + "%"},
            ).scalars().all()
            for name in names:
                conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        self._admin.dispose()


def _start_server(initdb: str, pg_ctl: str) -> Tuple[str, Callable[[], None], Path]:
    prefix, account = _run_as_prefix()
    base = Path(tempfile.mkdtemp(prefix="walletbot-pg-", dir="/tmp" if account else None))
    data, sockets, log = base / "data", base / "sock", base / "server.log"
    sockets.mkdir()
    if account is not None:
        for path in (base, sockets):
            os.chown(path, account.pw_uid, account.pw_gid)
    env = dict(os.environ, LC_ALL="C", LANG="C")

    def run(*args: str) -> None:
        proc = subprocess.run([*prefix, *args], cwd=base, env=env,
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({proc.returncode}):\n"
                f"{proc.stdout}{proc.stderr}{server_log}"
            )

    def stop() -> None:
        try:
            run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(base, ignore_errors=True)

    try:
        run(initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -k {sockets} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        for attempt in range(3):  # the free port may be taken in between
            port = _free_port()
            try:
                run(pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "30",
                    "-o", f"-p {port} {options}", "start")
                break
            except RuntimeError:
                if attempt == 2:
                    raise
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres", stop, log


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole session."""
    existing = os.environ.get("WALLETBOT_TEST_PG_URL")
    if existing:
        server = PostgresServer(existing)
        yield server
        server.close()
        return
    binaries = _find_pg_bin()
    if binaries is None:
        message = ("PostgreSQL server binaries (initdb, pg_ctl) not found: "
                   "apt-get install postgresql, or set WALLETBOT_TEST_PG_URL")
        missing(message)
    url, stop, log = _start_server(*binaries)
    server = PostgresServer(url, log)
    try:
        yield server
    finally:
        server.close()
        stop()


# -- Redis (rate limiter, socket.io fan-out, WeChat de-duplication) --

def find_redis_server() -> Optional[str]:
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.exists(p)), None
    )


@pytest.fixture(scope="session")
def redis_server_binary() -> str:
    """Path of ``redis-server`` (see :mod:`tests.system` when it is missing)."""
    binary = find_redis_server()
    if binary is None:
        missing("redis-server not found: apt-get install redis-server")
    return binary


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a throwaway ``redis-server``, or of ``WALLETBOT_TEST_REDIS_URL``."""
    existing = os.environ.get("WALLETBOT_TEST_REDIS_URL")
    if existing:
        yield existing
        return
    binary = request.getfixturevalue("redis_server_binary")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="walletbot-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.time() > deadline:
                raise AssertionError(f"redis-server did not start (exit {process.poll()})")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(workdir, ignore_errors=True)
