"""The agents' tools in Chromium on a live desk: transfer, an internal note, unfreeze."""

from __future__ import annotations

import json

import pytest

from tests.e2e.browser import browser  # noqa: F401
from tests.walletbot.desk.live import agent_page, live_desk
from tests.walletbot.desk.test_tools import Recorder, WebInput
from walletbot.store import audit as audit_queries
from walletbot.store import desk_tools
from walletbot.store import queries
from walletbot.store import tickets as tq


@pytest.fixture(autouse=True)
def settings_env(monkeypatch):
    monkeypatch.setenv("DESK_UNFREEZE_VERIFICATIONS", "call_back:回拨预留电话核验,video:视频核验")
    monkeypatch.setenv("DESK_AUTO_ASSIGN", "false")


def open_ticket(desk, sender, **kwargs):
    ticket, _ = desk.db(tq.open_ticket, channel="web", sender_id=sender, category="request_human",
                        priority=kwargs.pop("priority", 3), summary="我要人工", **kwargs)
    return ticket


def tracker_events(desk, ticket):
    async def read():
        tracker = await desk.served.rasa.tracker_store.retrieve(str(ticket.conversation))
        return [] if tracker is None else [e.as_dict() for e in tracker.events]

    return desk.run(read())


def bot_texts(desk, ticket):
    return [e.get("text") for e in tracker_events(desk, ticket) if e["event"] == "bot"]


def open_in(page, ticket):
    page.wait_for_selector(f"#tickets li[data-id='{ticket.ticket_id}']")
    page.click(f"#tickets li[data-id='{ticket.ticket_id}']")
    page.wait_for_selector(f"#d-number:has-text('{ticket.number}')")


def claim(page, ticket):
    open_in(page, ticket)
    page.click("#claim")
    page.wait_for_selector("#d-meta:has-text('处理中')")


def test_agent1_transfers_to_agent2_who_sees_the_reason(tmp_path, browser):  # noqa: F811
    with live_desk(tmp_path) as desk:
        recorder = Recorder()
        desk.served.app.ctx.input_channels = [WebInput(recorder)]
        ticket = open_ticket(desk, "transfer-user")
        second = agent_page(browser, desk, "agent2")
        # agent2 pauses taking tickets: it can still be handed one, and the picker says so.
        second.wait_for_selector("#availability-state:has-text('接单中')")
        second.click("#availability")
        second.wait_for_selector("#availability-state:has-text('已暂停接单')")
        first = agent_page(browser, desk, "agent1")
        claim(first, ticket)
        first.click("#transfer")
        first.wait_for_selector("#transfer-form:visible")
        labels = first.locator("#transfer-to option").all_inner_texts()
        assert labels[0] == "退回队列" and any("小李（agent2）· 0/5 · 暂停接单" == l for l in labels)
        assert not any("agent1" in label for label in labels)  # not to the holder
        first.select_option("#transfer-to", "agent2")
        first.click("#transfer-submit")  # no reason yet: refused, in Chinese
        first.wait_for_selector("#d-notice:has-text('请填写转接原因')")
        first.fill("#transfer-reason", "用户问退款进度，小李负责退款")
        first.click("#transfer-submit")
        first.wait_for_selector("#d-notice:has-text('工单已转接')")
        first.wait_for_selector("#d-meta:has-text('处理中（agent2）')")
        # agent1 may no longer reply; as a supervisor it may still move the ticket.
        assert first.is_disabled("#reply") and not first.is_disabled("#transfer")

        open_in(second, ticket)
        second.wait_for_selector("#handover:has-text('由 小王 转来：用户问退款进度，小李负责退款')")
        assert not second.is_disabled("#reply") and not second.is_disabled("#transfer")
        # The user was told, in the conversation and on their channel.
        assert "已为您转接客服 小李，请稍候。" in bot_texts(desk, ticket)
        assert any(isinstance(m, dict) and m.get("text") == "已为您转接客服 小李，请稍候。"
                   for _, m in recorder.sent)
        current = desk.db(tq.get_ticket, ticket_id=ticket.ticket_id)
        assert (current.status, current.agent) == ("assigned", "agent2")
        event = desk.db(tq.events_of, ticket_id=ticket.ticket_id)[-1]
        assert (event.event, event.actor, event.target) == ("transferred", "agent1", "agent2")
        assert not desk.db(desk_tools.presence_of)["agent2"].available


