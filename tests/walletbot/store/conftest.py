"""Engines for the data-layer tests: every test runs on SQLite and PostgreSQL.

PostgreSQL comes from the session's ``pg_server`` (tests/walletbot/conftest.py):
each test gets a new, empty schema in it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from walletbot.store import init_db, make_engine, seed_demo


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a new, empty wallet database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wallet.db'}"
    return request.getfixturevalue("pg_server").new_url()


@pytest.fixture
def bare_engine(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database (no tables)."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(bare_engine: Engine) -> Engine:
    """An engine on a database with the schema and the demo data."""
    init_db(bare_engine)
    seed_demo(bare_engine)
    return bare_engine


@pytest.fixture
def conn(engine: Engine) -> Iterator[sa.engine.Connection]:
    """A connection in a transaction, rolled back at the end."""
    with engine.connect() as connection:
        yield connection
        connection.rollback()
