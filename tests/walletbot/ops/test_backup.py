"""Backup and restore of the tracker store and the wallet DB, on SQLite and PostgreSQL.

Each round trip fills real data (conversations saved through Rasa's own
``SQLTrackerStore``; the wallet DB through ``init_db``, ``seed_demo``,
tickets and feedback), backs it up with the command line, restores it into
fresh, empty databases and compares every row.

PostgreSQL: the session's ``pg_server`` hands out schemas, but production
keeps each store in a database of its own and the tool then dumps whole
databases, so these tests create fresh databases through the server's admin
URL (with ``WALLETBOT_TEST_PG_URL`` its role needs CREATEDB). The
``search_path`` URLs of ``pg_server.new_url()`` are covered on their own.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import sqlite3
import subprocess
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from walletbot.ops import postgres_backend
from walletbot.ops.backup import MANIFEST, main
from walletbot.store import init_db, make_engine, seed_demo
from walletbot.store import tickets as tq
from walletbot.store.schema import metadata

DOMAIN = Domain.from_dict({
    "intents": ["greet", "check_transaction", "request_human"],
    "slots": {"order_id": {"type": "text", "mappings": [{"type": "custom"}]}},
})
SENDERS = ("web:U1001", "wechat:oAbC123", "rest:lisi")
NewUrl = Callable[[str], str]
_numbers = itertools.count(1)


# --- databases ----------------------------------------------------------------

@pytest.fixture
def pg_databases(pg_server: Any) -> Iterator[NewUrl]:
    """Makes fresh, empty PostgreSQL databases; drops them afterwards."""
    admin = sa.create_engine(pg_server.admin_url, isolation_level="AUTOCOMMIT")
    created: List[str] = []

    def new(label: str) -> str:
        name = f"walletbot_ops_{os.getpid()}_{next(_numbers)}_{label}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        created.append(name)
        url = pg_server.admin_url.set(database=name).difference_update_query(["options"])
        return url.render_as_string(hide_password=False)

    yield new
    with admin.connect() as conn:
        for name in created:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> NewUrl:
    """Makes URLs of fresh, empty databases of one backend."""
    if request.param == "sqlite":
        return lambda label: f"sqlite:///{tmp_path / f'{label}-{next(_numbers)}.db'}"
    return request.getfixturevalue("pg_databases")


def with_password(url: str) -> Tuple[str, str]:
    """The URL with a password, and the password.

    The session's own server trusts local connections, so any password
    works; a server from WALLETBOT_TEST_PG_URL keeps its real one.
    """
    parsed = sa.engine.make_url(url)
    password = parsed.password or "Pw-never-shown-9f3a"
    return parsed.set(password=password).render_as_string(hide_password=False), password


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- data ---------------------------------------------------------------------

def conversation(sender: str, start: float = 1_700_000_000.0) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    for offset, event in enumerate([
        ActionExecuted("action_session_start"),
        SessionStarted(),
        ActionExecuted("action_listen"),
        UserUttered("帮我查一下WD202611180002", {"name": "check_transaction", "confidence": 0.9},
                    [{"entity": "order_id", "value": "WD202611180002", "start": 5, "end": 19}],
                    input_channel=sender.split(":")[0]),
        SlotSet("order_id", "WD202611180002"),
        ActionExecuted("action_check_transaction"),
        BotUttered("订单 WD202611180002 处理中", {"buttons": None}),
        ActionExecuted("action_listen"),
        UserUttered("转人工", {"name": "request_human", "confidence": 0.97}),
        ActionExecuted("action_listen"),
    ]):
        event.timestamp = start + offset
        tracker.update(event)
    return tracker


async def save_conversations(url: str, senders: Tuple[str, ...] = SENDERS) -> None:
    store = SQLTrackerStore(domain=DOMAIN, host=url)
    try:
        for number, sender in enumerate(senders):
            await store.save(conversation(sender, start=1_700_000_000.0 + 100 * number))
    finally:
        store.engine.dispose()


def events_rows(url: str) -> List[Tuple[Any, ...]]:
    """Every row of Rasa's ``events`` table, in order."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(
                "SELECT id, sender_id, type_name, timestamp, intent_name, action_name, data "
                "FROM events ORDER BY id"))]
    finally:
        engine.dispose()


