"""The agents' tools over the desk's HTTP API: transfer, notes, unfreeze, capacity, presence,
auto-assignment; with the bad input and the foreign requests each must refuse."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, List

import pytest
from rasa.core.channels.channel import InputChannel, OutputChannel
from sqlalchemy import exc

from tests.walletbot.desk.harness import call, client, make_desk, serve_desk, token_of, wallet_service
from walletbot.desk import assign
from walletbot.desk.presence import PresenceRecorder
from walletbot.store import audit as audit_queries
from walletbot.store import desk_tools
from walletbot.store import queries
from walletbot.store import tickets as tq
from walletbot.store.service import WalletUnavailable

CHINESE = re.compile(r"[\u4e00-\u9fff]")
NOTE = "内部：用户疑似被诈骗，卡号 6222 0212 3456 7890 123，先别告诉他"


class Recorder(OutputChannel):
    """Everything pushed to users of the web channel."""

    def __init__(self) -> None:
        self.sent: List[Any] = []

    @classmethod
    def name(cls) -> str:
        return "recorder"

    async def send_text_message(self, recipient_id: str, text: str, **_: Any) -> None:
        self.sent.append((recipient_id, text))

    async def send_custom_json(self, recipient_id: str, json_message: Any, **_: Any) -> None:
        self.sent.append((recipient_id, json_message))


class WebInput(InputChannel):
    def __init__(self, output: OutputChannel) -> None:
        self.output = output

    @classmethod
    def name(cls) -> str:
        return "web"

    def get_output_channel(self) -> OutputChannel:
        return self.output


@pytest.fixture
def wallet(tmp_path):
    return wallet_service(tmp_path)


@pytest.fixture(autouse=True)
def checks(monkeypatch):
    monkeypatch.setenv("DESK_UNFREEZE_VERIFICATIONS", "call_back:回拨预留电话核验,video:视频核验")
    monkeypatch.setenv("DESK_AUTO_ASSIGN", "false")


def chinese_error(body):
    assert isinstance(body, dict) and CHINESE.search(body["error"]), body
    return body["error"]


async def open_ticket(wallet, sender, user_id=None, priority=3):
    ticket, _ = await wallet.run(tq.open_ticket, channel="web", sender_id=sender,
                                 category="request_human", priority=priority, user_id=user_id,
                                 summary="我要人工")
    return ticket


async def bot_texts(desk, ticket):
    tracker = await desk.rasa.tracker_store.retrieve(str(ticket.conversation))
    return [] if tracker is None else [e.text for e in tracker.events if e.type_name == "bot"]


async def tracker_dump(desk, ticket):
    tracker = await desk.rasa.tracker_store.retrieve(str(ticket.conversation))
    return "" if tracker is None else json.dumps([e.as_dict() for e in tracker.events],
                                                 ensure_ascii=False)


class Agents:
    """Logged-in API sessions of agent1 (all roles) and agent2 (none)."""

    def __init__(self, http, base, tokens):
        self.http, self.base, self.tokens = http, base, tokens

    async def __call__(self, who, method, path, body=None, **kw):
        return (await call(self.http, method, f"{self.base}/{path}", body=body,
                           token=self.tokens[who], **kw))[:2]


@pytest.fixture
async def served(wallet):
    async with serve_desk(make_desk(wallet)) as desk, client() as http:
        recorder = Recorder()
        desk.app.ctx.input_channels = [WebInput(recorder)]
        tokens = {who: await token_of(http, desk.base, who) for who in ("agent1", "agent2")}
        desk.recorder = recorder
        yield desk, Agents(http, desk.base, tokens)


# --- transfer ---------------------------------------------------------------------

async def test_the_holder_transfers_to_a_colleague_who_sees_why(served, wallet):
    desk, api = served
    ticket = await open_ticket(wallet, "t-colleague")
    assert (await api("agent1", "POST", f"api/tickets/{ticket.ticket_id}/claim", {}))[0] == 200
    status, body = await api("agent1", "POST", f"api/tickets/{ticket.ticket_id}/transfer",
                             {"to": "agent2", "reason": "退款问题，请小李跟进"})
    assert status == 200 and (body["status"], body["agent"]) == ("assigned", "agent2")
    texts = await bot_texts(desk, ticket)
    assert texts[-2:] == ["已为您转接客服 小李，请稍候。",
                          "您好，我是人工客服小李，已为您接入，请问有什么可以帮您？"]
    assert any(isinstance(m, dict) and m.get("text") == "已为您转接客服 小李，请稍候。"
               for _, m in desk.recorder.sent)
    status, tools = await api("agent2", "GET", f"api/tickets/{ticket.ticket_id}/tools")
    assert status == 200 and tools["can_transfer"]
    assert {k: tools["handover"][k] for k in ("event", "actor_name", "target", "reason")} == {
        "event": "transferred", "actor_name": "小王", "target": "agent2",
        "reason": "退款问题，请小李跟进"}
    # agent2 replies now; agent1 no longer may.
    assert (await api("agent2", "POST", f"api/tickets/{ticket.ticket_id}/reply",
                      {"text": "您好"}))[0] == 200
    assert (await api("agent1", "POST", f"api/tickets/{ticket.ticket_id}/reply",
                      {"text": "我还在"}))[0] == 409


async def test_back_to_the_queue_tells_the_user_and_frees_the_ticket(served, wallet):
    desk, api = served
    ticket = await open_ticket(wallet, "t-queue")
    await api("agent2", "POST", f"api/tickets/{ticket.ticket_id}/claim", {})
    status, body = await api("agent2", "POST", f"api/tickets/{ticket.ticket_id}/transfer",
                             {"to": None, "reason": "我要下班了"})
    assert status == 200 and (body["status"], body["agent"]) == ("queued", None)
    assert (await bot_texts(desk, ticket))[-1].startswith("已为您重新排队")
    assert {"handoff": "queued"}.items() <= desk.recorder.sent[-1][1].items()
    events = await wallet.run(tq.events_of, ticket_id=ticket.ticket_id)
    assert (events[-1].event, events[-1].actor, events[-1].reason) == ("requeued", "agent2", "我要下班了")
    # Anyone may claim it again.
    assert (await api("agent1", "POST", f"api/tickets/{ticket.ticket_id}/claim", {}))[0] == 200


async def test_transfer_refuses_bad_input_with_chinese_errors(served, wallet):
    desk, api = served
    ticket = await open_ticket(wallet, "t-bad")
    await api("agent2", "POST", f"api/tickets/{ticket.ticket_id}/claim", {})
    path = f"api/tickets/{ticket.ticket_id}/transfer"
    for body in ({}, {"reason": "x"}, {"to": 5, "reason": "x"}, {"to": "", "reason": "x"},
                 {"to": "nobody", "reason": "x"}, {"to": ["agent1"], "reason": "x"},
                 {"to": "agent1"}, {"to": "agent1", "reason": "   "},
                 {"to": "agent1", "reason": 12}, {"to": "agent1", "reason": "长" * 201},
                 ["agent1"]):
        status, answer = await api("agent2", "POST", path, body)
        assert status == 400, (body, answer)
        chinese_error(answer)
    status, answer = await api("agent2", "POST", path, headers={"Content-Type": "text/plain"})
    assert status == 415
    assert (await api("agent2", "POST", "api/tickets/999999/transfer",
                      {"to": None, "reason": "x"}))[0] == 404
    assert (await api("agent2", "POST", "api/tickets/abc/transfer",
                      {"to": None, "reason": "x"}))[0] == 404
    # Nothing moved.
    assert (await wallet.run(tq.get_ticket, ticket_id=ticket.ticket_id)).agent == "agent2"
    assert (await api("agent2", "POST", path, {"to": "agent2", "reason": "自己"}))[0] == 409


async def test_only_the_holder_or_a_supervisor_moves_a_ticket(served, wallet):
    desk, api = served
    held = await open_ticket(wallet, "t-held")
    await api("agent1", "POST", f"api/tickets/{held.ticket_id}/claim", {})
    # agent2 (no role) cannot take agent1's ticket, nor move a queued one.
    status, body = await api("agent2", "POST", f"api/tickets/{held.ticket_id}/transfer",
                             {"to": "agent2", "reason": "给我"})
    assert status == 403 and "主管" in chinese_error(body)
    queued = await open_ticket(wallet, "t-queued")
    status, _ = await api("agent2", "POST", f"api/tickets/{queued.ticket_id}/transfer",
                          {"to": "agent2", "reason": "给我"})
    assert status == 403
    status, tools = await api("agent2", "GET", f"api/tickets/{held.ticket_id}/tools")
    assert not tools["can_transfer"]
    # agent1 is a supervisor: it assigns a queued ticket to agent2.
    status, body = await api("agent1", "POST", f"api/tickets/{queued.ticket_id}/transfer",
                             {"to": "agent2", "reason": "小李熟悉此类问题"})
    assert status == 200 and body["agent"] == "agent2"
    await api("agent2", "POST", f"api/tickets/{queued.ticket_id}/resolve", {})
    status, body = await api("agent1", "POST", f"api/tickets/{queued.ticket_id}/transfer",
                             {"to": None, "reason": "重开"})
    assert status == 409 and "结束" in chinese_error(body)


# --- capacity --------------------------------------------------------------------------

async def test_the_cap_is_enforced_on_claim_and_on_transfer(served, wallet):
    desk, api = served
    tickets = [await open_ticket(wallet, f"cap{i}") for i in range(6)]
    for ticket in tickets[:5]:
        assert (await api("agent2", "POST", f"api/tickets/{ticket.ticket_id}/claim", {}))[0] == 200
    status, body = await api("agent2", "POST", f"api/tickets/{tickets[5].ticket_id}/claim", {})
    assert status == 409 and "已达到同时处理上限（5 个）" in chinese_error(body)
    assert (await wallet.run(tq.get_ticket, ticket_id=tickets[5].ticket_id)).status == "queued"
    await api("agent1", "POST", f"api/tickets/{tickets[5].ticket_id}/claim", {})
    status, body = await api("agent1", "POST", f"api/tickets/{tickets[5].ticket_id}/transfer",
                             {"to": "agent2", "reason": "请小李处理"})
    assert status == 409 and chinese_error(body).startswith("小李已达到同时处理上限（5 个）")
    status, agents = await api("agent1", "GET", "api/agents")
    loads = {a["login"]: (a["load"], a["cap"]) for a in agents["agents"]}
    assert loads == {"agent1": (1, 5), "agent2": (5, 5)}


async def test_the_agents_list_and_the_availability_switch(served, wallet):
    desk, api = served
    assert (await api("agent2", "GET", "api/tickets"))[0] == 200  # agent2's console polls
    status, body = await api("agent2", "GET", "api/agents")
    assert status == 200
    assert "password" not in json.dumps(body) and "scrypt" not in json.dumps(body)
    assert [a["login"] for a in body["agents"]] == ["agent1", "agent2"]
    me = body["agents"][1]
    assert me == {"login": "agent2", "name": "小李", "online": True, "accepting": True,
                  "available": True, "load": 0, "cap": 5}
    for bad in ({}, {"available": "false"}, {"available": 0}, {"available": None}):
        status, answer = await api("agent2", "POST", "api/me/availability", bad)
        assert status == 400
        chinese_error(answer)
    assert (await api("agent2", "POST", "api/me/availability", {"available": False})) == (
        200, {"available": False})
    me = (await api("agent1", "GET", "api/agents"))[1]["agents"][1]
    assert (me["online"], me["accepting"], me["available"]) == (True, False, False)


# --- notes ------------------------------------------------------------------------------

async def test_notes_are_for_agents_and_never_reach_the_user(served, wallet):
    desk, api = served
    ticket = await open_ticket(wallet, "t-notes")
    await api("agent1", "POST", f"api/tickets/{ticket.ticket_id}/claim", {})
    await api("agent1", "POST", f"api/tickets/{ticket.ticket_id}/reply", {"text": "正在为您查询"})
    status, body = await api("agent2", "POST", f"api/tickets/{ticket.ticket_id}/notes",
                             {"text": NOTE})
    assert status == 201 and body["note"]["agent_name"] == "小李"
    assert "6222 0212 3456 7890 123" not in body["note"]["text"]
    stored = body["note"]["text"]
    assert stored.startswith("内部：用户疑似被诈骗") and stored.endswith("先别告诉他")
    status, body = await api("agent1", "GET", f"api/tickets/{ticket.ticket_id}/notes")
    assert status == 200 and [n["text"] for n in body["notes"]] == [stored]
    await api("agent1", "POST", f"api/tickets/{ticket.ticket_id}/resolve", {})
    # Nowhere the user could see it: tracker, channel output, transcripts.
    secret = "先别告诉他"
    assert "正在为您查询" in await tracker_dump(desk, ticket)  # the dump does hold the chat
    assert secret not in await tracker_dump(desk, ticket)
    assert desk.recorder.sent and secret not in json.dumps(desk.recorder.sent, ensure_ascii=False)
    _, detail = await api("agent1", "GET", f"api/tickets/{ticket.ticket_id}")
    assert secret not in json.dumps(detail["transcript"], ensure_ascii=False)
    assert secret not in json.dumps((await wallet.run(tq.get_ticket, ticket_id=ticket.ticket_id))
                                    .transcript, ensure_ascii=False)
    # A note may be added to a resolved ticket too.
    assert (await api("agent1", "POST", f"api/tickets/{ticket.ticket_id}/notes",
                      {"text": "已回访"}))[0] == 201


async def test_notes_refuse_bad_input(served, wallet):
    desk, api = served
    ticket = await open_ticket(wallet, "t-notes-bad")
    path = f"api/tickets/{ticket.ticket_id}/notes"
    for body in ({}, {"text": ""}, {"text": "  "}, {"text": 3}, {"text": ["x"]},
                 {"text": "字" * 1001}, "text"):
        status, answer = await api("agent1", "POST", path, body)
        assert status == 400, body
        chinese_error(answer)
    assert (await api("agent1", "POST", "api/tickets/424242/notes", {"text": "x"}))[0] == 404
    assert (await api("agent1", "GET", path))[1] == {"notes": []}


# --- unfreeze --------------------------------------------------------------------------------

async def frozen_ticket(wallet, api, sender="zhangsan", user_id="U1001", claim_by="agent1"):
    ticket = await open_ticket(wallet, sender, user_id=user_id, priority=1)
    assert await wallet.run(queries.set_frozen, user_id=user_id, frozen=True)
    if claim_by:
        await api(claim_by, "POST", f"api/tickets/{ticket.ticket_id}/claim", {})
    return ticket


async def test_a_security_agent_lifts_the_freeze_after_verification(served, wallet):
    desk, api = served
    ticket = await frozen_ticket(wallet, api)
    status, tools = await api("agent1", "GET", f"api/tickets/{ticket.ticket_id}/tools")
    assert tools["frozen"] is True and tools["can_unfreeze"]
    assert tools["checks"] == [{"id": "call_back", "label": "回拨预留电话核验"},
                               {"id": "video", "label": "视频核验"}]
    status, body = await api("agent1", "POST", f"api/tickets/{ticket.ticket_id}/unfreeze",
                             {"user_id": "U1001", "verification": "video", "confirmed": True})
    assert (status, body) == (200, {"ok": True, "frozen": False})
    assert not (await wallet.run(queries.get_user, user_id="U1001")).frozen
    entry = (await wallet.run(audit_queries.list_events, event="account_unfreeze"))[0]
    assert (entry.actor, entry.ticket_id, entry.user_id) == ("agent1", ticket.ticket_id, "U1001")
    assert entry.address == "127.0.0.1"
    assert (await bot_texts(desk, ticket))[-1].startswith("您的OK钱包账户已解除冻结")
    notes = (await api("agent1", "GET", f"api/tickets/{ticket.ticket_id}/notes"))[1]["notes"]
    assert notes[-1]["text"] == "已解除账户冻结。身份核验方式：视频核验。"
    # Not frozen any more: nothing to lift.
    status, body = await api("agent1", "POST", f"api/tickets/{ticket.ticket_id}/unfreeze",
                             {"user_id": "U1001", "verification": "video", "confirmed": True})
    assert status == 409 and "未被冻结" in chinese_error(body)
    assert len(await wallet.run(audit_queries.list_events, event="account_unfreeze")) == 1


async def test_unfreeze_refuses_attackers_and_incomplete_requests(served, wallet):
    desk, api = served
    ticket = await frozen_ticket(wallet, api, claim_by=None)
    path = f"api/tickets/{ticket.ticket_id}/unfreeze"
    good = {"user_id": "U1001", "verification": "call_back", "confirmed": True}
    # agent2 has no security role: forging the whole request does not help, even holding it.
    await api("agent2", "POST", f"api/tickets/{ticket.ticket_id}/claim", {})
    status, body = await api("agent2", "POST", path, good)
    assert status == 403 and "安全" in chinese_error(body)
    status, tools = await api("agent2", "GET", f"api/tickets/{ticket.ticket_id}/tools")
    assert not tools["can_unfreeze"] and tools["checks"] == []
    # agent1 (security) does not hold it: verification happens in the conversation.
    status, body = await api("agent1", "POST", path, good)
    assert status == 409 and "认领" in chinese_error(body)
    await api("agent2", "POST", f"api/tickets/{ticket.ticket_id}/transfer",
              {"to": "agent1", "reason": "需要安全专员"})
    # Someone else's account through this ticket.
    status, body = await api("agent1", "POST", path, {**good, "user_id": "U1002"})
    assert status == 403 and chinese_error(body)
    for bad in ({**good, "verification": "sms"}, {**good, "verification": None},
                {"user_id": "U1001", "confirmed": True}, {**good, "confirmed": False},
                {**good, "confirmed": "true"}, {**good, "confirmed": 1},
                {"user_id": "U1001", "verification": "video"}):
        status, body = await api("agent1", "POST", path, bad)
        assert status == 400, bad
        chinese_error(body)
    assert (await wallet.run(queries.get_user, user_id="U1001")).frozen
    assert await wallet.run(audit_queries.list_events, event="account_unfreeze") == []
    # The other user, frozen too, stays frozen when this one is lifted.
    assert await wallet.run(queries.set_frozen, user_id="U1002", frozen=True)
    assert (await api("agent1", "POST", path, good))[0] == 200
    assert (await wallet.run(queries.get_user, user_id="U1002")).frozen


async def test_unfreeze_needs_a_bound_frozen_user_and_configured_checks(served, wallet, monkeypatch):
    desk, api = served
    guest = await open_ticket(wallet, "guest")
    await api("agent1", "POST", f"api/tickets/{guest.ticket_id}/claim", {})
    status, body = await api("agent1", "POST", f"api/tickets/{guest.ticket_id}/unfreeze",
                             {"user_id": None, "verification": "video", "confirmed": True})
    assert status == 409 and "未绑定" in chinese_error(body)
    status, tools = await api("agent1", "GET", f"api/tickets/{guest.ticket_id}/tools")
    assert tools["frozen"] is None and not tools["can_unfreeze"]
    unfrozen = await open_ticket(wallet, "lisi", user_id="U1002")
    await api("agent1", "POST", f"api/tickets/{unfrozen.ticket_id}/claim", {})
    status, body = await api("agent1", "POST", f"api/tickets/{unfrozen.ticket_id}/unfreeze",
                             {"user_id": "U1002", "verification": "video", "confirmed": True})
    assert status == 409 and "未被冻结" in chinese_error(body)
    ticket = await frozen_ticket(wallet, api)
    monkeypatch.setenv("DESK_UNFREEZE_VERIFICATIONS", "")
    status, body = await api("agent1", "POST", f"api/tickets/{ticket.ticket_id}/unfreeze",
                             {"user_id": "U1001", "verification": "video", "confirmed": True})
    assert status == 409 and "核验方式" in chinese_error(body)
    assert (await wallet.run(queries.get_user, user_id="U1001")).frozen


# --- presence and auto-assignment --------------------------------------------------------------

async def test_a_request_marks_the_agent_seen_and_a_db_failure_does_not_fail_it(served, wallet,
                                                                                 monkeypatch):
    desk, api = served
    assert await wallet.run(desk_tools.presence_of) == {}  # logging in is not being seen
    # Nor is any call but the console's queue poll: a supervisor with only the
    # dashboard open must not be given tickets.
    for path in ("api/me", "api/agents", "api/dashboard?days=1", "api/audit"):
        await api("agent1", "GET", path)
    assert await wallet.run(desk_tools.presence_of) == {}
    assert (await api("agent2", "GET", "api/tickets"))[0] == 200
    assert set(await wallet.run(desk_tools.presence_of)) == {"agent2"}

    def record_seen(*, conn, login, at=None):
        raise exc.OperationalError("INSERT INTO agent_presence", {}, Exception("db down"))

    monkeypatch.setattr(desk_tools, "record_seen", record_seen)
    async with serve_desk(make_desk(wallet)) as second, client() as http:  # nobody seen here yet
        token = await token_of(http, second.base, "agent1")
        status, body, _ = await call(http, "GET", f"{second.base}/api/tickets", token=token)
        assert status == 200 and "tickets" in body
    assert set(await wallet.run(desk_tools.presence_of)) == {"agent2"}


async def test_the_recorder_writes_at_most_every_few_seconds_per_agent():
    writes = []
    now = [100.0]

    class Wallet:
        async def run(self, fn, **kwargs):
            writes.append(kwargs["login"])
            if kwargs["login"] == "broken":
                raise WalletUnavailable("OperationalError")

    recorder = PresenceRecorder(lambda: Wallet(), every=10, clock=lambda: now[0])
    await recorder.seen("agent1")
    await recorder.seen("agent1")
    await recorder.seen("agent2")
    now[0] += 9.9
    await recorder.seen("agent1")
    now[0] += 0.2
    await recorder.seen("agent1")
    await recorder.seen("broken")  # logged, not raised
    assert writes == ["agent1", "agent2", "agent1", "broken"]


async def test_auto_assignment_gives_a_new_ticket_to_an_available_agent(wallet, monkeypatch):
    monkeypatch.setattr(assign, "TICK_SECONDS", 0.05)
    async with serve_desk(make_desk(wallet)) as desk, client() as http:
        token = await token_of(http, desk.base, "agent2")
        await call(http, "GET", f"{desk.base}/api/tickets", token=token)  # agent2's console is open
        off = await open_ticket(wallet, "auto-off")
        await asyncio.sleep(0.3)
        assert (await wallet.run(tq.get_ticket, ticket_id=off.ticket_id)).status == "queued"
        monkeypatch.setenv("DESK_AUTO_ASSIGN", "true")
        for _ in range(100):
            current = await wallet.run(tq.get_ticket, ticket_id=off.ticket_id)
            if current.status == "assigned":
                break
            await asyncio.sleep(0.05)
        assert (current.status, current.agent) == ("assigned", "agent2")
        events = await wallet.run(tq.events_of, ticket_id=off.ticket_id)
        assert (events[-1].event, events[-1].actor, events[-1].target) == (
            "assigned", "system", "agent2")
        assert (await bot_texts(desk, off))[-1] == "您好，我是人工客服小李，已为您接入，请问有什么可以帮您？"
        # Paused: the next ticket waits in the queue.
        await call(http, "POST", f"{desk.base}/api/me/availability", body={"available": False},
                   token=token)
        waiting = await open_ticket(wallet, "auto-paused")
        await asyncio.sleep(0.3)
        assert (await wallet.run(tq.get_ticket, ticket_id=waiting.ticket_id)).status == "queued"
        await call(http, "POST", f"{desk.base}/api/me/availability", body={"available": True},
                   token=token)
        for _ in range(100):
            if (await wallet.run(tq.get_ticket, ticket_id=waiting.ticket_id)).agent == "agent2":
                break
            await asyncio.sleep(0.05)
        assert (await wallet.run(tq.get_ticket, ticket_id=waiting.ticket_id)).agent == "agent2"


async def test_a_reply_racing_a_requeue_is_refused_and_never_reaches_the_user(wallet):
    """The ticket is taken back between the route's ownership check and the reply."""
    from walletbot.desk.service import DeskService

    class RequeuedMeanwhile(DeskService):
        async def ticket(self, ticket_id):
            ticket = await super().ticket(ticket_id)
            if ticket is not None and ticket.status == "assigned":
                await self.wallet.run(_requeue, ticket_id=ticket.ticket_id)
            return ticket  # the route sees it as it was: still the agent's

    channel = make_desk(wallet)
    channel.desk = RequeuedMeanwhile(wallet)
    ticket = await open_ticket(wallet, "racer")
    assert await wallet.run(tq.claim_ticket, ticket_id=ticket.ticket_id, agent="agent1")
    async with serve_desk(channel) as desk, client() as http:
        token = await token_of(http, desk.base, "agent1")
        status, body, _ = await call(http, "POST", f"{desk.base}/api/tickets/{ticket.ticket_id}/reply",
                                     body={"text": "迟到的回复"}, token=token)
        assert status == 409 and "退回队列" in body["error"]
        assert "迟到的回复" not in await tracker_dump(desk, ticket)


def _requeue(conn, *, ticket_id):
    import sqlalchemy as sa
    from walletbot.store.schema import tickets

    conn.execute(sa.update(tickets).where(tickets.c.ticket_id == ticket_id)
                 .values(status="queued", agent=None))
