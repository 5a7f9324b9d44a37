"""What users see when processes die or dependencies fail, and where PII ends up."""

from __future__ import annotations

import pytest

from tests.e2e.desk_client import Desk, tracker
from tests.e2e.processes import Stack
from walletbot.turns import screening as guard
from walletbot.handoff import wording

pytestmark = pytest.mark.slow

SECRETS = ["6222020200112233445", "110101199003071234", "13812345678", "Abc12345"]


@pytest.fixture(scope="module")
def stack(trained_model, tmp_path_factory):
    running = Stack(trained_model, tmp_path_factory.mktemp("reliability"), 15505, 15555)
    running.start_actions()
    running.start_rasa()
    yield running
    running.stop()


def test_personal_data_never_reaches_the_stores_or_the_logs(stack):
    replies = stack.say("pii-user", "我的卡号6222020200112233445，身份证110101199003071234，"
                                    "手机13812345678，支付密码是Abc12345，帮我看看")
    assert replies[0]["text"] == guard.PII_REMINDER
    assert "工单号" in stack.text("pii-user", "转人工")
    stored = tracker(stack.base, "pii-user")
    texts = [e.get("text") or "" for e in stored["events"]]
    assert any("***3445" in t for t in texts)
    for path in ["tracker.db", "wallet.db", "rasa.log", "actions.log"]:
        blob = (stack.var / path).read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in blob, f"{secret} found in {path}"


def test_kill_9_mid_conversation_loses_nothing(stack):
    # zhangsan is inside the lookup form, waiting to give an order number;
    # lisi has an open ticket.
    ask = stack.text("zhangsan", "我的提现还没到账")
    assert "订单号" in ask
    assert "工单号" in stack.text("lisi", "转人工")
    before = tracker(stack.base, "zhangsan")
    assert before["active_loop"]["name"] == "transaction_form"

    stack.kill_rasa()
    stack.kill_actions()
    stack.start_actions()
    stack.start_rasa()

    after = tracker(stack.base, "zhangsan")
    assert after["active_loop"] == before["active_loop"]
    assert after["slots"]["requested_slot"] == "order_id"
    assert len(after["events"]) >= len(before["events"])
    answer = stack.text("zhangsan", "WD202611180002")
    assert "1000.00元" in answer and "处理中" in answer
    assert tracker(stack.base, "lisi")["paused"] is True
    ticket = Desk(stack.base, "agent1").ticket_for("lisi")
    assert ticket["status"] == "queued"


def test_action_server_down_gives_an_apology_and_keeps_the_message(stack):
    stack.kill_actions()
    try:
        reply = stack.text("zhangsan", "帮我查一下TU202611200001")
        assert reply == guard.FAILED
        users = [e["text"] for e in tracker(stack.base, "zhangsan")["events"] if e["event"] == "user"]
        assert users[-1] == "帮我查一下TU202611200001"
        # Answers that need no action still work, for new conversations too.
        assert "提现步骤如下" in stack.text("zhangsan", "怎么提现")
        assert "提现步骤如下" in stack.text("new-user", "怎么提现")
    finally:
        stack.start_actions()
    assert "TU202611200001" in stack.text("zhangsan", "帮我查一下TU202611200001")


def test_wallet_db_down_gives_an_apology_then_recovers(stack):
    stack.kill_actions()
    stack.start_actions(WALLET_DB_URL="postgresql://nobody:nothing@127.0.0.1:9/wallet")
    try:
        reply = stack.text("zhangsan", "帮我查一下WD202611010004")
        assert "交易查询系统暂时无法访问" in reply
        assert stack.text("db-down-user", "转人工") == wording.HANDOFF_UNAVAILABLE
        assert tracker(stack.base, "db-down-user")["paused"] is False
    finally:
        stack.kill_actions()
        stack.start_actions()
    assert "失败" in stack.text("zhangsan", "帮我查一下WD202611010004")
