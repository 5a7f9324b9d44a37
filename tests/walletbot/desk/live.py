"""The desk served from a background thread, for browser tests (Chromium via Playwright).

Playwright's sync API blocks the test's thread, so the desk (the same
:func:`~tests.walletbot.desk.harness.serve_desk` the API tests use, on a
throwaway SQLite wallet DB with the demo data) runs in an event loop of its
own thread. ``LiveDesk.run(coro)`` runs a coroutine in that loop (to open
tickets, or to play the user's side through the fake Rasa)::

    with live_desk(tmp_path) as desk:
        page = agent_page(browser, desk, "agent1")
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, Optional, TypeVar

from tests.walletbot.desk.harness import PASSWORD, Served, make_desk, serve_desk, wallet_service
from walletbot.store.service import WalletService

T = TypeVar("T")


@dataclass
class LiveDesk:
    """A running desk: ``base`` ends in ``/webhooks/desk``."""

    served: Served
    wallet: WalletService
    loop: asyncio.AbstractEventLoop

    @property
    def base(self) -> str:
        return self.served.base

    def run(self, coro: Awaitable[T], timeout: float = 30) -> T:
        """Runs ``coro`` in the desk's event loop and returns its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def db(self, fn: Callable[..., T], **kwargs: Any) -> T:
        """Runs a store query (``fn(conn=..., **kwargs)``) in one transaction."""
        return self.run(self.wallet.run(fn, **kwargs))


@contextlib.contextmanager
def live_desk(folder: Path, *, wallet: Optional[WalletService] = None,
              **credentials: Any) -> Iterator[LiveDesk]:
    """Serves the desk (``credentials`` as in credentials.yml) until the block ends."""
    wallet = wallet or wallet_service(folder)
    loop = asyncio.new_event_loop()
    ready: "Future[Served]" = Future()
    stop = asyncio.Event()

    async def main() -> None:
        try:
            async with serve_desk(make_desk(wallet, **credentials)) as served:
                ready.set_result(served)
                await stop.wait()
        except BaseException as error:  # noqa: BLE001 - reported to the test's thread
            if not ready.done():
                ready.set_exception(error)
            raise

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    served = ready.result(60)
    try:
        yield LiveDesk(served, wallet, loop)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)


def agent_page(browser: Any, desk: LiveDesk, login: str, *, password: str = PASSWORD,
               permissions: Optional[list] = None) -> Any:
    """A new browser context logged in to the desk as ``login``; returns the console page."""
    context = browser.new_context(locale="zh-CN", permissions=permissions or [],
                                  viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{desk.base}/login")
    page.fill("#login", login)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_selector("#me:has-text('客服')")
    return page
