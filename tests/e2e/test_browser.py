"""The web chat page and the agent desk in a real browser (Debian's chromium)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from contextlib import contextmanager

import pytest

from tests.e2e.browser import browser  # noqa: F401  (fixture)
from tests.e2e.conftest import start_bot
from tests.e2e.desk_client import request
from walletbot.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
TIMEOUT = 30_000


@pytest.fixture(scope="module")
def bot(trained_model, tmp_path_factory):
    running = start_bot(trained_model, tmp_path_factory.mktemp("browser"), dict(os.environ),
                        15405, 15455)
    yield running
    running.stop(signal.SIGKILL)


def bot_says(page, text):
    page.locator(".msg.bot", has_text=text).last.wait_for(timeout=TIMEOUT)


def connected(page):
    # The page's CSP forbids eval, so no wait_for_function: wait on the DOM.
    page.locator("#status", has_text="已连接").wait_for(timeout=TIMEOUT)


def ask(page, text):
    page.fill("#input", text)
    page.click("#send")


def test_chat_page_faq_login_lookup_handoff_and_desk(bot, browser):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    user_ctx = browser.new_context(viewport={"width": 390, "height": 760}, locale="zh-CN")
    chat = user_ctx.new_page()
    chat.goto(f"{bot.base}/webhooks/web/chat")
    connected(chat)

    # Anonymous FAQ.
    ask(chat, "怎么提现")
    bot_says(chat, "提现步骤如下")
    assert "银行卡" in chat.locator(".msg.bot").last.inner_text()

    # Demo login as 张三 and a lookup of his own order.
    chat.click("#login-zhangsan")
    chat.locator("#who", has_text="张三").wait_for(timeout=TIMEOUT)
    connected(chat)
    ask(chat, "帮我查一下WD202611180002")
    bot_says(chat, "1000.00元")
    chat.screenshot(path=str(ARTIFACTS / "chat_lookup.png"), full_page=True)

    # The session survives a reload.
    chat.reload()
    chat.locator(".msg.bot", has_text="1000.00元").first.wait_for(timeout=TIMEOUT)
    connected(chat)

    # Escalate; the page shows the queue state.
    ask(chat, "转人工")
    bot_says(chat, "工单号")
    number = chat.locator(".msg.bot", has_text="工单号").last.inner_text().split("工单号 ")[1][:7]

    # An agent logs in, sees the ticket, claims it and replies.
    desk_ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    desk = desk_ctx.new_page()
    desk.goto(f"{bot.base}/webhooks/desk/")
    desk.fill("#login", "agent1")
    desk.fill("#password", "dev-agent-password")
    desk.click("#login-submit")
    desk.locator("#me", has_text="小王").wait_for(timeout=TIMEOUT)
    item = desk.locator("#tickets li", has_text=number)
    item.wait_for(timeout=TIMEOUT)  # appears without a reload (polling)
    item.click()
    desk.locator("#transcript .line.user", has_text="转人工").wait_for(timeout=TIMEOUT)
    desk.click("#claim")
    desk.locator("#d-meta", has_text="处理中").wait_for(timeout=TIMEOUT)

    chat.locator(".msg.agent", has_text="人工客服小王").wait_for(timeout=TIMEOUT)
    chat.locator("#banner", has_text="已接入").wait_for(timeout=TIMEOUT)

    # The user writes; the agent sees it live.
    ask(chat, "我的提现三天了还没到")
    desk.locator("#transcript .line.user", has_text="三天了还没到").wait_for(timeout=TIMEOUT)

    # Agent input is shown as text, never run as HTML.
    reply = "<img src=x onerror=alert(1)>已为您加急处理"
    desk.fill("#reply", reply)
    desk.click("#send")
    agent_msg = chat.locator(".msg.agent", has_text="已为您加急处理")
    agent_msg.wait_for(timeout=TIMEOUT)
    assert reply in agent_msg.inner_text()
    assert chat.locator(".msg.agent img").count() == 0
    desk.locator("#transcript .line.agent", has_text="已为您加急处理").wait_for(timeout=TIMEOUT)
    desk.screenshot(path=str(ARTIFACTS / "desk.png"), full_page=True)

    # Resolve: the bot speaks again and asks for a score, shown as chips.
    desk.click("#resolve")
    bot_says(chat, "人工服务已结束")
    chat.locator(".chip", has_text="5分").click()
    bot_says(chat, "感谢您的评价")
    assert chat.locator("#banner").is_hidden()
    chat.screenshot(path=str(ARTIFACTS / "chat_after_handoff.png"), full_page=True)
    desk.locator("#d-meta", has_text="满意度 5 分").wait_for(timeout=TIMEOUT)
    user_ctx.close()
    desk_ctx.close()


def stored_session(context):
    """The page's session as kept in localStorage (read without running script in the page)."""
    for origin in context.storage_state()["origins"]:
        for item in origin["localStorage"]:
            if item["name"] == "walletbot.web.session":
                return json.loads(item["value"])
    return None


