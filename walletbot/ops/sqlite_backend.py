"""SQLite half of the backup: SQLite's own online backup API.

``sqlite3.Connection.backup`` copies the database page by page under a read
lock, so the copy is one consistent snapshot even while the bot writes, and
it never reads a half-written file the way ``cp`` can. Restoring goes the
same way in the other direction: the pages of the configured file are
replaced in place, so no process is left holding the old file after a rename.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Dict

from walletbot.ops.common import BackupError, Dump, Store

# Seconds to wait for the bot's own write to finish before "database is locked".
_BUSY_TIMEOUT = 30


def database_path(*, store: Store) -> Path:
    """The file behind a ``sqlite:///path`` URL (relative to the current folder, as for the bot)."""
    database = store.url.database or ""
    if database in ("", ":memory:") or store.url.query.get("mode") == "memory":
        raise BackupError(f"{store.where} is in memory, so there is no file to back up or "
                          f"restore: {store.fix_url}, e.g. sqlite:///var/{store.name}.db")
    if database.startswith("file:"):
        raise BackupError(f"{store.where} is a file: URI: {store.fix_url} and use a plain "
                          f"path, e.g. sqlite:///var/{store.name}.db")
    return Path(database)


def _open_read_only(path: Path) -> sqlite3.Connection:
    # mode=ro: reading a backup or a source must never create or change it.
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT)


def _counts(conn: sqlite3.Connection) -> Dict[str, int]:
    # sqlite_sequence and friends are SQLite's bookkeeping, copied with the pages.
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")]
    quoted = {name: '"' + name.replace('"', '""') + '"' for name in names}
    return {name: conn.execute(f"SELECT count(*) FROM {quoted[name]}").fetchone()[0]
            for name in names}


def _copy(*, source: sqlite3.Connection, dest: sqlite3.Connection) -> None:
    # pages=-1 (the default): one step, so the copy is a single snapshot.
    source.backup(dest)


def dump(*, store: Store, dest: Path) -> Dump:
    """Copies the store's file to ``dest`` and counts the copy's rows."""
    path = database_path(store=store)
    if not path.is_file():
        raise BackupError(f"{store.where}: no file {path.resolve()}: {store.fix_url}; a "
                          "relative path counts from the current folder (run from the "
                          "project root)")
    try:
        with closing(_open_read_only(path)) as source, closing(sqlite3.connect(dest)) as copy:
            _copy(source=source, dest=copy)
        with closing(_open_read_only(dest)) as copy:
            verdict = copy.execute("PRAGMA integrity_check").fetchone()[0]
            counts = _counts(copy)
    except sqlite3.Error as error:
        raise BackupError(f"cannot copy {store.where}: {error} (is {path} a SQLite "
                          "database, readable by this user?)") from None
    if verdict != "ok":
        raise BackupError(f"the copy of {store.where} fails SQLite's integrity check "
                          f"({verdict}): the database itself may be damaged; check it with "
                          f"sqlite3 {path} 'PRAGMA integrity_check'")
    return Dump(tables=counts, tool=f"sqlite {sqlite3.sqlite_version} (Python sqlite3 backup API)")


def target_counts(*, store: Store) -> Dict[str, int]:
    """Row count per table of the store's file; empty if there is no file yet."""
    path = database_path(store=store)
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return {}
    try:
        with closing(_open_read_only(path)) as conn:
            return _counts(conn)
    except sqlite3.Error as error:
        raise BackupError(f"cannot read {store.where}: {error}; if {path} is not a SQLite "
                          f"database, move it away or {store.fix_url}") from None


def load(*, store: Store, source: Path) -> None:
    """Replaces the store's database with the copy at ``source``."""
    path = database_path(store=store)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(_open_read_only(source)) as backup, \
                closing(sqlite3.connect(path, timeout=_BUSY_TIMEOUT)) as target:
            _copy(source=backup, dest=target)
    except (OSError, sqlite3.Error) as error:
        raise BackupError(f"cannot restore into {store.where}: {error} (stop the bot so "
                          f"that it does not hold the file, and check that {path.parent} "
                          "is writable)") from None
