"""Transaction lookups through the REST channel with the real servers."""

import pytest

pytestmark = pytest.mark.slow


def test_zhangsan_gets_his_overdue_withdrawal(bot):
    text = bot.text("zhangsan", "帮我查一下 wd 2026 1118 0002")
    assert "1000.00元" in text and "处理中" in text and "超时" in text
    assert "转人工" in text  # the escalation offer


def test_lisi_gets_the_not_found_answer_for_zhangsans_order(bot):
    theirs = bot.text("lisi", "帮我查一下 wd 2026 1118 0002")
    missing = bot.text("lisi", "帮我查一下 WD209912310009")
    assert "没有找到订单号为 WD202611180002" in theirs
    assert theirs == missing.replace("WD209912310009", "WD202611180002")
    for leak in ("1000", "处理中", "张三", "6789"):
        assert leak not in theirs


def test_recent_topups_are_listed_and_one_can_be_picked(bot):
    listing = bot.say("zhangsan-2", "我最近的充值到账了吗")
    # zhangsan-2 is not bound: no data, offered a human.
    assert "身份" in listing[0]["text"]

    listing = bot.say("zhangsan", "我最近的充值到账了吗")
    text = "\n".join(m.get("text", "") for m in listing)
    assert "TU202611210003" in text and "TU202611200001" in text and "WD" not in text
    buttons = [b for m in listing for b in m.get("buttons", [])]
    picked = bot.text("zhangsan", buttons[0]["payload"])
    assert "TU202611210003" in picked and "等待银行确认" in picked


def test_invalid_replies_are_reasked_then_a_human_is_offered(bot):
    bot.say("zhangsan", "再见")
    first = bot.text("zhangsan", "帮我查个订单")
    assert "订单号" in first
    hint = bot.text("zhangsan", "abc123")
    assert "不是有效的订单号" in hint
    final = bot.text("zhangsan", "xyz")
    assert "转人工" in final or "人工客服" in final
