"""The desk console in Chromium on a live desk (tests/walletbot/desk/live.py)."""

from tests.e2e.browser import browser  # noqa: F401
from tests.walletbot.desk.live import agent_page, live_desk
from walletbot.store import tickets as tq

def test_live_desk_shows_a_ticket_in_chromium(tmp_path, browser):  # noqa: F811
    with live_desk(tmp_path) as desk:
        ticket, _ = desk.db(tq.open_ticket, channel="web", sender_id="s1", category="request_human", priority=3, summary="我要人工")
        page = agent_page(browser, desk, "agent1")
        page.wait_for_selector(f"#tickets li[data-id='{ticket.ticket_id}']")
        page.click(f"#tickets li[data-id='{ticket.ticket_id}']")
        page.click("#claim")
        page.wait_for_selector("#d-meta:has-text('处理中')")
        events = desk.db(tq.events_of, ticket_id=ticket.ticket_id)
        assert [e.event for e in events] == ["opened", "claimed"]
