"""Fixtures for the WeChat channel tests (doubles in ``wechat_doubles``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator

import pytest
from sanic import Sanic

from walletbot.channels.wechat import WeChatInput

from tests.walletbot.channels.wechat.doubles import (
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
