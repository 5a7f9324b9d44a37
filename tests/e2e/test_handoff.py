"""Handoff end to end: REST user, agent desk API, the real Rasa and action servers."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import jwt
import pytest

from tests.e2e.conftest import start_bot
from tests.e2e.desk_client import Desk, request, tracker
from walletbot.turns import screening as guard

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bot(trained_model, tmp_path_factory):
    running = start_bot(trained_model, tmp_path_factory.mktemp("handoff"), dict(os.environ),
                        15305, 15355)
    yield running
    running.stop(signal.SIGKILL)


def wallet_db(bot):
    return sqlite3.connect(bot.var / "wallet.db")


def events_of(bot, sender, kind):
    return [e for e in tracker(bot.base, sender)["events"] if e["event"] == kind]


def test_desk_refuses_requests_without_a_valid_session(bot):
    desk = f"{bot.base}/webhooks/desk"
    assert request(f"{desk}/api/tickets")[0] == 401
    assert request(f"{desk}/api/tickets/1/claim", body={})[0] == 401
    assert request(f"{desk}/api/tickets/1/reply", body={"text": "x"})[0] == 401
    forged = jwt.encode({"sub": "agent1", "exp": time.time() + 600, "aud": "walletbot-desk"},
                        "not-the-secret-but-32-bytes-long-xx", algorithm="HS256")
    assert request(f"{desk}/api/tickets", token=forged)[0] == 401
    expired = jwt.encode({"sub": "agent1", "exp": time.time() - 10, "aud": "walletbot-desk"},
                         os.environ["DESK_SECRET"], algorithm="HS256")
    assert request(f"{desk}/api/tickets", token=expired)[0] == 401
    # A web-chat user's token is not an agent session.
    _, web = request(f"{bot.base}/webhooks/web/token", body={"user": "zhangsan"})
    assert request(f"{desk}/api/tickets", token=web["token"])[0] == 401
    assert request(f"{desk}/login", body={"login": "agent1", "password": "wrong"})[0] == 401
    assert request(f"{desk}/login", body={"login": "nobody", "password": "x"})[0] == 401
    status, page = request(f"{desk}/")
    assert status == 200 and "登录" in page  # redirected to the login page


def test_request_human_pauses_and_the_agent_relays_and_hands_back(bot):
    sender = "zhangsan"
    first = bot.text(sender, "转人工")
    assert "工单号 T" in first
    assert tracker(bot.base, sender)["paused"] is True

    # While paused the bot is silent, but what the user writes is kept (masked,
    # with the reminder not to send card numbers).
    assert bot.say(sender, "我还在等") == []
    replies = bot.say(sender, "我的提现还没到，卡号6222020200112233445")
    assert [r["text"] for r in replies] == [guard.PII_REMINDER]

    agent1, agent2 = Desk(bot.base, "agent1"), Desk(bot.base, "agent2")
    ticket = agent1.ticket_for(sender)
    assert ticket["category"] == "request_human" and ticket["user_id"] == "U1001"
    assert ticket["user_name"].startswith("张三")
    assert {t["order_id"] for t in ticket["transactions"]} >= {"WD202611180002"}
    texts = [line["text"] for line in ticket["transcript"]]
    assert any("我的提现还没到" in t for t in texts)
    assert not any("6222020200112233445" in t for t in texts)  # masked for agents

    # Exactly one of two agents gets it.
    assert agent1.post(f"tickets/{ticket['id']}/claim")[0] == 200
    status, body = agent2.post(f"tickets/{ticket['id']}/claim")
    assert status == 409 and "认领" in body["error"]
    assert agent2.post(f"tickets/{ticket['id']}/reply", {"text": "抢答"})[0] == 409

    assert agent1.post(f"tickets/{ticket['id']}/reply", {"text": "<b>您好</b>，正在为您核查"})[0] == 200
    agent_lines = [e for e in events_of(bot, sender, "bot") if (e.get("metadata") or {}).get("agent")]
    assert [e["text"] for e in agent_lines][-1] == "<b>您好</b>，正在为您核查"
    assert agent_lines[0]["metadata"]["agent"] == "agent1"  # the join message came first

    # Asking again while the ticket is open opens no second one.
    with wallet_db(bot) as db:
        assert db.execute("select count(*) from tickets where sender_id=?", (sender,)).fetchone()[0] == 1

    assert agent2.post(f"tickets/{ticket['id']}/resolve")[0] == 409
    assert agent1.post(f"tickets/{ticket['id']}/resolve")[0] == 200
    state = tracker(bot.base, sender)
    assert state["paused"] is False
    assert state["latest_action_name"] == "action_listen"
    assert any(e["event"] == "resume" for e in state["events"])
    last_bot = [e for e in state["events"] if e["event"] == "bot"][-1]
    assert "人工服务已结束" in last_bot["text"]

    # The bot is back: a typed score is stored for the ticket.
    thanks = bot.text(sender, "5分")
    assert "感谢您的评价" in thanks
    with wallet_db(bot) as db:
        row = db.execute("select score from feedback where ticket_id=?", (ticket["id"],)).fetchone()
    assert row == (5,)
    _, detail = agent1.get(f"tickets/{ticket['id']}")
    assert detail["status"] == "resolved" and detail["csat"] == 5
    # And it answers FAQs again.
    assert "提现" in bot.text(sender, "怎么提现")


def test_confirmed_freeze_freezes_and_jumps_the_queue(bot):
    bot.text("someone-waiting", "转人工")
    ask = bot.say("lisi", "我的账户被盗了，有不明交易")
    assert "冻结" in ask[0]["text"] and ask[0]["buttons"][0]["payload"] == "/affirm"
    frozen = bot.text("lisi", "/affirm")
    assert "已为您冻结账户" in frozen and "下一位" in frozen
    with wallet_db(bot) as db:
        assert db.execute("select frozen from users where user_id='U1002'").fetchone() == (1,)
    _, queue = Desk(bot.base, "agent2").get("tickets")
    queued = [t for t in queue["tickets"] if t["status"] == "queued"]
    assert queued[0]["sender_id"] == "lisi" and queued[0]["priority"] == 1
    assert queued[0]["category"] == "account_compromised"


def test_complaint_escalated_on_request(bot):
    offer = bot.say("complainer", "我要投诉你们的客服")
    assert offer[0]["buttons"][0]["payload"] == "/affirm"
    assert "工单号" in bot.text("complainer", "/affirm")
    ticket = Desk(bot.base, "agent1").ticket_for("complainer")
    assert ticket["category"] == "complain" and ticket["priority"] == 2
    assert ticket["user_id"] is None  # an unbound REST sender


def test_bad_desk_input_gets_clear_errors(bot):
    desk = Desk(bot.base, "agent2")
    assert desk.get("tickets/999999")[0] == 404
    assert desk.get("tickets/abc")[0] == 404
    status, body = request(f"{desk.base}/api/tickets/1/reply", raw=b"text=x", token=desk.token,
                           headers={"Content-Type": "application/x-www-form-urlencoded"}, method="POST")
    assert status == 415
    bot.text("empty-reply", "转人工")
    ticket = desk.ticket_for("empty-reply")
    desk.post(f"tickets/{ticket['id']}/claim")
    assert desk.post(f"tickets/{ticket['id']}/reply", {"text": "   "})[0] == 400
    assert desk.post(f"tickets/{ticket['id']}/reply", {"text": "x" * 5000})[0] == 400
    assert desk.post(f"tickets/{ticket['id']}/reply", {"text": ["list"]})[0] == 400


def test_web_channel_endpoints_answer_bad_input_clearly(bot):
    web = f"{bot.base}/webhooks/web"
    assert request(f"{web}/token", body={"user": "wangwu"})[0] == 400
    assert request(f"{web}/token", body=["zhangsan"])[0] == 400
    assert request(f"{web}/token", raw=b"{not json", method="POST",
                   headers={"Content-Type": "application/json"})[0] == 400
    status, anon = request(f"{web}/token", body={})
    assert status == 200 and anon["user"] is None
    assert request(f"{web}/history")[0] == 401
    assert request(f"{web}/history", token="forged.token.value")[0] == 401
    status, history = request(f"{web}/history", token=anon["token"])
    assert status == 200 and history == {"messages": [], "paused": False}
    for path in ("static/../../credentials.yml", "static/chat.html", "static/%2e%2e/web.py"):
        assert request(f"{web}/{path}")[0] == 404
    status, page = request(f"{web}/chat")
    assert status == 200 and "OK钱包 在线客服" in page
