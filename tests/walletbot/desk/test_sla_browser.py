"""Service levels in Chromium: an overdue ticket is marked and first; a silent claim goes back."""

from datetime import timedelta

import sqlalchemy as sa
from rasa.shared.core.events import BotUttered

from tests.e2e.browser import browser  # noqa: F401
from tests.walletbot.desk.live import agent_page, live_desk
from walletbot.store import tickets as tq
from walletbot.store.schema import tickets, utcnow


def _backdate(conn, *, ticket_id, minutes):
    stamp = utcnow() - timedelta(minutes=minutes)
    conn.execute(sa.update(tickets).where(tickets.c.ticket_id == ticket_id)
                 .values(created_at=stamp, queued_at=stamp))


def _desk_messages(desk, ticket):
    tracker = desk.run(desk.served.rasa.tracker_store.retrieve(str(ticket.conversation)))
    return [(e.metadata["desk_notice"], e.text) for e in (tracker.events if tracker else [])
            if isinstance(e, BotUttered) and (e.metadata or {}).get("desk_notice")]


def test_sla_overdue_then_requeue(tmp_path, browser):  # noqa: F811
    # Seconds instead of minutes: a claim has 6 s for its first reply; ticks every 0.3 s.
    with live_desk(tmp_path, sla_reply_minutes=0.1, sla_tick_seconds=0.3) as desk:
        urgent, _ = desk.db(tq.open_ticket, channel="web", sender_id="sla-urgent",
                            category="account_compromised", priority=1, summary="账户被盗")
        late, _ = desk.db(tq.open_ticket, channel="web", sender_id="sla-late",
                          category="transaction", priority=3, summary="提现三天没到账")
        desk.db(_backdate, ticket_id=late.ticket_id, minutes=40)  # normal target: 30 minutes
        page = agent_page(browser, desk, "agent1")
        item = f"#tickets li[data-id='{late.ticket_id}']"

        page.wait_for_selector(f"{item}.sla-overdue")
        order = page.eval_on_selector_all("#tickets li", "els => els.map(e => e.dataset.id)")
        # The urgent ticket would lead the queue; the overdue normal one does.
        assert order == [str(late.ticket_id), str(urgent.ticket_id)]
        assert page.text_content(f"{item} .sla-label") == "已超时 10 分钟（已排队 40 分钟）"
        assert page.eval_on_selector(item, "e => getComputedStyle(e).backgroundColor") == \
            "rgb(255, 241, 240)"
        assert page.query_selector(f"#tickets li[data-id='{urgent.ticket_id}'].sla-overdue") is None
        events = [e.event for e in desk.db(tq.events_of, ticket_id=late.ticket_id)]
        assert events == ["opened", "overdue"]

        page.click(item)
        page.click("#claim")
        page.wait_for_selector("#d-meta:has-text('处理中')")
        page.wait_for_selector(f"{item} .sla-due:has-text('分钟内未回复将退回队列')")
        # No reply: within the 6 s (and a tick) the ticket goes back and the agent is told why.
        reason = f"工单 {late.number} 认领后 6 秒未回复，已退回队列"
        page.wait_for_selector(f"#sla-notices .sla-notice:has-text('{reason}')", timeout=20000)
        page.wait_for_selector("#d-meta:has-text('排队中')")
        page.wait_for_selector(f"#d-notice:has-text('{reason}')")
        page.wait_for_selector(f"{item}:not(.sla-overdue)")  # back in the queue: its clock restarted
        assert page.is_enabled("#claim")
        events = desk.db(tq.events_of, ticket_id=late.ticket_id)
        assert [e.event for e in events] == ["opened", "overdue", "claimed", "requeued"]
        assert (events[-1].actor, events[-1].target) == ("system", "agent1")
        back = desk.db(tq.get_ticket, ticket_id=late.ticket_id)
        assert (back.status, back.agent) == ("queued", None)

        said = _desk_messages(desk, late)
        assert [kind for kind, _ in said] == ["wait", "requeued"]
        assert said[0][1].startswith(f"抱歉让您久等了。您的工单 {late.number} 仍在排队中")
        assert said[1][1].startswith("抱歉，客服暂时未能回复您，已为您重新排队")

        page.click("#sla-notices .sla-notice-close")
        assert page.query_selector("#sla-notices .sla-notice") is None
        page.context.close()
