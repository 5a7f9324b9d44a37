import pytest

from walletbot.nlu.normalize import normalize_text, to_halfwidth, to_simplified


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("ＷＤ２０２６１１１８０００２", "WD202611180002"),
        ("ｔｏｐ　ｕｐ", "top up"),
        ("￥５００", "¥500"),
    ],
)
def test_full_width_is_folded(raw, expected):
    assert to_halfwidth(raw) == expected


def test_chinese_punctuation_is_kept():
    assert to_halfwidth("你好，在吗？") == "你好，在吗？"


@pytest.mark.parametrize(
    "raw, expected",
    [("怎麼提現", "怎么提现"), ("帳戶被盜了", "帐户被盗了"), ("綁定銀行卡", "绑定银行卡")],
)
def test_traditional_becomes_simplified(raw, expected):
    assert to_simplified(raw) == expected


@pytest.mark.parametrize(
    "text",
    ["ＷＤ２０２６ 提現還沒到帳！", "😂😂😂 怎麼辦", "ﬁ ligature ㈠ ①", "", "   "],
)
def test_length_is_preserved(text):
    # Entity offsets in the training data rely on this.
    assert len(normalize_text(text)) == len(text)
