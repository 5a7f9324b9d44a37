"""What the SQLite and PostgreSQL halves of the backup share: the error, the
store being worked on, and URLs fit to show.

A URL is only ever shown without its password: manifests are copied around
and command output ends up in tickets and chat logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from sqlalchemy.engine import URL

# Query parameters that carry a secret (libpq accepts ``?password=`` too).
_SECRET_QUERY_KEYS = ("password", "sslpassword")


class BackupError(Exception):
    """A backup or restore that cannot go on; the message names the cause and the fix."""


class RestoreRefused(BackupError):
    """A restore that would overwrite data without ``--yes``."""


def url_without_password(url: URL) -> str:
    """``url`` as text with its password (in the userinfo or the query) removed."""
    query = {key: value for key, value in url.query.items()
             if key.lower() not in _SECRET_QUERY_KEYS}
    # URL.create, not url.set(password=None): set() ignores None values.
    bare = URL.create(url.drivername, username=url.username, host=url.host, port=url.port,
                      database=url.database, query=query)
    return bare.render_as_string(hide_password=False)


def secrets_of(url: URL) -> Tuple[str, ...]:
    """The secret values ``url`` holds, to scrub them from text a tool printed."""
    found = [url.password] + [url.query.get(key) for key in _SECRET_QUERY_KEYS]
    return tuple(str(value) for value in found if value)


def scrub(text: str, *, url: URL) -> str:
    """``text`` with the URL's secrets replaced by ``***``.

    The tools are never given the password on their command line, so they
    should not print it; this is the last guard before a message is shown.
    """
    for secret in secrets_of(url):
        text = text.replace(secret, "***")
    return text


@dataclass(frozen=True)
class Store:
    """One of the two databases, as configured for this run.

    Attributes:
        name: ``tracker`` or ``wallet``: the manifest key and the dump's file name.
        url: Its SQLAlchemy URL (password included, never shown).
        setting: The environment variable that configures it, for messages.
        flag: The command-line option that overrides it, for messages.
    """

    name: str
    url: URL
    setting: str
    flag: str

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql`` (the driver part of the URL dropped)."""
        return self.url.get_backend_name()

    @property
    def shown(self) -> str:
        """The URL without its password."""
        return url_without_password(self.url)

    @property
    def where(self) -> str:
        """``the tracker database postgresql://rasa@db:5432/rasa``, for messages."""
        return f"the {self.name} database {self.shown}"

    @property
    def fix_url(self) -> str:
        """The usual fix of a wrong URL, for messages."""
        return f"check {self.setting} (or pass {self.flag})"


@dataclass(frozen=True)
class Dump:
    """What one database's dump holds, for the manifest.

    Attributes:
        tables: Row count per table, taken from the same snapshot as the dump.
        tool: The program that wrote the dump, with its version.
        server_version: The PostgreSQL server's version; None for SQLite.
        schemas: The PostgreSQL schemas dumped (from the URL's ``search_path``);
            None for the whole database, or for SQLite.
    """

    tables: Dict[str, int]
    tool: str
    server_version: Optional[str] = None
    schemas: Optional[Tuple[str, ...]] = None


def describe_counts(counts: Dict[str, int]) -> str:
    """``3 tables, 120 rows``, for messages."""
    rows = sum(counts.values())
    tables = len(counts)
    return f"{tables} table{'s' if tables != 1 else ''}, {rows} row{'s' if rows != 1 else ''}"
