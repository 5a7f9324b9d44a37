"""The desk channel on a real Sanic server in the test's event loop, and an HTTP client.

Used by the desk unit tests and the attack tests (tests/security/). The desk
is built from credentials as Rasa builds it (``DeskInput.from_credentials``)
and only its wallet DB is swapped for a throwaway SQLite file, so the tests
exercise the code and configuration that production runs.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Dict, Optional, Tuple

import aiohttp
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from sanic import Sanic

from walletbot.desk.api import DeskInput
from walletbot.desk.service import DeskService
from walletbot.settings import PROJECT_ROOT
from walletbot.store.db import make_engine
from walletbot.store.service import WalletService

from tests.walletbot.channels.wechat.doubles import free_port

SECRET = "desk-test-session-key-0123456789abcdef"
AGENTS_FILE = PROJECT_ROOT / "config" / "agents.dev.yml"
PASSWORD = "dev-agent-password"


class FakeRasa:
    """What the relay uses of Rasa's ``Agent``: stores, trackers, and running an action."""

    def __init__(self) -> None:
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.lock_store = InMemoryLockStore()
        self.processor = self
        self.actions: list = []

    async def get_tracker(self, key: str) -> Any:
        return await self.tracker_store.get_or_create_tracker(key)

    async def save_tracker(self, tracker: Any) -> None:
        await self.tracker_store.save(tracker)

    async def execute_action(self, key: str, action: str, *_: Any) -> None:
        self.actions.append((key, action))


def wallet_service(folder: Path) -> WalletService:
    """A wallet DB of its own (SQLite file, demo data)."""
    url = f"sqlite:///{folder / f'wallet-{uuid.uuid4().hex[:6]}.db'}"
    return WalletService(engine_factory=lambda: make_engine(url), demo=True)


def make_desk(wallet: WalletService, **credentials: Any) -> DeskInput:
    """The desk as Rasa builds it from credentials.yml, on ``wallet``."""
    values: Dict[str, Any] = {"secret": SECRET, "agents_file": str(AGENTS_FILE), "session_hours": 8}
    values.update(credentials)
    channel = DeskInput.from_credentials(values)
    channel.desk = DeskService(wallet)
    return channel


@dataclass
class Served:
    """A running desk: ``base`` is ``http://127.0.0.1:<port>/webhooks/desk``."""

    base: str
    channel: DeskInput
    app: Sanic
    rasa: FakeRasa = field(default_factory=FakeRasa)


@contextlib.asynccontextmanager
async def serve_desk(channel: DeskInput, *, extra_routes: Any = None) -> AsyncIterator[Served]:
    """Runs ``channel`` at /webhooks/desk of a new Sanic app.

    ``extra_routes(app)`` may add routes to the same app (a channel's wallet lookup).
    """
    app = Sanic(f"desk_test_{uuid.uuid4().hex[:8]}")
    rasa = FakeRasa()
    app.ctx.agent = rasa
    app.ctx.input_channels = []

    async def on_new_message(_message: Any) -> None:
        return None

    app.blueprint(channel.blueprint(on_new_message), url_prefix="/webhooks/desk")
    if extra_routes is not None:
        extra_routes(app)
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True,
                                     access_log=False)
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield Served(f"http://127.0.0.1:{port}/webhooks/desk", channel, app, rasa)
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()


@contextlib.asynccontextmanager
async def client(source: Optional[str] = None) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client; ``source`` is the local address it connects from (e.g. 127.0.0.2)."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0) if source else None, limit=0,
                                     force_close=True)
    async with aiohttp.ClientSession(connector=connector,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def call(session: aiohttp.ClientSession, method: str, url: str, *, body: Any = None,
               token: Optional[str] = None, headers: Optional[Dict[str, str]] = None,
               form: Optional[Dict[str, str]] = None) -> Tuple[int, Any, Any]:
    """``(status, JSON or text, response headers)``; never follows redirects."""
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    kwargs: Dict[str, Any] = {"headers": all_headers, "allow_redirects": False}
    if body is not None:
        kwargs["data"] = json.dumps(body)
        all_headers.setdefault("Content-Type", "application/json")
    elif form is not None:
        kwargs["data"] = form
    async with session.request(method, url, **kwargs) as response:
        text = await response.text()
        try:
            payload: Any = json.loads(text)
        except ValueError:
            payload = text
        return response.status, payload, response.headers


async def login(session: aiohttp.ClientSession, base: str, name: str, password: str = PASSWORD,
                headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any, Any]:
    """A JSON login."""
    return await call(session, "POST", f"{base}/login", body={"login": name, "password": password},
                      headers=headers)


async def token_of(session: aiohttp.ClientSession, base: str, name: str) -> str:
    status, body, _ = await login(session, base, name)
    assert status == 200, body
    return body["token"]
