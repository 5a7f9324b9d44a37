"""New-ticket notifications in Chromium with notification permission granted.

``window.Notification`` is wrapped (the real one is still called) to record
what the desk shows, and WebAudio's ``createOscillator`` to count the beeps.
"""

from __future__ import annotations

import time

from tests.e2e.browser import browser  # noqa: F401
from tests.walletbot.desk.live import agent_page, live_desk
from walletbot.store import tickets as tq

RECORDER = """
(() => {
  const Real = window.Notification;
  window.__notes = [];
  window.__shown = [];
  function Recorded(title, options) {
    const note = new Real(title, options);
    window.__notes.push({ title: title, body: (options || {}).body, tag: (options || {}).tag });
    window.__shown.push(note);
    return note;
  }
  Recorded.prototype = Real.prototype;
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
  window.__beeps = 0;
  const create = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function () { window.__beeps += 1; return create.call(this); };
})();
"""
PLAIN_TITLE = "OK钱包 客服工作台"


def until(check, timeout: float = 10):
    """Polls ``check()`` from Python (the desk's CSP refuses Playwright's eval'd predicates)."""
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def notes(page):
    return page.evaluate("window.__notes")


def open_ticket(desk, sender, category="request_human", priority=3):
    ticket, _ = desk.db(tq.open_ticket, channel="web", sender_id=sender, category=category,
                        priority=priority, summary="我要人工")
    return ticket


def seen_in_queue(page, ticket):
    page.wait_for_selector(f"#tickets li[data-id='{ticket.ticket_id}']")


def polls(page, n: int = 2):
    """Waits for ``n`` more queue polls (the desk polls every 2 s)."""
    page.wait_for_timeout(2100 * n)


def test_a_new_ticket_notifies_once_counts_in_the_title_and_the_switch_is_remembered(
        tmp_path, browser):  # noqa: F811
    with live_desk(tmp_path) as desk:
        waiting = open_ticket(desk, "early")
        page = agent_page(browser, desk, "agent1", permissions=["notifications"])
        page.add_init_script(RECORDER)
        page.reload()
        page.wait_for_selector("#notify-toggle:has-text('新工单提醒：关')")
        seen_in_queue(page, waiting)
        assert page.evaluate("Notification.permission") == "granted"

        # Off (the default): the title counts, nothing pops up.
        until(lambda: page.title() == "(1) 客服工作台 · OK钱包")
        page.click("#notify-toggle")
        page.wait_for_selector("#notify-toggle:has-text('新工单提醒：开')")
        polls(page)
        assert notes(page) == []  # what was there at load is not news

        fresh = open_ticket(desk, "fresh", category="account_compromised", priority=1)
        until(lambda: len(notes(page)) == 1)
        assert notes(page) == [{"title": f"新的待处理工单 {fresh.number}",
                                "body": "账户安全 · 紧急优先级", "tag": f"desk-ticket-{fresh.ticket_id}"}]
        assert page.evaluate("window.__beeps") == 1
        until(lambda: page.title() == "(2) 客服工作台 · OK钱包")
        polls(page)
        assert len(notes(page)) == 1 and page.evaluate("window.__beeps") == 1  # once, not per poll

        # Clicking the notification opens its ticket.
        page.evaluate("window.__shown[0].onclick()")
        page.wait_for_selector(f"#d-number:has-text('{fresh.number}')")

        # Switched off: no more notifications or beeps, but the title still counts.
        page.click("#notify-toggle")
        page.wait_for_selector("#notify-toggle:has-text('新工单提醒：关')")
        quiet = open_ticket(desk, "quiet")
        seen_in_queue(page, quiet)
        until(lambda: page.title() == "(3) 客服工作台 · OK钱包")
        polls(page)
        assert len(notes(page)) == 1 and page.evaluate("window.__beeps") == 1

        # Off survives a reload; so does on, which needs no new click to notify.
        page.reload()
        page.wait_for_selector("#notify-toggle:has-text('新工单提醒：关')")
        page.click("#notify-toggle")
        page.reload()
        page.wait_for_selector("#notify-toggle:has-text('新工单提醒：开')")
        seen_in_queue(page, quiet)
        polls(page, 1)
        assert notes(page) == []  # after a reload, the queue is learnt again first
        later = open_ticket(desk, "later")
        until(lambda: [n["title"] for n in notes(page)] == [f"新的待处理工单 {later.number}"])
        assert page.evaluate("localStorage.getItem('desk.notify.agent1')") == "on"

        # Claimed tickets leave the queue: the title goes back to plain.
        for ticket in (waiting, fresh, quiet, later):
            assert desk.db(tq.claim_ticket, ticket_id=ticket.ticket_id, agent="agent2")
        until(lambda: page.title() == PLAIN_TITLE)


def test_the_switch_is_per_agent_and_asks_permission_only_on_a_click(tmp_path, browser):  # noqa: F811
    with live_desk(tmp_path) as desk:
        page = agent_page(browser, desk, "agent2")
        # Headless Chromium answers "denied" without asking; this stands in for a browser
        # that has not asked yet and whose user then says no.
        page.add_init_script("""
          window.__asked = 0;
          window.__permission = "default";
          Object.defineProperty(Notification, "permission", { get: () => window.__permission });
          Notification.requestPermission = () => {
            window.__asked += 1;
            window.__permission = "denied";
            return Promise.resolve("denied");
          };
        """)
        page.reload()
        page.wait_for_selector("#notify-toggle:has-text('新工单提醒：关')")
        polls(page, 1)
        assert page.evaluate("window.__asked") == 0  # never on its own
        page.click("#notify-toggle")
        page.wait_for_selector("#notify-toggle:has-text('新工单提醒：开')")
        until(lambda: page.evaluate("window.__asked") == 1)
        until(lambda: "浏览器未允许通知" in (page.get_attribute("#notify-toggle", "title") or ""))
        assert page.evaluate("localStorage.getItem('desk.notify.agent2')") == "on"
        assert page.evaluate("localStorage.getItem('desk.notify.agent1')") is None
        page.click("#notify-toggle")
        page.click("#notify-toggle")
        assert page.evaluate("window.__asked") == 1  # asked once: the browser remembers the answer
