"""Canned replies in the console (Chromium): "/" opens the picker, Enter inserts, a send reaches the user."""

from __future__ import annotations

import time

from rasa.shared.core.events import BotUttered

from tests.e2e.browser import browser  # noqa: F401
from tests.walletbot.desk.live import LiveDesk, agent_page, live_desk
from walletbot.desk.relay import JOINED_TEXT
from walletbot.store import tickets as tq


def agent_lines(desk: LiveDesk, key: str):
    """What agents said in the conversation: the texts the relay stored for the user."""
    tracker = desk.run(desk.served.rasa.get_tracker(key))
    return [e.text for e in tracker.events
            if isinstance(e, BotUttered) and (e.metadata or {}).get("agent")]


def until(check, timeout: float = 10):
    """Polls ``check()`` from Python (the desk's CSP refuses Playwright's eval'd predicates)."""
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def count(page) -> int:
    return page.locator("#canned-list li").count()


def shortcuts(page):
    return page.eval_on_selector_all("#canned-list li", "items => items.map(i => i.dataset.shortcut)")


def claimed_page(browser, desk, ticket):  # noqa: F811
    page = agent_page(browser, desk, "agent1")
    page.click(f"#tickets li[data-id='{ticket.ticket_id}']")
    page.wait_for_selector("#canned-open:disabled")  # not the agent's ticket yet
    page.click("#claim")
    page.wait_for_selector("#reply:enabled")
    page.wait_for_selector("#canned-open:enabled")
    return page


def test_slash_picks_a_filled_reply_and_enter_does_not_send_it(tmp_path, browser):  # noqa: F811
    with live_desk(tmp_path) as desk:
        ticket, _ = desk.db(tq.open_ticket, channel="web", sender_id="zhangsan",
                            category="request_human", priority=3, user_id="U1001", summary="我要人工")
        key = str(ticket.conversation)
        page = claimed_page(browser, desk, ticket)
        expected = (f"张三您好，我是人工客服小王，很高兴为您服务。您本次的工单号是{ticket.number}，"
                    "请问有什么可以帮您？")

        page.focus("#reply")
        page.keyboard.type("/")
        page.wait_for_selector("#canned-picker:visible")
        until(lambda: count(page) >= 10)
        assert page.is_hidden("#canned-filter")  # the reply box is the filter
        page.keyboard.type("h")
        until(lambda: count(page) == 2)
        assert shortcuts(page) == ["hi", "hours"]
        page.keyboard.press("ArrowDown")
        assert page.get_attribute("#canned-list li:nth-child(2)", "aria-selected") == "true"
        page.keyboard.press("ArrowUp")
        page.keyboard.press("Enter")

        assert page.is_hidden("#canned-picker")
        assert page.input_value("#reply") == expected  # the "/h" is replaced
        time.sleep(0.8)  # a send would have reached the tracker by now
        assert agent_lines(desk, key) == [JOINED_TEXT.format(name="小王")]

        page.keyboard.press("Enter")  # the picker is closed: Enter sends
        until(lambda: page.input_value("#reply") == "")
        until(lambda: len(agent_lines(desk, key)) >= 2)
        assert agent_lines(desk, key) == [JOINED_TEXT.format(name="小王"), expected]
        page.wait_for_selector(f"#transcript .line.agent:has-text('工单号是{ticket.number}')")


def test_the_filter_matches_titles_and_tags_and_esc_closes(tmp_path, browser):  # noqa: F811
    with live_desk(tmp_path) as desk:
        ticket, _ = desk.db(tq.open_ticket, channel="web", sender_id="zhangsan",
                            category="account_compromised", priority=1, user_id="U1001")
        page = claimed_page(browser, desk, ticket)

        page.focus("#reply")
        page.keyboard.type("/冻结")  # a tag, typed in Chinese
        until(lambda: count(page) == 1)
        assert shortcuts(page) == ["frozen"]
        page.keyboard.press("Escape")
        assert page.is_hidden("#canned-picker")
        page.keyboard.type("x")  # dismissed: stays closed while the box starts with "/"
        assert page.is_hidden("#canned-picker")
        assert page.input_value("#reply") == "/冻结x"
        page.fill("#reply", "")
        page.keyboard.type("/zzz")
        page.wait_for_selector("#canned-picker:visible")
        page.wait_for_selector(".canned-empty:has-text('没有匹配“zzz”的快捷回复')")
        page.keyboard.press("Space")  # "/zzz " is a message, not a query
        assert page.is_hidden("#canned-picker")

        # The button: its own filter, and the reply goes in at the caret.
        page.fill("#reply", "好的。")
        page.click("#canned-open")
        page.wait_for_selector("#canned-filter:focus")
        page.keyboard.type("安全")
        until(lambda: count(page) >= 2)
        assert shortcuts(page)[:2] == ["frozen", "safe"]
        page.click("#canned-list li[data-shortcut='frozen']")
        assert page.is_hidden("#canned-picker")
        value = page.input_value("#reply")
        assert value.startswith("好的。尊敬的张三，为保护您的资金安全") and "{" not in value
        assert page.evaluate("document.activeElement.id") == "reply"


def test_a_reply_with_an_unset_fact_warns_the_agent(tmp_path, browser):  # noqa: F811
    with live_desk(tmp_path) as desk:
        ticket, _ = desk.db(tq.open_ticket, channel="web", sender_id="anon-9",
                            category="fallback", priority=3)
        page = claimed_page(browser, desk, ticket)
        page.focus("#reply")
        page.keyboard.type("/fee")
        page.wait_for_selector("#canned-list li[data-shortcut='fee'] .canned-warn")
        page.keyboard.press("Enter")
        assert "【待配置：提现手续费标准】" in page.input_value("#reply")
        page.wait_for_selector("#d-notice:has-text('请替换为实际信息后再发送')")
