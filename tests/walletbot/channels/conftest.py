"""Fixtures for the WeChat channel tests (doubles in ``wechat_doubles``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import AsyncIterator, Iterator, Optional

import pytest
from sanic import Sanic

from walletbot.channels.wechat import WeChatInput

from .wechat_doubles import (
    AES_KEY,
    FakeBot,
    FakeWeChatApi,
    WeChatServer,
    free_port,
    make_channel,
    serve_channel,
)


@pytest.fixture(autouse=True)
def _sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Sanic, "test_mode", True)


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeWeChatApi]:
    api = await FakeWeChatApi().start()
    yield api
    await api.stop()


@pytest.fixture
def bot() -> FakeBot:
    return FakeBot()


@dataclass
class Harness:
    channel: WeChatInput
    bot: FakeBot
    api: FakeWeChatApi
    wechat: WeChatServer


@pytest.fixture(params=["plaintext", "safe"])
async def harness(request: pytest.FixtureRequest, fake_api: FakeWeChatApi, bot: FakeBot) -> AsyncIterator[Harness]:
    """The channel on a Sanic server, in plaintext and in safe mode."""
    aes_key = AES_KEY if request.param == "safe" else None
    channel = make_channel(fake_api, aes_key)
    async with serve_channel(channel, bot) as base:
        yield Harness(channel, bot, fake_api, WeChatServer(base, aes_key=aes_key))


@pytest.fixture
async def safe(fake_api: FakeWeChatApi, bot: FakeBot) -> AsyncIterator[Harness]:
    """The channel in safe mode."""
    channel = make_channel(fake_api, AES_KEY)
    async with serve_channel(channel, bot) as base:
        yield Harness(channel, bot, fake_api, WeChatServer(base, aes_key=AES_KEY))


@pytest.fixture
async def plain(fake_api: FakeWeChatApi, bot: FakeBot) -> AsyncIterator[Harness]:
    """The channel in plaintext mode."""
    channel = make_channel(fake_api)
    async with serve_channel(channel, bot) as base:
        yield Harness(channel, bot, fake_api, WeChatServer(base))


# --- a throwaway Redis server -------------------------------------------


def find_redis_server() -> Optional[str]:
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.exists(p)), None
    )


@pytest.fixture(scope="session")
def redis_server_binary() -> str:
    """Path of ``redis-server``; skips without it, or fails when ``CI=true``."""
    binary = find_redis_server()
    if binary is None:
        message = "redis-server not found: apt-get install redis-server"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
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
