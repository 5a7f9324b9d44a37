"""The web chat page and the agent desk in a real browser (Debian's chromium)."""

from __future__ import annotations

import os
import signal

import pytest

from tests.e2e.browser import browser  # noqa: F401  (fixture)
from tests.e2e.conftest import start_bot
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
