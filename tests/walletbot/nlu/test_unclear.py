"""Text that says nothing is told apart from short text that does."""

import pytest

from walletbot.nlu.unclear import UnclearText, is_pinyin, squeeze

TRAINING = ["嗯嗯", "好的", "ok", "refund要多久", "tixian shouxufei", "谢谢", "88", "hi", "★★★★★"]


@pytest.fixture(scope="module")
def unclear():
    return UnclearText.from_training(TRAINING)


@pytest.mark.parametrize("text", [
    "sdfghjkl", "qwerty uiop", "zxcvbnm", "？？？", "。。。", "🍎🍌🍇", "！！",
    "哈哈哈哈哈哈", "的的的的的", "嗯嗯啊啊哦哦", "1234567", "000000", "9876543",
])
def test_mashing_and_bare_interjections_are_unclear(unclear, text):
    assert unclear.reason(text)


@pytest.mark.parametrize("text", [
    "嗯嗯", "嗯嗯嗯", "ok", "OK!", "hi", "88", "refund", "chongzhi fangshi", "zhuan rengong",
    "how do I withdraw", "提现", "500", "2500", "WD202611180002", "wd 2026 1118 0002",
    "啊 提现多久到", "为啥啊", "★★★", "嗯嗯！",
])
def test_short_real_messages_are_not_unclear(unclear, text):
    assert unclear.reason(text) is None


def test_pinyin_segmentation():
    assert is_pinyin("chongzhi") and is_pinyin("zhuanrengong") and is_pinyin("a")
    assert not is_pinyin("sdfg") and not is_pinyin("qwerty")


def test_squeeze_folds_runs():
    assert squeeze("嗯嗯嗯好好") == "嗯好"
