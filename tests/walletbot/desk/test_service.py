"""The desk's ticket work, and the ticket row as the one source of truth for a pause."""

from datetime import datetime, timezone

import pytest

from walletbot.conversation import ConversationId
from walletbot.desk.service import DeskService
from walletbot.handoff.hours import ServiceHours
from walletbot.handoff.notify import TicketNotifier
from walletbot.handoff.service import HandoffService
from walletbot.store.db import make_engine
from walletbot.store.service import WalletService

CONVERSATION = ConversationId("wechat", "o_demo_zhangsan")


@pytest.fixture
def wallet(tmp_path):
    url = f"sqlite:///{tmp_path / 'wallet.db'}"
    return WalletService(engine_factory=lambda: make_engine(url), demo=True)


@pytest.fixture
def handoff(wallet):
    return HandoffService(wallet, hours=ServiceHours.parse("00:00-24:00"),
                          notifier=TicketNotifier(None),
                          clock=lambda: datetime(2026, 11, 24, 4, tzinfo=timezone.utc))


async def test_claim_reply_resolve_and_the_pause_follow_the_ticket(wallet, handoff):
    desk = DeskService(wallet)
    assert not await handoff.has_open_ticket(CONVERSATION)
    escalation = await handoff.escalate(conversation=CONVERSATION, category="request_human",
                                        priority=3, events=[], user_id="U1001")
    ticket = escalation.ticket
    assert ticket.conversation == CONVERSATION and str(ticket.conversation) == "wechat:o_demo_zhangsan"
    assert await handoff.has_open_ticket(CONVERSATION)
    # The same sender id on another channel is another conversation.
    assert not await handoff.has_open_ticket(ConversationId("rest", "o_demo_zhangsan"))

    assert [t.ticket_id for t in await desk.tickets(statuses=("queued",))] == [ticket.ticket_id]
    assert await desk.ticket(str(ticket.ticket_id)) == ticket
    assert await desk.ticket("1 OR 1=1") is None and await desk.ticket("9" * 13) is None
    context = await desk.context(ticket)
    assert context.user_name == "张三" and context.csat is None
    assert all(set(t) == {"order_id", "type", "amount", "status", "created_at"}
               for t in context.transactions) and context.transactions

    assert await desk.claim(ticket, agent="agent1")
    assert not await desk.claim(ticket, agent="agent2")
    await desk.touch(ticket)
    assert not await desk.resolve(ticket, agent="agent2")
    assert await desk.resolve(ticket, agent="agent1")
    assert not await handoff.has_open_ticket(CONVERSATION)
