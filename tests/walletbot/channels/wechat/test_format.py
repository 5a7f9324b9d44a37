"""Rendering the bot's messages as WeChat text."""

import pytest

from walletbot.channels.wechat.format import (
    BUTTON_HINT,
    MAX_TEXT_BYTES,
    choice_payload,
    format_turn,
    split_text,
    utf8_len,
)


def test_short_text_is_one_part():
    assert split_text("  提现一般1-3个工作日到账。\n") == ["提现一般1-3个工作日到账。"]
    assert split_text("   \n ") == []


def test_long_text_splits_on_line_boundaries():
    lines = [f"第{i}行：" + "钱包" * 40 for i in range(60)]
    parts = split_text("\n".join(lines))
    assert len(parts) > 1
    assert all(utf8_len(p) <= MAX_TEXT_BYTES for p in parts)
    assert "\n".join(parts) == "\n".join(lines)  # nothing lost, every cut at a line end
    for part in parts:
        assert part.split("\n")[0].startswith("第")


def test_a_single_overlong_line_is_cut_between_characters():
    line = "中文😀" * 1000
    parts = split_text(line, 100)
    assert all(utf8_len(p) <= 100 for p in parts)
    assert "".join(parts) == line


def test_limit_must_fit_a_character():
    with pytest.raises(ValueError):
        split_text("x", 3)


def test_buttons_become_numbered_options_across_a_turn():
    turn = format_turn([
        {"text": "请选择要查询的订单："},
        {"text": "最近的充值", "buttons": [
            {"title": "TU202611210003", "payload": "/inform{\"order_id\": \"TU202611210003\"}"},
            {"title": "TU202611200001", "payload": "/inform{\"order_id\": \"TU202611200001\"}"},
        ]},
        {"text": "需要人工吗？", "buttons": [{"title": "转人工", "payload": "/request_human"}]},
        {"image": "https://example.com/a.png"},
        {"custom": {"handoff": True}},
        {"custom": {"text": "客服稍后联系您"}},
    ])
    text = "\n\n".join(turn.texts)
    assert "1. TU202611210003\n2. TU202611200001" in text
    assert "3. 转人工" in text
    assert text.count(BUTTON_HINT) == 2
    assert "图片：https://example.com/a.png" in text
    assert "客服稍后联系您" in text and "handoff" not in text
    assert turn.choices[2] == "/request_human"
    assert turn.chunks() == [text]


def test_digit_replies_pick_options():
    choices = ["/a", "/b", "/c"]
    assert choice_payload("2", choices) == "/b"
    assert choice_payload(" ３ ", choices) == "/c"  # full-width digit
    assert choice_payload("1.", choices) == "/a"
    assert choice_payload("4", choices) is None
    assert choice_payload("0", choices) is None
    assert choice_payload("12345", choices) is None
    assert choice_payload("选2", choices) is None
    assert choice_payload("1", []) is None