def test_chat_page_connects_its_websocket_under_its_csp_and_logs_out(bot, browser):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 390, "height": 760}, locale="zh-CN")
    chat = context.new_page()
    sockets, frames, violations = [], [], []

    def watch(ws):
        sockets.append(ws.url)
        ws.on("framereceived", lambda payload: frames.append((ws.url, payload)))

    chat.on("websocket", watch)
    chat.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    chat.goto(f"{bot.base}/webhooks/web/chat")
    connected(chat)

    # connect-src 'self' alone still lets the page open its same-origin WebSocket.
    ask(chat, "怎么提现")
    bot_says(chat, "提现步骤如下")
    same_origin = f"ws://127.0.0.1:{bot.rasa_port}/webhooks/web/socket.io/"
    assert any(u.startswith(same_origin) and "transport=websocket" in u for u in sockets), sockets
    # The answer came over that WebSocket (not a long-polling fallback).
    events = [json.loads(payload[2:]) for url, payload in frames
              if url.startswith(same_origin) and isinstance(payload, str) and payload.startswith("42")]
    assert any(e[0] == "bot_uttered" and "提现步骤如下" in (e[1].get("text") or "")
               for e in events), events[-3:]
    assert not violations, violations

    # Log in, then out with the page's own control.
    chat.click("#login-lisi")
    chat.locator("#who", has_text="李四").wait_for(timeout=TIMEOUT)
    connected(chat)
    logged_in = stored_session(context)
    assert logged_in["user"]["name"] == "李四"
    logout = chat.locator("#logout")
    assert logout.inner_text() == "退出登录" and logout.is_visible()
    logout.click()
    chat.locator(".msg.system", has_text="您已退出登录").wait_for(timeout=TIMEOUT)
    chat.locator("#who", has_text="未登录").wait_for(timeout=TIMEOUT)
    connected(chat)
    assert logout.is_hidden()
    # The old token is dead on the server, not just forgotten by the page.
    assert request(f"{bot.base}/webhooks/web/history", token=logged_in["token"])[0] == 401
    fresh = stored_session(context)
    assert fresh["user"] is None and fresh["token"] != logged_in["token"]
    assert request(f"{bot.base}/webhooks/web/history", token=fresh["token"])[0] == 200
    ask(chat, "怎么提现")
    bot_says(chat, "提现步骤如下")
    assert not violations, violations
    chat.screenshot(path=str(ARTIFACTS / "chat_logged_out.png"), full_page=True)
    context.close()


@contextmanager
def channel_in_a_thread(**options):
    """The web channel alone (a scripted echo bot, no model) on a Sanic server in a thread."""
    from sanic import Sanic

    from tests.security.test_web_sessions import make_channel, serve

    Sanic.test_mode = True
    loop = asyncio.new_event_loop()
    ready, box = threading.Event(), {}

    async def main():
        box["stop"] = asyncio.Event()
        async with serve(make_channel(**options)) as served:
            box["served"] = served
            ready.set()
            await box["stop"].wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(30), "the channel did not start"
    try:
        yield box["served"], loop
    finally:
        loop.call_soon_threadsafe(box["stop"].set)
        thread.join(30)


def test_chat_page_comes_back_after_idling_and_moves_on_when_an_agent_ends_it(browser):  # noqa: F811
    from walletbot.channels.web.sessions import end_web_session

    with channel_in_a_thread(idle_timeout=2.0, sweep_interval=0.3) as (served, loop):
        context = browser.new_context(viewport={"width": 390, "height": 760}, locale="zh-CN")
        chat = context.new_page()
        chat.goto(f"{served.web}/chat")
        connected(chat)
        ask(chat, "你好")
        bot_says(chat, "echo:你好")

        # Nothing said for a while: the server closes the socket, the page says so ...
        chat.locator("#status", has_text="长时间未操作").wait_for(timeout=TIMEOUT)
        # ... and the next message reconnects and goes through.
        ask(chat, "还在吗")
        bot_says(chat, "echo:还在吗")
        connected(chat)
        assert chat.locator(".msg.user", has_text="还在吗").count() == 1

        # An agent ends the session: the page is told, and carries on anonymously.
        session = stored_session(context)
        ended = asyncio.run_coroutine_threadsafe(
            end_web_session(served.app, jwt_sub(session["token"])), loop)
        assert ended.result(10)["sockets"] == 1
        chat.locator(".msg.system", has_text="本次会话已结束").wait_for(timeout=TIMEOUT)
        connected(chat)
        assert stored_session(context)["token"] != session["token"]
        ask(chat, "你好")
        bot_says(chat, "echo:你好")
        context.close()


def jwt_sub(token):
    import jwt

    return jwt.decode(token, options={"verify_signature": False})["sub"]
