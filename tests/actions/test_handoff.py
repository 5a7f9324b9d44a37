"""Escalation actions: handoff, account freeze, satisfaction score, suggestion."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.feedback import ActionRecordSuggestion, ActionStoreCsat
from actions.handoff import ActionHandoff
from actions.security import ActionFreezeAccount
from walletbot.handoff import wording
from walletbot.handoff.hours import ServiceHours
from walletbot.handoff.notify import TicketNotifier
from walletbot.handoff.service import HandoffService
from walletbot.store import tickets as tq
from walletbot.store.schema import feedback, tickets, users
from walletbot.store.service import WalletService, WalletUnavailable

# 12:00 in Shanghai.
NOON = datetime(2026, 11, 24, 4, 0, tzinfo=timezone.utc)
# 23:30 in Shanghai.
NIGHT = datetime(2026, 11, 24, 15, 30, tzinfo=timezone.utc)


def user(text, intent, *, channel="rest", entities=None, ts=1_700_000_000.0):
    return {"event": "user", "text": text, "timestamp": ts, "input_channel": channel,
            "parse_data": {"text": text, "intent": {"name": intent, "confidence": 0.99},
                           "entities": entities or []}}


def bot(text, action=None, ts=1_700_000_001.0):
    events = []
    if action:
        events.append({"event": "action", "name": action, "timestamp": ts})
    events.append({"event": "bot", "text": text, "timestamp": ts})
    return events


def listen():
    return [{"event": "action", "name": "action_listen"}]


def tracker(events, *, sender="zhangsan"):
    latest = next(e for e in reversed(events) if e["event"] == "user")
    return Tracker(sender_id=sender if ":" in sender else f"rest:{sender}", slots={},
                   latest_message=latest["parse_data"],
                   events=events, paused=False, followup_action=None, active_loop={},
                   latest_action_name="action_listen")


class RecordingNotifier(TicketNotifier):
    def __init__(self):
        super().__init__(None)
        self.notified = []

    def notify(self, ticket):
        self.notified.append(ticket)
        return None


@pytest.fixture
def notifier():
    return RecordingNotifier()


@pytest.fixture
def handoff(service: WalletService, notifier) -> HandoffService:
    return HandoffService(service, hours=ServiceHours.parse("09:00-21:00"),
                          notifier=notifier, clock=lambda: NOON)


def all_tickets(service):
    engine = service._engine_ready()
    with engine.begin() as conn:
        return tq.list_tickets(conn=conn, statuses=("queued", "assigned", "resolved"))


async def run(action, events, *, sender="zhangsan"):
    dispatcher = CollectingDispatcher()
    result = await action.run(dispatcher, tracker(events, sender=sender), {})
    return [m.get("text") or "" for m in dispatcher.messages], result


async def test_request_human_opens_a_ticket_tells_the_number_and_pauses(handoff, service, notifier):
    events = listen() + [user("你好", "greet")] + bot("您好", "utter_greet") + listen() + [
        user("转人工", "request_human")]
    texts, result = await run(ActionHandoff(handoff), events)
    (ticket,) = all_tickets(service)
    assert result == [{"event": "pause", "timestamp": None}]
    assert ticket.category == "request_human" and ticket.priority == 3
    assert ticket.user_id == "U1001" and ticket.channel == "rest"
    assert ticket.status == "queued" and ticket.summary == "转人工"
    assert [line["role"] for line in ticket.transcript] == ["user", "bot", "user"]
    (text,) = texts
    assert ticket.number in text and "下一位" in text
    assert notifier.notified == [ticket]


async def test_asking_again_reuses_the_open_ticket_and_tells_the_queue_place(handoff, service, notifier):
    first = listen() + [user("人工客服", "request_human")]
    await run(ActionHandoff(handoff), first, sender="someone")
    texts1, _ = await run(ActionHandoff(handoff), first, sender="zhangsan")
    texts2, _ = await run(ActionHandoff(handoff), first, sender="zhangsan")
    assert len(all_tickets(service)) == 2
    assert "前面还有 1 位" in texts1[0]
    assert texts1 == texts2
    assert len(notifier.notified) == 2  # not notified again for the same ticket


@pytest.mark.parametrize("offer, category, priority", [
    ("utter_offer_overdue_check", "transaction", 2),
    ("utter_offer_human", "transaction", 3),
    ("utter_offer_human_after_fallback", "fallback", 3),
    ("utter_complain", "complain", 2),
    ("utter_freeze_declined", "account_compromised", 1),
])
async def test_the_accepted_offer_decides_category_and_priority(handoff, service, offer, category, priority):
    events = listen() + [user("...", "whatever")] + bot("offer", offer) + listen() + [
        user("好的", "affirm")]
    await run(ActionHandoff(handoff), events)
    (ticket,) = all_tickets(service)
    assert (ticket.category, ticket.priority) == (category, priority)


async def test_out_of_hours_the_user_is_told_when_agents_answer(service, notifier):
    night = HandoffService(service, hours=ServiceHours.parse("09:00-21:00"),
                           notifier=notifier, clock=lambda: NIGHT)
    texts, result = await run(ActionHandoff(night), listen() + [user("转人工", "request_human")])
    (text,) = texts
    assert "不在人工客服服务时间" in text and "每天 09:00–21:00" in text and "明天 09:00" in text
    assert result and all_tickets(service)[0].status == "queued"


async def test_transcript_is_masked(handoff, service):
    events = listen() + [user("我的卡号6222020200112233445，支付密码是abc123", "inform")] + bot(
        "好的") + listen() + [user("手机13812345678，转人工", "request_human")]
    await run(ActionHandoff(handoff), events)
    (ticket,) = all_tickets(service)
    blob = repr(ticket.transcript) + (ticket.summary or "")
    for secret in ("6222020200112233445", "abc123", "13812345678"):
        assert secret not in blob
    assert "3445" in blob and "138****5678" in blob


async def test_confirmed_freeze_freezes_and_opens_an_urgent_ticket(handoff, service):
    events = listen() + [user("我的账户被盗了", "account_compromised")] + bot(
        "是否冻结", "utter_confirm_freeze") + listen() + [user("立即冻结", "affirm")]
    texts, result = await run(ActionFreezeAccount(handoff), events)
    assert texts[0] == wording.ACCOUNT_FROZEN
    (ticket,) = all_tickets(service)
    assert (ticket.category, ticket.priority, ticket.user_id) == ("account_compromised", 1, "U1001")
    with service._engine_ready().begin() as conn:
        frozen = conn.execute(sa.select(users.c.frozen).where(users.c.user_id == "U1001")).scalar_one()
        other = conn.execute(sa.select(users.c.frozen).where(users.c.user_id == "U1002")).scalar_one()
    assert frozen and not other
    assert result == [{"event": "pause", "timestamp": None}]


async def test_an_unidentified_user_is_not_frozen_but_escalated_urgently(handoff, service):
    events = listen() + [user("账户被盗", "account_compromised")] + bot(
        "是否冻结", "utter_confirm_freeze") + listen() + [user("是", "affirm")]
    texts, _ = await run(ActionFreezeAccount(handoff), events, sender="stranger")
    assert texts[0] == wording.FREEZE_NEEDS_IDENTITY
    (ticket,) = all_tickets(service)
    assert ticket.priority == 1 and ticket.user_id is None
    with service._engine_ready().begin() as conn:
        assert not any(conn.execute(sa.select(users.c.frozen)).scalars())


async def test_an_urgent_ticket_jumps_the_queue(handoff, service):
    for sender in ("a", "b"):
        await run(ActionHandoff(handoff), listen() + [user("转人工", "request_human")], sender=sender)
    events = listen() + [user("被盗了", "account_compromised")] + bot(
        "是否冻结", "utter_confirm_freeze") + listen() + [user("是", "affirm")]
    texts, _ = await run(ActionFreezeAccount(handoff), events)
    assert "下一位" in texts[1]
    assert all_tickets(service)[0].category == "account_compromised"


async def test_db_down_gives_an_apology_and_does_not_pause(notifier):
    class Down(WalletService):
        async def run(self, query, **kwargs):
            raise WalletUnavailable("OperationalError")

    down = HandoffService(Down(), hours=ServiceHours.parse("00:00-24:00"), notifier=notifier)
    texts, result = await run(ActionHandoff(down), listen() + [user("转人工", "request_human")])
    assert texts == [wording.HANDOFF_UNAVAILABLE] and result == []


async def test_a_score_after_a_resolved_ticket_is_stored(handoff, service):
    await run(ActionHandoff(handoff), listen() + [user("转人工", "request_human")])
    (ticket,) = all_tickets(service)
    with service._engine_ready().begin() as conn:
        tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")
        tq.resolve_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")
    events = bot("请打分", "utter_handoff_resolved") + listen() + [
        user('/rate_service{"csat_score": "4"}', "rate_service",
             entities=[{"entity": "csat_score", "value": "4"}])]
    texts, _ = await run(ActionStoreCsat(handoff), events)
    assert texts == [wording.CSAT_THANKS]
    with service._engine_ready().begin() as conn:
        assert tq.feedback_for_ticket(conn=conn, ticket_id=ticket.ticket_id) == 4


async def test_a_low_typed_score_gets_an_apology_and_garbage_a_reprompt(handoff, service):
    texts, _ = await run(ActionStoreCsat(handoff), listen() + [user("给个一分", "rate_service")])
    assert texts == [wording.CSAT_SORRY]
    texts, _ = await run(ActionStoreCsat(handoff), listen() + [user("嗯嗯", "rate_service")])
    assert texts == [wording.ASK_CSAT_AGAIN]
    with service._engine_ready().begin() as conn:
        scores = conn.execute(sa.select(feedback.c.score)).scalars().all()
    assert scores == [1]


async def test_a_suggestion_is_kept_masked(handoff, service):
    await run(ActionRecordSuggestion(handoff),
              listen() + [user("建议增加夜间客服，我电话13812345678", "suggest")])
    with service._engine_ready().begin() as conn:
        (comment,) = conn.execute(sa.select(feedback.c.comment)).scalars().all()
    assert "夜间客服" in comment and "13812345678" not in comment

