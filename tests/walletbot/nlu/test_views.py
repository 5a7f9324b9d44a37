"""The pinyin view puts homophone typos and typed pinyin where the words are."""

import pytest

from walletbot.nlu.views import chars_view, pinyin_view


@pytest.mark.parametrize("typed, meant", [
    ("充植方式", "充值方式"),
    ("提现手续废", "提现手续费"),
    ("验证吗收不到", "验证码收不到"),
    ("退宽多久到", "退款多久到"),
    ("chongzhi fangshi", "充值方式"),
    ("chong2 zhi2 fang1 shi4", "充值方式"),
    ("ChongZhi FangShi", "充值方式"),
])
def test_typos_and_pinyin_meet_the_characters(typed, meant):
    assert pinyin_view(typed) == pinyin_view(meant)


def test_pinyin_view_keeps_latin_words_and_drops_the_rest():
    assert pinyin_view("2FA怎么开？") == "fazenmekai"
    assert pinyin_view("top up 有上限吗") == "topupyoushangxianma"
    assert pinyin_view("1234 ！！") == ""


def test_chars_view_lowercases_and_folds_spaces():
    assert chars_view("Top  Up\t多少") == "top up 多少"