def test_an_internal_note_never_reaches_the_user(tmp_path, browser):  # noqa: F811
    secret = "备注：该用户上周投诉过两次，语气要耐心"
    with live_desk(tmp_path) as desk:
        recorder = Recorder()
        desk.served.app.ctx.input_channels = [WebInput(recorder)]
        ticket = open_ticket(desk, "note-user")
        first = agent_page(browser, desk, "agent1")
        claim(first, ticket)
        first.fill("#reply", "您好，正在为您查询")
        first.press("#reply", "Enter")
        first.wait_for_selector("#transcript:has-text('您好，正在为您查询')")
        first.wait_for_selector("#notes:has-text('暂无备注')")
        first.fill("#note-text", secret)
        first.click("#note-add")
        first.wait_for_selector(f"#notes li.note:has-text('{secret}')")
        assert first.input_value("#note-text") == ""
        # A colleague sees it on the same ticket.
        second = agent_page(browser, desk, "agent2")
        open_in(second, ticket)
        second.wait_for_selector(f"#notes li.note:has-text('{secret}')")
        assert "小王" in second.inner_text("#notes")
        first.wait_for_timeout(2500)  # a further poll of the detail and the transcript
        # It is in the notes API and the page, and nowhere the user could see it.
        notes = desk.db(desk_tools.notes_of, ticket_id=ticket.ticket_id)
        assert [n.text for n in notes] == [secret]
        events = json.dumps(tracker_events(desk, ticket), ensure_ascii=False)
        assert "您好，正在为您查询" in events and secret not in events
        sent = json.dumps(recorder.sent, ensure_ascii=False)
        assert "您好，正在为您查询" in sent and secret not in sent
        assert secret not in first.inner_text("#transcript")
        assert secret not in json.dumps(desk.db(tq.get_ticket, ticket_id=ticket.ticket_id).transcript,
                                        ensure_ascii=False)
        detail = first.evaluate(f"fetch('api/tickets/{ticket.ticket_id}').then(r => r.json())")
        assert secret not in json.dumps(detail["transcript"], ensure_ascii=False)
        assert secret not in json.dumps(detail, ensure_ascii=False)


def test_a_security_agent_lifts_the_freeze_after_verification(tmp_path, browser):  # noqa: F811
    with live_desk(tmp_path) as desk:
        assert desk.db(queries.set_frozen, user_id="U1001", frozen=True)
        ticket = open_ticket(desk, "zhangsan", user_id="U1001", priority=1)
        # agent2 has no security role: no button, even on the frozen user's ticket.
        second = agent_page(browser, desk, "agent2")
        open_in(second, ticket)
        second.wait_for_selector("#d-user:has-text('（已冻结）')")
        second.wait_for_timeout(500)
        assert not second.is_visible("#unfreeze")

        first = agent_page(browser, desk, "agent1")
        open_in(first, ticket)
        first.wait_for_selector("#unfreeze:visible")
        assert first.is_disabled("#unfreeze")  # claim first: the check happens in the chat
        first.click("#claim")
        first.wait_for_selector("#unfreeze:enabled")
        first.click("#unfreeze")
        first.wait_for_selector("#unfreeze-form:visible")
        assert "切勿向用户索要密码或验证码" in first.inner_text("#unfreeze-form")
        first.select_option("#unfreeze-method", "call_back")
        first.click("#unfreeze-submit")  # not confirmed yet
        first.wait_for_selector("#d-notice:has-text('请勾选确认')")
        assert desk.db(queries.get_user, user_id="U1001").frozen
        first.check("#unfreeze-confirm")
        first.click("#unfreeze-submit")
        first.wait_for_selector("#d-notice:has-text('账户已解除冻结')")
        first.wait_for_selector("#unfreeze", state="hidden")
        first.wait_for_function(
            "!document.getElementById('d-user').textContent.includes('已冻结')")
        first.wait_for_selector("#notes:has-text('身份核验方式：回拨预留电话核验')")

        assert not desk.db(queries.get_user, user_id="U1001").frozen
        entries = desk.db(audit_queries.list_events, event="account_unfreeze")
        assert [(e.actor, e.ticket_id, e.user_id) for e in entries] == [
            ("agent1", ticket.ticket_id, "U1001")]
        assert bot_texts(desk, ticket)[-1].startswith("您的OK钱包账户已解除冻结")
