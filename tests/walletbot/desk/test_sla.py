"""Service levels on served desks: timers on two replicas, the queue and notices API, config."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from datetime import timedelta
from typing import Any, AsyncIterator, Dict, List, Tuple
from zoneinfo import ZoneInfo
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from aiohttp import web
from rasa.shared.core.events import BotUttered

from tests.walletbot.channels.wechat.doubles import free_port
from tests.walletbot.desk.harness import call, client, make_desk, serve_desk, token_of
from walletbot import settings
from walletbot.conversation import ConversationId
from walletbot.desk.api import DeskInput
from walletbot.desk.sla import SlaTimer
from walletbot.handoff.hours import ServiceHours
from walletbot.handoff.levels import ServiceLevels
from walletbot.handoff.notify import TicketNotifier, wecom_overdue_text
from walletbot.handoff.service import HandoffService
from walletbot.store import tickets as tq
from walletbot.store.db import make_engine
from walletbot.store.schema import tickets, utcnow
from walletbot.store.service import WalletService
from walletbot.store.sla import told_minutes

ALWAYS = ServiceHours.parse("00:00-24:00")


def shared_wallets(folder, count=2) -> List[WalletService]:
    """``count`` gateways (one engine each, as replicas have) on one wallet DB file."""
    url = f"sqlite:///{folder / 'shared-wallet.db'}"
    return [WalletService(engine_factory=lambda: make_engine(url), demo=True) for _ in range(count)]


@contextlib.asynccontextmanager
async def webhook() -> AsyncIterator[Tuple[str, List[Dict[str, Any]]]]:
    """A local stand-in for DESK_WEBHOOK_URL (a WeCom group bot): records each post."""
    received: List[Dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        await runner.cleanup()


async def escalate(wallet: WalletService, sender: str, priority: int = 3):
    """Opens a ticket the way the bot does (the user is told a wait)."""
    service = HandoffService(wallet, hours=ALWAYS, notifier=TicketNotifier(None))
    escalation = await service.escalate(conversation=ConversationId("web", sender),
                                        category="request_human", priority=priority, events=[])
    return escalation.ticket


async def desk_notices(served_desks, ticket) -> List[Tuple[str, str]]:
    """``(kind, text)`` of the desk's own messages in the ticket's conversation, all replicas."""
    said = []
    for served in served_desks:
        tracker = await served.rasa.tracker_store.retrieve(str(ticket.conversation))
        for event in tracker.events if tracker else []:
            if isinstance(event, BotUttered) and (event.metadata or {}).get("desk_notice"):
                assert "agent" not in event.metadata  # the bot speaks, not an agent
                said.append((event.metadata["desk_notice"], event.text))
    return said


async def manual(served) -> SlaTimer:
    """The served desk's timer, its loop stopped: the test ticks it by hand."""
    timer = served.channel.sla_timer
    await timer.stop()
    return timer


def shifted(by: Dict[str, timedelta]):
    return lambda: utcnow() + by["now"]