def fill_wallet(url: str) -> None:
    """Schema, demo data, a resolved and rated ticket, an open one and a suggestion."""
    engine = make_engine(url)
    try:
        init_db(engine)
        seed_demo(engine)
        with engine.begin() as conn:
            stolen, _ = tq.open_ticket(
                conn=conn, channel="web", sender_id="web:U1001", category="account_compromised",
                priority=1, user_id="U1001", summary="账户被盗，请冻结",
                transcript=[{"role": "user", "text": "我的账户被盗了",
                             "time": "2026-11-24T08:00:00+00:00"}])
            assert tq.claim_ticket(conn=conn, ticket_id=stolen.ticket_id, agent="agent01")
            assert tq.resolve_ticket(conn=conn, ticket_id=stolen.ticket_id, agent="agent01")
            tq.add_feedback(conn=conn, channel="web", sender_id="web:U1001", score=5,
                            comment="处理很快", ticket_id=stolen.ticket_id)
            tq.open_ticket(conn=conn, channel="wechat", sender_id="wechat:oAbC123",
                           category="request_human", priority=3, summary="转人工")
            tq.add_feedback(conn=conn, channel="rest", sender_id="rest:lisi",
                            comment="希望支持夜间客服")
    finally:
        engine.dispose()


def wallet_rows(url: str) -> Dict[str, List[Dict[str, Any]]]:
    """Every row of every wallet table, decoded by the schema's types, by primary key."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table.name: [dict(row._mapping) for row in conn.execute(
                    sa.select(table).order_by(*table.primary_key.columns))]
                for table in metadata.sorted_tables
            }
    finally:
        engine.dispose()


# --- running the command line -------------------------------------------------

def run(*argv: str) -> int:
    return main(list(argv))


def backup_folder(out: Path) -> Path:
    folders = [path for path in out.iterdir() if path.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def count_of(entry: Dict[str, Any], table: str) -> int:
    """Rows of ``table`` in a manifest entry (PostgreSQL keys carry the schema)."""
    matches = [n for key, n in entry["tables"].items() if key.split(".")[-1] == table]
    assert len(matches) == 1, entry["tables"]
    return matches[0]


async def filled(new_url: NewUrl) -> Tuple[str, str]:
    tracker, wallet = new_url("tracker"), new_url("wallet")
    await save_conversations(tracker)
    fill_wallet(wallet)
    return tracker, wallet


# --- round trip ---------------------------------------------------------------

async def test_a_backup_restores_into_fresh_databases_with_everything_intact(
        new_url: NewUrl, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tracker, wallet = await filled(new_url)
    events, wallet_data = events_rows(tracker), wallet_rows(wallet)
    assert len(events) == 10 * len(SENDERS)
    assert len(wallet_data["tickets"]) == 2 and len(wallet_data["feedback"]) == 2

    assert run("backup", "--out", str(tmp_path / "backups"),
               "--tracker-url", tracker, "--wallet-url", wallet) == 0
    folder = backup_folder(tmp_path / "backups")
    assert folder.name.startswith("walletbot-backup-")
    assert f"backup written to {folder}" in capsys.readouterr().out

    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["created_at"] and manifest["tools"]["python"]
    assert count_of(manifest["stores"]["tracker"], "events") == len(events)
    for table in ("users", "bindings", "transactions", "tickets", "feedback"):
        assert count_of(manifest["stores"]["wallet"], table) == len(wallet_data[table])
    for entry in manifest["stores"].values():
        assert (folder / entry["file"]).is_file() and entry["tool"]

    fresh_tracker, fresh_wallet = new_url("tracker_restored"), new_url("wallet_restored")
    assert run("restore", str(folder),
               "--tracker-url", fresh_tracker, "--wallet-url", fresh_wallet) == 0
    assert "restored tracker" in capsys.readouterr().out

    assert events_rows(fresh_tracker) == events
    assert wallet_rows(fresh_wallet) == wallet_data

    # Rasa reads the conversations back whole, and the bot can go on writing.
    store = SQLTrackerStore(domain=DOMAIN, host=fresh_tracker)
    try:
        for number, sender in enumerate(SENDERS):
            full = await store.retrieve_full_tracker(sender)
            assert list(full.events) == list(
                conversation(sender, start=1_700_000_000.0 + 100 * number).events)
        tracker_now = await store.retrieve(SENDERS[0])
        tracker_now.update(UserUttered("你好", {"name": "greet", "confidence": 1.0}))
        await store.save(tracker_now)
    finally:
        store.engine.dispose()
    after = events_rows(fresh_tracker)
    assert after[:-1] == events and after[-1][0] > events[-1][0]

    engine = make_engine(fresh_wallet)
    try:
        with engine.begin() as conn:
            queue = tq.list_tickets(conn=conn)
            assert [t.sender_id for t in queue] == ["wechat:oAbC123"]
            stolen = tq.get_ticket(conn=conn, ticket_id=wallet_data["tickets"][0]["ticket_id"])
            assert stolen.status == "resolved"
            assert stolen.transcript[0]["text"] == "我的账户被盗了"
            assert tq.feedback_for_ticket(conn=conn, ticket_id=stolen.ticket_id) == 5
            new_ticket, created = tq.open_ticket(conn=conn, channel="rest", sender_id="rest:lisi",
                                                 category="complain", priority=2)
            assert created and new_ticket.ticket_id > max(
                t["ticket_id"] for t in wallet_data["tickets"])
    finally:
        engine.dispose()


async def test_restore_refuses_databases_with_data_unless_told_yes(
        new_url: NewUrl, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tracker, wallet = await filled(new_url)
    events, wallet_data = events_rows(tracker), wallet_rows(wallet)
    assert run("backup", "--out", str(tmp_path), "--tracker-url", tracker,
               "--wallet-url", wallet) == 0
    folder = backup_folder(tmp_path)
    # Life goes on after the backup: a new conversation and a new ticket.
    await save_conversations(tracker, ("web:U2002",))
    engine = make_engine(wallet)
    with engine.begin() as conn:
        tq.open_ticket(conn=conn, channel="web", sender_id="web:U2002",
                       category="complain", priority=2)
    engine.dispose()
    changed_events, changed_wallet = events_rows(tracker), wallet_rows(wallet)
    capsys.readouterr()

    assert run("restore", str(folder), "--tracker-url", tracker, "--wallet-url", wallet) == 1
    err = capsys.readouterr().err
    assert "refusing to restore" in err and "not empty" in err and "--yes" in err
    assert "tracker database" in err and "wallet database" in err
    assert events_rows(tracker) == changed_events
    assert wallet_rows(wallet) == changed_wallet

    assert run("restore", str(folder), "--yes", "--tracker-url", tracker,
               "--wallet-url", wallet) == 0
    assert events_rows(tracker) == events
    assert wallet_rows(wallet) == wallet_data


async def test_tables_without_rows_do_not_count_as_data(
        new_url: NewUrl, tmp_path: Path) -> None:
    """A fresh deployment that started once has empty tables: restoring needs no --yes."""
    tracker, wallet = await filled(new_url)
    wallet_data = wallet_rows(wallet)
    assert run("backup", "--out", str(tmp_path), "--tracker-url", tracker,
               "--wallet-url", wallet) == 0
    target_tracker, target_wallet = new_url("tracker_started"), new_url("wallet_started")
    await save_conversations(target_tracker, ())  # Rasa creates its table on start
    engine = make_engine(target_wallet)
    init_db(engine)
    engine.dispose()

    assert run("restore", str(backup_folder(tmp_path)), "--tracker-url", target_tracker,
               "--wallet-url", target_wallet) == 0
    assert wallet_rows(target_wallet) == wallet_data
    assert len(events_rows(target_tracker)) == 10 * len(SENDERS)


# --- secrets ------------------------------------------------------------------

async def test_the_password_stays_out_of_the_manifest_the_output_and_command_lines(
        pg_databases: NewUrl, tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    tracker, password = with_password(pg_databases("tracker"))
    wallet, _ = with_password(pg_databases("wallet"))
    await save_conversations(tracker)
    fill_wallet(wallet)
    calls: List[Tuple[List[str], Dict[str, str]]] = []
    real_run = subprocess.run

    def spy(args: List[str], **kwargs: Any) -> Any:
        calls.append((list(args), dict(kwargs.get("env") or {})))
        return real_run(args, **kwargs)

    monkeypatch.setattr(postgres_backend.subprocess, "run", spy)

    assert run("backup", "--out", str(tmp_path), "--tracker-url", tracker,
               "--wallet-url", wallet) == 0
    folder = backup_folder(tmp_path)
    fresh_tracker, _ = with_password(pg_databases("tracker_restored"))
    fresh_wallet, _ = with_password(pg_databases("wallet_restored"))
    assert run("restore", str(folder), "--tracker-url", fresh_tracker,
               "--wallet-url", fresh_wallet) == 0
    assert run("restore", str(folder), "--tracker-url", fresh_tracker,
               "--wallet-url", fresh_wallet) == 1  # refused: names the URLs
    down = f"postgresql://walletbot:{password}@127.0.0.1:{unused_port()}/wallet"
    assert run("backup", "--out", str(tmp_path / "x"), "--tracker-url", down,
               "--wallet-url", down) == 1

    manifest = (folder / MANIFEST).read_text(encoding="utf-8")
    output = capsys.readouterr()
    assert password not in manifest
    assert password not in output.out and password not in output.err
    assert "postgresql+psycopg2://postgres@127.0.0.1" in manifest  # the URL, without it
    assert "cannot connect" in output.err and "walletbot@127.0.0.1" in output.err
    tools = [(args, env) for args, env in calls if "--version" not in args]
    assert {Path(args[0]).name for args, _ in tools} == {"pg_dump", "pg_restore"}
    for args, env in tools:
        assert not any(password in arg for arg in args)
        assert env["PGPASSWORD"] == password


# --- PostgreSQL schemas -------------------------------------------------------

async def test_a_search_path_url_backs_up_its_schema_and_restores_under_the_same_name(
        pg_server: Any, pg_databases: NewUrl, tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    tracker, wallet = pg_server.new_url(), pg_server.new_url()
    await save_conversations(tracker)
    fill_wallet(wallet)
    events, wallet_data = events_rows(tracker), wallet_rows(wallet)
    assert run("backup", "--out", str(tmp_path), "--tracker-url", tracker,
               "--wallet-url", wallet) == 0
    folder = backup_folder(tmp_path)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    schema = sa.engine.make_url(wallet).query["options"].split("=")[-1]
    assert manifest["stores"]["wallet"]["schemas"] == [schema]
    assert set(manifest["stores"]["wallet"]["tables"]) == {
        f"{schema}.{table.name}" for table in metadata.sorted_tables}

    # Another schema name: pg_restore cannot rename, so this is refused up front.
    assert run("restore", str(folder), "--tracker-url", pg_server.new_url(),
               "--wallet-url", pg_server.new_url()) == 1
    assert "search_path" in capsys.readouterr().err

    def same_schema(url: str) -> str:
        options = sa.engine.make_url(url).query["options"]
        fresh = sa.engine.make_url(pg_databases("schema"))
        return fresh.update_query_dict({"options": options}).render_as_string(hide_password=False)

    fresh_tracker, fresh_wallet = same_schema(tracker), same_schema(wallet)
    assert run("restore", str(folder), "--tracker-url", fresh_tracker,
               "--wallet-url", fresh_wallet) == 0
    assert events_rows(fresh_tracker) == events
    assert wallet_rows(fresh_wallet) == wallet_data


# --- SQLite while the bot writes ----------------------------------------------

def test_a_sqlite_backup_taken_during_a_write_holds_only_committed_rows(tmp_path: Path) -> None:
    wallet = f"sqlite:///{tmp_path / 'wallet.db'}"
    tracker = f"sqlite:///{tmp_path / 'tracker.db'}"
    fill_wallet(wallet)
    with sqlite3.connect(tmp_path / "tracker.db") as conn:
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, data TEXT)")
        conn.execute("INSERT INTO events (sender_id, data) VALUES ('web:U1001', '{}')")
    writer = sqlite3.connect(tmp_path / "wallet.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # the bot, in the middle of a turn
        writer.execute("INSERT INTO feedback (channel, sender_id, comment, created_at) "
                       "VALUES ('web', 'web:U9', 'not committed', '2026-11-24 08:00:00')")
        assert run("backup", "--out", str(tmp_path / "out"), "--tracker-url", tracker,
                   "--wallet-url", wallet) == 0
    finally:
        writer.rollback()
        writer.close()
    manifest = json.loads((backup_folder(tmp_path / "out") / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["stores"]["wallet"]["tables"]["feedback"] == 2


# --- errors that say what to do ----------------------------------------------

def test_a_missing_pg_dump_is_named_with_the_fix(
        pg_databases: NewUrl, tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_backend.shutil, "which", lambda name: None)
    monkeypatch.setattr(postgres_backend.glob, "glob", lambda pattern: [])
    url = pg_databases("tracker")
    assert run("backup", "--out", str(tmp_path), "--tracker-url", url, "--wallet-url", url) == 1
    err = capsys.readouterr().err
    assert "pg_dump not found" in err and "apt-get install postgresql-client" in err
    assert list(tmp_path.iterdir()) == []  # no half-written folder left behind


def test_an_unreachable_server_is_named_without_its_password(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    url = f"postgresql://rasa:S3cret-pw@127.0.0.1:{unused_port()}/rasa"
    assert run("backup", "--out", str(tmp_path), "--tracker-url", url,
               "--wallet-url", f"sqlite:///{tmp_path / 'w.db'}") == 1
    err = capsys.readouterr().err
    assert "cannot connect to the tracker database postgresql://rasa@127.0.0.1" in err
    assert "check that the server is running" in err and "TRACKER_DB_URL" in err
    assert "S3cret-pw" not in err


def test_a_missing_folder_or_manifest_is_named(tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    assert run("restore", str(tmp_path / "nope")) == 1
    assert "backup folder" in capsys.readouterr().err
    assert run("restore", str(tmp_path)) == 1
    assert f"has no {MANIFEST}" in capsys.readouterr().err


def test_a_missing_sqlite_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run("backup", "--out", str(tmp_path / "out"),
               "--tracker-url", f"sqlite:///{tmp_path / 'absent.db'}",
               "--wallet-url", f"sqlite:///{tmp_path / 'absent.db'}") == 1
    err = capsys.readouterr().err
    assert "no file" in err and "absent.db" in err and "TRACKER_DB_URL" in err


async def test_a_backup_restores_only_into_the_backend_it_came_from(
        pg_databases: NewUrl, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tracker, wallet = f"sqlite:///{tmp_path / 't.db'}", f"sqlite:///{tmp_path / 'w.db'}"
    await save_conversations(tracker)
    fill_wallet(wallet)
    assert run("backup", "--out", str(tmp_path / "out"), "--tracker-url", tracker,
               "--wallet-url", wallet) == 0
    target = pg_databases("tracker")
    assert run("restore", str(backup_folder(tmp_path / "out")), "--tracker-url", target,
               "--wallet-url", f"sqlite:///{tmp_path / 'w2.db'}") == 1
    assert "same backend only" in capsys.readouterr().err
    assert not (tmp_path / "w2.db").exists()  # checked before anything was written


async def test_a_changed_backup_file_is_refused(tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    tracker, wallet = f"sqlite:///{tmp_path / 't.db'}", f"sqlite:///{tmp_path / 'w.db'}"
    await save_conversations(tracker)
    fill_wallet(wallet)
    assert run("backup", "--out", str(tmp_path / "out"), "--tracker-url", tracker,
               "--wallet-url", wallet) == 0
    folder = backup_folder(tmp_path / "out")
    with (folder / "wallet.sqlite3").open("ab") as handle:
        handle.write(b"\0")
    assert run("restore", str(folder), "--tracker-url", f"sqlite:///{tmp_path / 't2.db'}",
               "--wallet-url", f"sqlite:///{tmp_path / 'w2.db'}") == 1
    assert "checksum" in capsys.readouterr().err
    assert not (tmp_path / "t2.db").exists()
