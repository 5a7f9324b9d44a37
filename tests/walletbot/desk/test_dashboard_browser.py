"""The supervisor dashboard in Chromium: its numbers are the scripted day's, exactly.

The day (tests/walletbot/desk/scripted_day.py) is written to a throwaway
tracker store and wallet DB; the live desk reads that tracker store through
its ``tracker_db_url`` credential. The page must show the hand-computed
figures in its cards, its SVG charts and its table, for 近 7 天 and 今日;
agent2, who is no supervisor, gets no link and a 403 on the page and the API.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.browser import browser  # noqa: F401
from tests.walletbot.desk.live import agent_page, live_desk
from tests.walletbot.desk.scripted_day import (
    TODAY, TODAY_BY_DAY, TODAY_UNANSWERED, WEEK, WEEK_BY_DAY, WEEK_UNANSWERED, write_day,
)
from tests.walletbot.desk.harness import wallet_service

# What the cards say: counts as they are, durations in Chinese, rates from the counts.
CARDS = {
    7: {"#fig-conversations": "11", "#fig-user-turns": "16", "#fig-containment": "45.5%",
        "#fig-contained": "5", "#fig-fallback-rate": "25.0%", "#fig-fallbacks": "4",
        "#fig-low-confidence": "2", "#fig-handoffs": "7", "#fig-queued": "1",
        "#fig-wait-avg": "6分40秒", "#fig-wait-p90": "20分钟", "#fig-wait-count": "6",
        "#fig-handling-avg": "15分钟", "#fig-handling-p90": "20分钟", "#fig-handling-count": "4",
        "#fig-csat-avg": "3.50 分", "#fig-csat-count": "4", "#fig-overdue": "1",
        "#fig-overdue-now": "1", "#fig-agents-online": "1 人",
        "#fig-agents-window": "近 1 分钟内在工作台"},
    1: {"#fig-conversations": "8", "#fig-user-turns": "13", "#fig-containment": "37.5%",
        "#fig-contained": "3", "#fig-fallback-rate": "23.1%", "#fig-fallbacks": "3",
        "#fig-low-confidence": "2", "#fig-handoffs": "5", "#fig-queued": "1",
        "#fig-wait-avg": "6分钟", "#fig-wait-p90": "20分钟", "#fig-wait-count": "5",
        "#fig-handling-avg": "13分20秒", "#fig-handling-p90": "20分钟", "#fig-handling-count": "3",
        "#fig-csat-avg": "3.67 分", "#fig-csat-count": "3", "#fig-overdue": "1",
        "#fig-overdue-now": "1", "#fig-agents-online": "1 人",
        "#fig-agents-window": "近 1 分钟内在工作台"},
}
FIGURES = {7: (WEEK, WEEK_BY_DAY, WEEK_UNANSWERED), 1: (TODAY, TODAY_BY_DAY, TODAY_UNANSWERED)}


@pytest.fixture(autouse=True)
def settings(monkeypatch):
    monkeypatch.setenv("HANDOFF_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("DESK_AUTO_ASSIGN", "false")


def values(page, selector):
    return [int(v) for v in page.eval_on_selector_all(
        selector, "nodes => nodes.map(n => n.getAttribute('data-value'))")]


def check_page(page, days):
    page.wait_for_selector(f"body[data-loaded-days='{days}']")
    for selector, text in CARDS[days].items():
        assert page.inner_text(selector).strip() == text, selector
    figures, by_day, unanswered = FIGURES[days]
    assert values(page, "#chart-days rect.bar[data-value]") == [
        n for d in by_day for n in (d["conversations"], d["handoffs"])]
    assert values(page, "#chart-reasons rect.bar[data-value]") == [
        r["count"] for r in figures["handoffs"]["by_reason"]]
    labels = page.eval_on_selector_all("#chart-reasons text.label", "ns => ns.map(n => n.textContent)")
    assert labels == [r["label"] for r in figures["handoffs"]["by_reason"]]
    assert values(page, "#chart-csat rect.bar[data-value]") == [
        figures["csat"]["distribution"][s] for s in "12345"]
    assert values(page, "#chart-agents rect.bar[data-value]") == [1, 1]
    agents = page.eval_on_selector_all("#chart-agents text", "ns => ns.map(n => n.textContent)")
    assert agents == ["小王（在线）", "1 / 5 张", "小李（离线）", "1 / 5 张"]
    rows = page.eval_on_selector_all(
        "#unanswered tr",
        "rows => rows.map(r => [r.querySelector('.question div').textContent,"
        " Number(r.querySelector('.count').textContent)])")
    assert [tuple(r) for r in rows] == unanswered
    assert page.get_attribute("#review-link", "href") == f"api/dashboard/review.csv?days={days}"


def test_the_dashboard_shows_the_scripted_day_exactly(tmp_path, browser):  # noqa: F811
    wallet = wallet_service(tmp_path)
    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        day = pool.submit(write_day, tmp_path, wallet, asyncio.run).result()
    with live_desk(tmp_path, wallet=wallet, tracker_db_url=day.tracker_url) as desk:
        page = agent_page(browser, desk, "agent1")
        problems = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        link = page.wait_for_selector("#slot-header #dashboard-link")
        assert link.inner_text() == "主管看板"
        link.click()
        page.wait_for_url(f"{desk.base}/dashboard")
        check_page(page, 7)
        assert "客服：" not in page.inner_text("header") and "小王" in page.inner_text("#me")
        page.click("#range-1")
        check_page(page, 1)
        page.click("#range-7")
        check_page(page, 7)
        # No inline script or style, no CDN: the CSP would have said so in the console.
        assert problems == []
        page.context.close()

        # Last: agent2's requests make agent2 "seen" (online).
        other = agent_page(browser, desk, "agent2")
        assert other.locator("#dashboard-link").count() == 0
        response = other.goto(f"{desk.base}/dashboard")
        assert response.status == 403
        assert "只有主管" in other.inner_text("#denied")
        api = other.request.get(f"{desk.base}/api/dashboard?days=7")
        assert api.status == 403 and api.json()["error"].startswith("只有主管")
        other.context.close()