async def until(condition, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def count_ticks(timer: SlaTimer, counts: Dict[int, int], key: int) -> None:
    original = timer.tick

    async def counted():
        counts[key] += 1
        return await original()

    timer.tick = counted  # the loop calls self.tick()


async def test_two_replicas_fire_each_timer_exactly_once(tmp_path, monkeypatch):
    wallet_a, wallet_b = shared_wallets(tmp_path)
    overdue = await escalate(wallet_a, "waiting-user")
    silent = await escalate(wallet_a, "claimed-user")
    assert await wallet_a.run(tq.claim_ticket, ticket_id=silent.ticket_id, agent="agent1")
    by = {"now": timedelta(0)}
    ticks = {0: 0, 1: 0}
    async with webhook() as (url, received):
        monkeypatch.setenv("DESK_WEBHOOK_URL", url)
        async with serve_desk(make_desk(wallet_a, sla_tick_seconds=0.05)) as one, \
                serve_desk(make_desk(wallet_b, sla_tick_seconds=0.05)) as two:
            replicas = (one, two)
            for key, served in enumerate(replicas):
                served.channel.sla_timer.clock = shifted(by)
                count_ticks(served.channel.sla_timer, ticks, key)
            await asyncio.sleep(0.4)
            # Nothing is due yet: the user was told a wait at handoff, the claim is fresh.
            assert received == [] and await desk_notices(replicas, overdue) == []
            assert min(ticks.values()) >= 2
            by["now"] = timedelta(minutes=31)  # past the normal target (30) and the reply one (10)

            async def fired():
                return (len(received) >= 1 and await desk_notices(replicas, overdue)
                        and await desk_notices(replicas, silent))

            await until(fired)
            before = dict(ticks)
            await asyncio.sleep(0.6)  # both replicas keep ticking: nothing fires twice
            assert all(ticks[k] >= before[k] + 3 for k in ticks), ticks
        assert len(received) == 1, received
        content = received[0]["text"]["content"]
        assert received[0]["msgtype"] == "text"
        assert content.startswith(f"工单超时未接入 {overdue.number}（普通优先级）")
        assert "已排队：31 分钟（目标 30 分钟内接入）" in content
    ((kind, text),) = await desk_notices(replicas, overdue)
    assert kind == "wait" and text.startswith(f"抱歉让您久等了。您的工单 {overdue.number} 仍在排队中")
    assert "您是下一位" in text and "预计还需等待约 5 分钟" in text
    ((kind, text),) = await desk_notices(replicas, silent)
    assert kind == "requeued" and text.startswith("抱歉，客服暂时未能回复您，已为您重新排队")
    assert "您前面还有 1 位用户在等待，预计等待约 10 分钟" in text
    kinds = {t.ticket_id: [e.event for e in await wallet_a.run(tq.events_of, ticket_id=t.ticket_id)]
             for t in (overdue, silent)}
    assert kinds == {overdue.ticket_id: ["opened", "overdue"],
                     silent.ticket_id: ["opened", "claimed", "requeued"]}
    back = await wallet_b.run(tq.get_ticket, ticket_id=silent.ticket_id)
    assert (back.status, back.agent, back.claimed_at, back.overdue_at) == ("queued", None, None, None)


def lockstep(wallets: List[WalletService]) -> None:
    """Makes the replicas start each DB step together (their queries overlap, as under load)."""
    barrier = threading.Barrier(len(wallets))
    for wallet in wallets:
        async def run(query, _real=wallet.run, **kwargs):
            def synced(conn, **kw):
                barrier.wait(10)
                return query(conn=conn, **kw)

            synced.__name__ = query.__name__
            return await _real(synced, **kwargs)

        wallet.run = run


async def test_replicas_ticking_at_the_same_instant_still_fire_each_timer_once(tmp_path):
    wallets = shared_wallets(tmp_path)
    waiting = [await escalate(wallets[0], f"lock-wait-{i}", priority=1) for i in range(6)]
    silent = [await escalate(wallets[0], f"lock-claim-{i}") for i in range(6)]
    for ticket in silent:
        await wallets[0].run(tq.claim_ticket, ticket_id=ticket.ticket_id, agent="agent2")
    posts = []

    async def post(url, payload):
        posts.append(payload)
        return 200

    async with serve_desk(make_desk(wallets[0])) as one, serve_desk(make_desk(wallets[1])) as two:
        timers = [await manual(one), await manual(two)]
        for timer in timers:
            timer.clock = shifted({"now": timedelta(minutes=12)})
            timer.notifier = TicketNotifier("http://hook.invalid/", post=post)
        lockstep(wallets)
        results = await asyncio.gather(*(timer.tick() for timer in timers))
        await asyncio.sleep(0.1)
    overdue = sorted(t.ticket_id for r in results for t in r.overdue)
    requeued = sorted(t.ticket_id for r in results for t, _ in r.requeued)
    notified = sorted(n.ticket.ticket_id for r in results for n in r.notices)
    assert overdue == [t.ticket_id for t in waiting] and len(posts) == len(waiting)
    assert requeued == [t.ticket_id for t in silent]
    assert notified == [t.ticket_id for t in waiting]  # requeued users were told in the requeue
    for ticket in waiting + silent:
        assert len(await desk_notices((one, two), ticket)) == 1


def closed_hours(now) -> ServiceHours:
    """Hours that start two hours after ``now`` (so agents are off duty at ``now``)."""
    local = now.astimezone(ZoneInfo("Asia/Shanghai"))
    start, end = local + timedelta(hours=2), local + timedelta(hours=3)
    return ServiceHours.parse(f"{start:%H:%M}-{end:%H:%M}")


async def test_off_duty_no_wait_updates_no_paging_but_silent_claims_still_return(tmp_path):
    (wallet,) = shared_wallets(tmp_path, 1)
    waiting = await escalate(wallet, "night-user")
    silent = await escalate(wallet, "night-claim")
    await wallet.run(tq.claim_ticket, ticket_id=silent.ticket_id, agent="agent2")
    posts = []

    async def post(url, payload):
        posts.append(payload)
        return 200

    async with serve_desk(make_desk(wallet, sla_tick_seconds=600)) as served:
        timer = await manual(served)
        timer.notifier = TicketNotifier("http://hook.invalid/", post=post)
        by = {"now": timedelta(minutes=45)}
        timer.clock = shifted(by)
        timer.hours = closed_hours(timer.clock())
        done = await timer.tick()
        assert done.overdue == [] and done.notices == []
        assert [agent for _, agent in done.requeued] == ["agent2"]
        await asyncio.sleep(0.1)
        assert posts == [] and await desk_notices([served], waiting) == []
        ((kind, text),) = await desk_notices([served], silent)
        assert kind == "requeued" and "现在不在人工客服服务时间" in text and "预计" not in text
        # Agents start: the ticket that waited overnight is announced, both users updated.
        timer.hours = ALWAYS
        by["now"] += timedelta(minutes=6)  # past the wait-update interval since the requeue
        done = await timer.tick()
        assert [t.ticket_id for t in done.overdue] == [waiting.ticket_id]
        assert sorted(n.ticket.ticket_id for n in done.notices) == [waiting.ticket_id,
                                                                   silent.ticket_id]

        async def posted():
            return len(posts) == 1

        await until(posted)
        assert posts[0]["text"]["content"].startswith(f"工单超时未接入 {waiting.number}")


async def test_a_failing_tick_is_logged_and_the_timer_keeps_running(tmp_path, caplog):
    (wallet,) = shared_wallets(tmp_path, 1)
    calls = {"n": 0}
    real_run = wallet.run

    async def flaky(query, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database hiccup")
        return await real_run(query, **kwargs)

    ticket = await escalate(wallet, "flaky-user")
    async with serve_desk(make_desk(wallet, sla_tick_seconds=0.05)) as served:
        timer = served.channel.sla_timer
        with caplog.at_level(logging.ERROR, logger="walletbot.desk.sla"):
            wallet.run = flaky  # the timer reads channel.desk.wallet at each tick
            timer.clock = shifted({"now": timedelta(minutes=40)})
            await until(lambda: _overdue(real_run, ticket))
        assert any("service-level tick failed" in r.getMessage() and r.exc_info for r in caplog.records)
        assert timer._task is not None and not timer._task.done()
    assert timer._task is None  # stopped with the server


async def _overdue(run, ticket) -> bool:
    row = await run(tq.get_ticket, ticket_id=ticket.ticket_id)
    return row.overdue_at is not None


async def test_the_queue_sorts_overdue_first_and_shows_the_clocks(tmp_path):
    (wallet,) = shared_wallets(tmp_path, 1)
    async with serve_desk(make_desk(wallet, sla_tick_seconds=600)) as served, client() as http:
        old = await escalate(wallet, "old-normal", priority=3)
        fresh = await escalate(wallet, "fresh-urgent", priority=1)
        claimed = await escalate(wallet, "claimed", priority=2)
        await wallet.run(tq.claim_ticket, ticket_id=claimed.ticket_id, agent="agent1")
        await wallet.run(_backdate, ticket_id=old.ticket_id, minutes=42)
        token = await token_of(http, served.base, "agent1")
        status, body, _ = await call(http, "GET", f"{served.base}/api/tickets", token=token)
        assert status == 200
        rows = body["tickets"]
        # Without service levels the urgent ticket would lead; the overdue one does.
        assert [t["id"] for t in rows] == [old.ticket_id, fresh.ticket_id, claimed.ticket_id]
        first, second, third = rows
        assert (first["overdue"], first["waited_minutes"], first["overdue_minutes"],
                first["target_minutes"]) == (True, 42, 12, 30)
        assert (second["overdue"], second["overdue_minutes"]) == (False, 0)
        assert third["overdue"] is False and third["reply_due_minutes"] == 10
        assert third["claimed_at"] and third["first_reply_at"] is None
        assert first["in_queue_since"] and first["overdue_at"] is None


def _backdate(conn, *, ticket_id, minutes):
    stamp = utcnow() - timedelta(minutes=minutes)
    conn.execute(sa.update(tickets).where(tickets.c.ticket_id == ticket_id)
                 .values(created_at=stamp, queued_at=stamp))


async def test_notices_tell_the_agent_whose_ticket_was_taken_back_why(tmp_path):
    (wallet,) = shared_wallets(tmp_path, 1)
    async with serve_desk(make_desk(wallet, sla_tick_seconds=600)) as served, client() as http:
        one = await token_of(http, served.base, "agent1")
        two = await token_of(http, served.base, "agent2")
        status, start, _ = await call(http, "GET", f"{served.base}/api/notices", token=one)
        assert status == 200 and start["notices"] == []
        ticket = await escalate(wallet, "notice-user")
        await wallet.run(tq.claim_ticket, ticket_id=ticket.ticket_id, agent="agent1")
        timer = await manual(served)
        timer.clock = shifted({"now": timedelta(minutes=11)})
        await timer.tick()
        status, body, _ = await call(http, "GET", f"{served.base}/api/notices?since={start['cursor']}",
                                     token=one)
        (notice,) = body["notices"]
        assert notice["text"] == f"工单 {ticket.number} 认领后 10 分钟未回复，已退回队列"
        assert notice["ticket_id"] == ticket.ticket_id and body["cursor"] == notice["id"]
        status, again, _ = await call(http, "GET", f"{served.base}/api/notices?since={body['cursor']}",
                                      token=one)
        assert again["notices"] == []
        # A console opened afterwards still sees the recent requeue; another agent never does.
        _, fresh, _ = await call(http, "GET", f"{served.base}/api/notices", token=one)
        assert [n["id"] for n in fresh["notices"]] == [notice["id"]]
        _, other, _ = await call(http, "GET", f"{served.base}/api/notices", token=two)
        assert other["notices"] == []
        for bad in ("abc", "-1", "1" * 13):
            status, body, _ = await call(http, "GET", f"{served.base}/api/notices?since={bad}",
                                         token=one)
            assert status == 400 and body["error"] == "since 须为非负整数"
        async with client() as anonymous:
            status, _, _ = await call(anonymous, "GET", f"{served.base}/api/notices")
        assert status == 401


async def test_the_handoff_tells_the_wait_measured_from_recent_tickets(tmp_path):
    (wallet,) = shared_wallets(tmp_path, 1)
    for index, minutes in enumerate((8, 8, 8)):
        done = await escalate(wallet, f"done-{index}")
        await wallet.run(tq.claim_ticket, ticket_id=done.ticket_id, agent="agent1")
        await wallet.run(tq.resolve_ticket, ticket_id=done.ticket_id, agent="agent1")
        await wallet.run(_handled_in, ticket_id=done.ticket_id, minutes=minutes)
    await escalate(wallet, "ahead")
    service = HandoffService(wallet, hours=ALWAYS, notifier=TicketNotifier(None),
                             levels=ServiceLevels(fallback_minutes=3))
    escalation = await service.escalate(conversation=ConversationId("web", "me"),
                                        category="request_human", priority=3, events=[])
    from walletbot.handoff.escalation import wait_text

    text = wait_text(escalation, hours=ALWAYS, now=utcnow())
    assert escalation.wait_minutes == 16  # 2 places x 8 measured minutes, not the fallback 3
    assert "您前面还有 1 位用户在等待，预计等待约 16 分钟" in text
    told = await wallet.run(told_minutes, ticket_ids=[escalation.ticket.ticket_id])
    assert told == {escalation.ticket.ticket_id: 16}
    # Off duty: the leave-a-message wording, no estimate.
    night = HandoffService(wallet, hours=closed_hours(utcnow()), notifier=TicketNotifier(None))
    late = await night.escalate(conversation=ConversationId("web", "night"),
                                category="request_human", priority=3, events=[])
    assert late.wait_minutes == 0
    text = wait_text(late, hours=night.hours, now=utcnow())
    assert "不在人工客服服务时间" in text and "预计" not in text


def _handled_in(conn, *, ticket_id, minutes):
    resolved = utcnow() - timedelta(minutes=30)
    conn.execute(sa.update(tickets).where(tickets.c.ticket_id == ticket_id)
                 .values(claimed_at=resolved - timedelta(minutes=minutes), resolved_at=resolved))


def test_the_overdue_announcement_carries_no_personal_data():
    from walletbot.store.rows import Ticket

    now = utcnow()
    ticket = Ticket(ticket_id=7, channel="web", sender_id="s", user_id=None, category="complain",
                    priority=2, status="queued", agent=None,
                    summary="卡号6222020200112233445一直不到账", transcript=(),
                    created_at=now, updated_at=now, resolved_at=None)
    content = wecom_overdue_text(ticket, waited_minutes=16, target="15 分钟")["text"]["content"]
    assert content.startswith("工单超时未接入 T000007（高优先级）")
    assert "6222020200112233445" not in content and "类别：投诉" in content


@pytest.mark.parametrize("key, value, fragment", [
    ("sla_queue_minutes", "5,15", "sla_queue_minutes must be three positive numbers"),
    ("sla_queue_minutes", "5,0,30", "sla_queue_minutes must be three positive numbers"),
    ("sla_reply_minutes", "-1", "sla_reply_minutes must be a positive number"),
    ("sla_wait_notice_minutes", "soon", "sla_wait_notice_minutes must be a positive number"),
    ("sla_tick_seconds", "3600", "sla_tick_seconds must be a number of seconds from 0.05 to 600"),
    ("sla_fallback_minutes", "nan", "sla_fallback_minutes must be a positive number"),
])
def test_bad_service_levels_are_refused_when_the_desk_is_built(key, value, fragment):
    with pytest.raises(ValueError) as raised:
        DeskInput.from_credentials({"secret": "x" * 40, key: value})
    assert fragment in str(raised.value) and repr(value) in str(raised.value)


def test_bad_environment_values_stop_the_start_up_check(monkeypatch, capsys):
    monkeypatch.setenv("DESK_SLA_QUEUE_MINUTES", "5;15;30")
    assert settings.check_startup() == 1
    assert "DESK_SLA_QUEUE_MINUTES must be three positive numbers" in capsys.readouterr().err
    with pytest.raises(ValueError, match="DESK_SLA_QUEUE_MINUTES"):
        ServiceLevels.current()
    monkeypatch.setenv("DESK_SLA_QUEUE_MINUTES", "2,4,8")
    monkeypatch.setenv("DESK_SLA_TICK_SECONDS", "1.5")
    assert settings.check_startup() == 0
    levels = ServiceLevels.current()
    assert levels.queue_minutes == (2, 4, 8) and levels.tick_seconds == 1.5
    assert levels.queue_target(1) == timedelta(minutes=2)
    # Credentials (tests) win over the environment, key by key.
    channel = DeskInput.from_credentials({"secret": "x" * 40, "sla_reply_minutes": "0.1"})
    assert channel.service_levels.reply_minutes == 0.1
    assert channel.service_levels.queue_minutes == (2, 4, 8)


async def test_a_hanging_message_to_one_user_does_not_stall_the_timer(monkeypatch, caplog):
    from walletbot.desk import sla as sla_module

    class Hanging:
        async def tell(self, *_: Any, **__: Any) -> None:
            await asyncio.sleep(3600)

    monkeypatch.setattr(sla_module, "TELL_TIMEOUT", 0.1)
    ticket = SimpleNamespace(conversation="web:x", number="T000009")
    with caplog.at_level(logging.ERROR, logger="walletbot.desk.sla"):
        await asyncio.wait_for(SlaTimer._tell(Hanging(), ticket, "稍候", "wait"), 2)
    assert any("T000009" in r.getMessage() and "gave up" in r.getMessage() for r in caplog.records)
