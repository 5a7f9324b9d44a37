"""Back up and restore the tracker store and the wallet DB.

    python -m walletbot.ops.backup backup [--out DIR]
    python -m walletbot.ops.backup restore DIR [--yes]

``backup`` writes one timestamped folder holding both databases and a
``manifest.json`` (when, which URLs without their passwords, rows per table,
tool versions, file checksums). ``restore`` puts both back into the
configured databases (``TRACKER_DB_URL``, ``WALLET_DB_URL``, or
``--tracker-url``/``--wallet-url``) and refuses to overwrite data unless
given ``--yes``.

SQLite goes through SQLite's online backup API, PostgreSQL through
``pg_dump --format=custom`` and ``pg_restore``: the native tools, consistent
while the bot runs. A backup restores into the same backend it came from; a
SQLite backup cannot be restored into PostgreSQL or the other way round.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from walletbot.ops.common import BackupError, RestoreRefused, Store, describe_counts
from walletbot.trainer.command import Command, Option, add_commands

DEFAULT_OUT = Path("var/backups")
MANIFEST = "manifest.json"
# Bumped when the folder's layout changes; restore refuses layouts it does not know.
FORMAT = 1
_FOLDER_PREFIX = "walletbot-backup-"
_SUFFIX = {"sqlite": ".sqlite3", "postgresql": ".pgdump"}
_EXAMPLE = {"tracker": "sqlite:///var/tracker.db", "wallet": "sqlite:///var/wallet.db"}


# --- which databases ----------------------------------------------------------

def _store(*, name: str, raw: str, setting: str, flag: str) -> Store:
    import sqlalchemy as sa

    try:
        url = sa.engine.make_url(raw)
    except sa.exc.ArgumentError:
        # The raw text may hold a password: it is not repeated here.
        raise BackupError(f"cannot parse the {name} database URL: check {setting} (or {flag}), "
                          f"e.g. {_EXAMPLE[name]} or postgresql://user:pw@host:5432/db") from None
    if url.drivername.split("+")[0] == "postgres":  # as some hosting providers spell it
        url = url.set(drivername="postgresql" + url.drivername[len("postgres"):])
    store = Store(name=name, url=url, setting=setting, flag=flag)
    if store.backend not in _SUFFIX:
        raise BackupError(f"{store.where}: {store.backend} is not supported, only SQLite and "
                          f"PostgreSQL: {store.fix_url}")
    return store


def stores(*, tracker_url: Optional[str] = None,
           wallet_url: Optional[str] = None) -> Tuple[Store, Store]:
    """The tracker store and the wallet DB: the settings, unless overridden."""
    from walletbot.settings import current

    settings = current()
    return (
        _store(name="tracker", raw=tracker_url or settings.tracker_db_url,
               setting="TRACKER_DB_URL", flag="--tracker-url"),
        _store(name="wallet", raw=wallet_url or settings.wallet_db_url,
               setting="WALLET_DB_URL", flag="--wallet-url"),
    )


def _backend(store: Store) -> Any:
    # Imported on use: the PostgreSQL half pulls in SQLAlchemy's engine machinery.
    if store.backend == "sqlite":
        from walletbot.ops import sqlite_backend

        return sqlite_backend
    from walletbot.ops import postgres_backend

    return postgres_backend


# --- backup -------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tools() -> Dict[str, str]:
    import sqlite3

    import sqlalchemy as sa

    try:
        from importlib.metadata import version

        walletbot = version("walletbot")
    except Exception:  # not installed as a package: still a usable backup
        walletbot = "unknown"
    return {"python": platform.python_version(), "sqlalchemy": sa.__version__,
            "sqlite": sqlite3.sqlite_version, "walletbot": walletbot}


def _dump_one(*, store: Store, folder: Path) -> Dict[str, Any]:
    file_name = store.name + _SUFFIX[store.backend]
    dest = folder / file_name
    dumped = _backend(store).dump(store=store, dest=dest)
    # Conversations and wallet data are personal data: owner-only files.
    dest.chmod(0o600)
    return {
        "backend": store.backend,
        "url": store.shown,
        "file": file_name,
        "bytes": dest.stat().st_size,
        "sha256": _sha256(dest),
        "tool": dumped.tool,
        "server_version": dumped.server_version,
        "schemas": list(dumped.schemas) if dumped.schemas else None,
        "tables": dumped.tables,
    }


def _folder_name(now: datetime) -> str:
    return _FOLDER_PREFIX + now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _free_folder(*, out_dir: Path, name: str) -> Path:
    candidate, number = out_dir / name, 1
    while candidate.exists() or candidate.with_name(candidate.name + ".partial").exists():
        number += 1
        candidate = out_dir / f"{name}-{number}"
    return candidate


def backup(*, out_dir: Path = DEFAULT_OUT, tracker_url: Optional[str] = None,
           wallet_url: Optional[str] = None, now: Optional[datetime] = None) -> Path:
    """Writes both databases and a manifest into a new folder under ``out_dir``.

    The folder is written as ``<name>.partial`` and renamed when complete, so
    a folder without that suffix is always a whole backup.

    Returns:
        The new folder.

    Raises:
        BackupError: A database, a tool or the output folder is not usable.
    """
    targets = stores(tracker_url=tracker_url, wallet_url=wallet_url)
    when = now or datetime.now(timezone.utc)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        final = _free_folder(out_dir=out_dir, name=_folder_name(when))
        partial = final.with_name(final.name + ".partial")
        partial.mkdir(mode=0o700)
    except OSError as error:
        raise BackupError(f"cannot create a backup folder in {out_dir}: {error.strerror}; "
                          "pass --out DIR with a folder this user may write") from None
    try:
        manifest = {
            "format": FORMAT,
            "created_at": when.astimezone(timezone.utc).isoformat(timespec="seconds"),
            "tools": _tools(),
            "stores": {store.name: _dump_one(store=store, folder=partial) for store in targets},
        }
        manifest_path = partial / MANIFEST
        manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                 encoding="utf-8")
        manifest_path.chmod(0o600)
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


# --- restore ------------------------------------------------------------------

def read_manifest(folder: Path) -> Dict[str, Any]:
    """The folder's manifest, checked for the parts restore relies on."""
    if not folder.is_dir():
        raise BackupError(f"backup folder {folder} not found: pass a folder written by "
                          f"`backup`, e.g. {DEFAULT_OUT}/{_FOLDER_PREFIX}20260101T020000Z")
    if folder.name.endswith(".partial"):
        raise BackupError(f"{folder} is an unfinished backup (its name ends in .partial): "
                          "use a complete one")
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{folder} has no {MANIFEST}: is it a folder written by "
                          "`backup`?") from None
    except (OSError, ValueError) as error:
        raise BackupError(f"cannot read {path}: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
            or not isinstance(manifest.get("stores"), dict):
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise BackupError(f"{path} is not a backup manifest this version understands "
                          f"(format {found!r}, expected {FORMAT})")
    missing = [name for name in ("tracker", "wallet")
               if not isinstance(manifest["stores"].get(name), dict)]
    if missing:
        raise BackupError(f"{path} lists no {' or '.join(missing)} database: the backup "
                          "is incomplete")
    return manifest


def _check_entry(*, store: Store, entry: Mapping[str, Any], folder: Path) -> Path:
    if entry.get("backend") != store.backend:
        raise BackupError(
            f"the {store.name} backup is from {entry.get('backend')}, but {store.where} is "
            f"{store.backend}: a backup restores into the same backend only (use that "
            f"backend's URL, or {store.fix_url})")
    file_name = str(entry.get("file"))
    # A bare name only: a changed manifest must not point the restore elsewhere.
    source = folder / Path(file_name).name
    if Path(file_name).name != file_name or not source.is_file():
        raise BackupError(f"{source} is missing: the backup folder is incomplete")
    if _sha256(source) != entry.get("sha256"):
        raise BackupError(f"{source} does not match the checksum in {MANIFEST}: the file is "
                          "damaged or was changed; use another backup")
    if store.backend == "postgresql":
        _backend(store).check_restorable(store=store, schemas=entry.get("schemas"))
    return source


def _occupied(*, store: Store) -> Dict[str, int]:
    counts = _backend(store).target_counts(store=store)
    return {table: rows for table, rows in counts.items() if rows}


def _refusal(occupied: Sequence[Tuple[Store, Dict[str, int]]]) -> RestoreRefused:
    described = "; ".join(
        f"{store.where} is not empty ({', '.join(f'{t}: {n}' for t, n in counts.items())})"
        for store, counts in occupied)
    return RestoreRefused(
        f"refusing to restore: {described}. Restoring replaces that data with the backup's. "
        "Stop the bot, back up the current data if it may be needed "
        "(python -m walletbot.ops.backup backup), then run restore again with --yes")


def _verify(*, store: Store, expected: Mapping[str, int]) -> Dict[str, int]:
    found = _backend(store).target_counts(store=store)
    wrong = {table: (rows, found.get(table)) for table, rows in expected.items()
             if found.get(table) != rows}
    if wrong:
        details = ", ".join(f"{table}: {want} expected, {got} found"
                            for table, (want, got) in wrong.items())
        raise BackupError(f"restored {store.where}, but its rows differ from the backup's "
                          f"({details}): is the bot still running and writing? Stop it and "
                          "restore again with --yes")
    return {table: found[table] for table in expected}


def restore(
    *, folder: Path, tracker_url: Optional[str] = None, wallet_url: Optional[str] = None,
    yes: bool = False,
) -> List[Tuple[Store, Dict[str, int]]]:
    """Restores both databases of the backup in ``folder``.

    Everything that can be checked is checked before either database changes:
    the manifest, the files' checksums, the backends, the tools, and whether
    the targets hold data.

    Returns:
        Each store with its restored row counts per table.

    Raises:
        RestoreRefused: A target holds rows and ``yes`` is false.
        BackupError: The backup, a database or a tool is not usable.
    """
    manifest = read_manifest(folder)
    plan = []
    for store in stores(tracker_url=tracker_url, wallet_url=wallet_url):
        entry = manifest["stores"][store.name]
        plan.append((store, entry, _check_entry(store=store, entry=entry, folder=folder)))
    occupied = [(store, counts) for store, _, _ in plan if (counts := _occupied(store=store))]
    if occupied and not yes:
        raise _refusal(occupied)
    restored = []
    for store, entry, source in plan:
        _backend(store).load(store=store, source=source)
        restored.append((store, _verify(store=store, expected=entry.get("tables") or {})))
    return restored


# --- command line -------------------------------------------------------------

_TRACKER_URL = Option("--tracker-url", metavar="URL",
                      help="tracker store URL instead of TRACKER_DB_URL (shown in `ps`: "
                           "prefer the setting for a URL with a password)")
_WALLET_URL = Option("--wallet-url", metavar="URL",
                     help="wallet DB URL instead of WALLET_DB_URL (shown in `ps`: prefer "
                          "the setting for a URL with a password)")


def _run_backup(args: argparse.Namespace) -> int:
    try:
        folder = backup(out_dir=args.out, tracker_url=args.tracker_url, wallet_url=args.wallet_url)
    except BackupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    for name, entry in manifest["stores"].items():
        print(f"backed up {name:<7} {entry['url']}: {describe_counts(entry['tables'])}")
    print(f"backup written to {folder}")
    return 0


def _run_restore(args: argparse.Namespace) -> int:
    try:
        restored = restore(folder=args.folder, tracker_url=args.tracker_url,
                           wallet_url=args.wallet_url, yes=args.yes)
    except BackupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for store, counts in restored:
        print(f"restored {store.name:<7} into {store.shown}: {describe_counts(counts)}, "
              "as in the backup")
    print("start the bot as usual: start-up adds any tables a newer version needs")
    return 0


COMMANDS: Tuple[Command, ...] = (
    Command(
        name="backup",
        help="back up the tracker store and the wallet DB into a new folder",
        description="Writes DIR/walletbot-backup-<UTC time>/ with both databases and a "
                    "manifest.json.",
        arguments=(
            Option("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                   help="where the timestamped backup folder goes"),
            _TRACKER_URL, _WALLET_URL,
        ),
        run=_run_backup,
    ),
    Command(
        name="restore",
        help="restore both databases from a backup folder",
        description="Restores both databases into the configured ones (same backend as the "
                    "backup). Stop the bot first.",
        arguments=(
            Option("folder", type=Path, metavar="DIR", help="a folder written by `backup`"),
            Option("--yes", action="store_true",
                   help="overwrite databases that already hold data"),
            _TRACKER_URL, _WALLET_URL,
        ),
        run=_run_restore,
    ),
)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows a default only where there is one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m walletbot.ops.backup``."""
    parser = argparse.ArgumentParser(
        prog="python -m walletbot.ops.backup",
        description="Back up and restore walletbot's tracker store and wallet DB "
                    "(SQLite or PostgreSQL; same backend only).",
        formatter_class=_Formatter,
    )
    add_commands(parser, COMMANDS, dest="command", required=True,
                 formatter=_Formatter)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit status (1 on any error, with the reason on stderr)."""
    args = make_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
