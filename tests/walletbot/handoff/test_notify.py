"""The new-ticket webhook: retried, never raising, never blocking the caller."""

import asyncio
from datetime import datetime, timezone

import aiohttp
import pytest
from aiohttp import web

from walletbot.handoff.notify import TicketNotifier, wecom_text
from walletbot.store.rows import Ticket

NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)
TICKET = Ticket(ticket_id=7, channel="web", sender_id="s", user_id=None,
                category="account_compromised", priority=1, status="queued", agent=None,
                summary="账户被盗了", transcript=(), created_at=NOW, updated_at=NOW,
                resolved_at=None)


def test_wecom_message():
    payload = wecom_text(TICKET)
    assert payload["msgtype"] == "text"
    content = payload["text"]["content"]
    assert "T000007" in content and "紧急" in content and "账户被盗了" in content


@pytest.fixture
async def flaky_server():
    """A webhook that fails twice with 502, then accepts."""
    received = []

    async def hook(request):
        received.append(await request.json())
        return web.Response(status=502 if len(received) <= 2 else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/hook", received
    await runner.cleanup()


async def test_retries_until_delivered(flaky_server):
    url, received = flaky_server
    notifier = TicketNotifier(url, delays=(0.01, 0.01, 0.01))
    task = notifier.notify(TICKET)
    assert not task.done()  # the caller goes on at once
    assert await task is True
    assert len(received) == 3 and "T000007" in received[-1]["text"]["content"]


async def test_gives_up_quietly_when_nobody_listens():
    notifier = TicketNotifier("http://127.0.0.1:9/unreachable", delays=(0.01,))
    assert await notifier.notify(TICKET) is False


def test_no_url_no_task():
    assert TicketNotifier(None).notify(TICKET) is None
