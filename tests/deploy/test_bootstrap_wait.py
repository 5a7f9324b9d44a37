"""``scripts/prod/bootstrap.py wait``: the Kubernetes pods' init container, before their server.

The schema check runs on SQLite here (SQLAlchemy's inspector is the same for
PostgreSQL); the waiting loop runs with a fake clock.
"""

from __future__ import annotations

import subprocess

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.prod.test_config import load_bootstrap
from walletbot.settings import PROJECT_ROOT

PYTHON = str(PROJECT_ROOT / ".venv" / "bin" / "python")
URLS = {"TRACKER_DB_URL": "postgresql://rasa:a1@db:5432/rasa",
        "WALLET_DB_URL": "postgresql://wallet:b2@db:5432/wallet"}


@pytest.fixture(scope="module")
def bootstrap():
    return load_bootstrap()


def test_the_schema_check_sees_missing_tables_and_columns(bootstrap, tmp_path):
    from rasa.core.tracker_store import SQLTrackerStore

    from walletbot.store import init_db, make_engine

    tracker = make_url(f"sqlite:///{tmp_path / 'tracker.db'}")
    wallet = make_url(f"sqlite:///{tmp_path / 'wallet.db'}")
    expected = bootstrap.expected_schema("WALLET_DB_URL")
    assert "events" in bootstrap.expected_schema("TRACKER_DB_URL")
    assert len(expected) >= 5
    # Empty databases: every table is missing.
    assert bootstrap.schema_missing("TRACKER_DB_URL", tracker) == ["events"]
    assert sorted(bootstrap.schema_missing("WALLET_DB_URL", wallet)) == sorted(expected)
    # What setup creates.
    engine = sa.create_engine(tracker)
    SQLTrackerStore.Base.metadata.create_all(engine)
    engine.dispose()
    engine = make_engine(str(wallet))
    init_db(engine)
    engine.dispose()
    assert bootstrap.schema_missing("TRACKER_DB_URL", tracker) == []
    assert bootstrap.schema_missing("WALLET_DB_URL", wallet) == []
    # An older schema, without a column this version adds: not ready either.
    table = next(iter(expected))
    column = expected[table][-1]
    engine = sa.create_engine(wallet)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'ALTER TABLE {table} DROP COLUMN "{column}"')
    engine.dispose()
    assert bootstrap.schema_missing("WALLET_DB_URL", wallet) == [f"{table}.{column}"]


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_returns_once_the_schema_is_there(bootstrap, capsys):
    answers = iter([sa.exc.OperationalError("connect", {}, Exception("refused")),
                    ["events"], []])
    checked = []

    def check(name, url):
        checked.append(name)
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = Clock()
    bootstrap.wait(URLS, ["TRACKER_DB_URL"], timeout=60, interval=2, check=check,
                   sleep=clock.sleep, clock=clock.time)
    assert checked == ["TRACKER_DB_URL"] * 3 and clock.sleeps == [2, 2]
    out = capsys.readouterr().out
    assert "does not answer (OperationalError)" in out and "lacks events" in out
    assert "the schema is ready" in out
    # The password never shows in what it prints.
    assert "a1" not in out.replace("rasa:***", "") and "***" in out


def test_wait_gives_up_after_its_timeout(bootstrap):
    clock = Clock()
    with pytest.raises(bootstrap.SetupError, match=r"not ready after 10 s.*WALLET_DB_URL .* lacks tickets"):
        bootstrap.wait(URLS, timeout=10, interval=3, check=lambda name, url: (
            ["tickets"] if name == "WALLET_DB_URL" else []), sleep=clock.sleep, clock=clock.time)
    assert clock.sleeps == [3, 3, 3, 3]


def test_wait_checks_only_the_databases_asked_for(bootstrap):
    only_wallet = {"WALLET_DB_URL": URLS["WALLET_DB_URL"]}
    seen = []
    bootstrap.wait(only_wallet, ["WALLET_DB_URL"], check=lambda n, u: seen.append(n) or [],
                   sleep=lambda s: None)
    assert seen == ["WALLET_DB_URL"]
    with pytest.raises(bootstrap.SetupError, match="TRACKER_DB_URL is not set"):
        bootstrap.wait(only_wallet, check=lambda n, u: [], sleep=lambda s: None)


def test_the_command_line_refuses_missing_settings():
    done = subprocess.run([PYTHON, "scripts/prod/bootstrap.py", "wait", "--only", "WALLET_DB_URL",
                           "--timeout", "0"], cwd=PROJECT_ROOT, env={"PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "WALLET_DB_URL is not set" in done.stderr
    done = subprocess.run([PYTHON, "scripts/prod/bootstrap.py", "wait", "--only", "OTHER_URL"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "invalid choice" in done.stderr
