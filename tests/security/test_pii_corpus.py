"""Personal data as real users type it is masked; what the bot needs is not.

Every variant of :data:`tests.security.corpus.VARIANTS` is checked on its
own and inside sentences with an order number, an amount and a date.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.security.corpus import CONTEXTS, VARIANTS, squash
from walletbot.privacy import contains_pii, find_masks, fold, mask_pii

ROOT = Path(__file__).resolve().parents[2]


def test_the_corpus_is_large_enough():
    assert len(VARIANTS) >= 80


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.text for v in VARIANTS])
def test_the_secret_is_gone(variant):
    masked = mask_pii(variant.text)
    for secret in variant.secrets:
        assert squash(secret) not in squash(masked), masked
    for kept in variant.kept:
        assert kept in masked, masked
    assert contains_pii(variant.text)
    assert mask_pii(masked) == masked, "masking twice changes nothing"


@pytest.mark.parametrize("context, needed", CONTEXTS, ids=["order+amount", "spaced", "date"])
@pytest.mark.parametrize("variant", VARIANTS, ids=[v.text for v in VARIANTS])
def test_order_numbers_amounts_and_dates_survive_next_to_it(variant, context, needed):
    masked = mask_pii(context.format(variant.text))
    for secret in variant.secrets:
        assert squash(secret) not in squash(masked), masked
    for kept in needed:
        assert kept in masked, masked


@pytest.mark.parametrize("text, shape", [
    ("我的卡号是6222020200112233445", "我的卡号是***************3445"),
    ("卡号 6222 0202 0011 2233 445", "卡号 ***************3445"),
    ("身份证号11010119900307123X", "身份证号**************123X"),
    ("手机13812345678收不到验证码", "手机138****5678收不到验证码"),
    ("电话 +86 138-1234-5678", "电话 +86 138****5678"),
    ("手机１３８　１２３４　５６７８", "手机138****5678"),
    ("手机幺三八一二三四五六七八", "手机138****5678"),
    ("卡号六二二二〇二〇二〇〇一一二二三三四四五", "卡号***************3445"),
    ("我的支付密码是123456", "我的支付密码是******"),
    ("密碼是：abc123，谢谢", "密碼是：******，谢谢"),
    ("验证码 8 8 4 5 1 2 对吗", "验证码 ****** 对吗"),
])
def test_output_shapes(text, shape):
    """Masks keep the shapes agents and tests rely on; the rest stays as typed."""
    assert mask_pii(text) == shape


@pytest.mark.parametrize("text", [
    "订单号是 WD202611180002",
    "TU202611200001 到账了吗",
    "tu202611200001到账没",
    "查询订单 WD 2026 1101 0004",
    "wd 2026 1118 0002 怎么还没到",
    "rf-2026-1115-0006 退款到哪了",
    "TR202611190003 和 RF202611150006",
    "WD202611180002 1000",
    "提现1000元三天了",
    "提现 1,000.00 元",
    "¥500 什么时候到",
    "￥１０００",
    "转了 12345.67 元",
    "2026-11-18 提现的",
    "2026/11/18 10:30",
    "2026.11.18",
    "2026年11月18日",
    "11月18号提的",
    "尾号3445的卡",
    "卡号***************3445",
    "手机138****5678",
    "我忘了支付密码怎么办",
    "密码是什么时候要改",
    "支付密码忘了",
    "payment password怎么设置",
    "支付pin忘了",
    "收不到验证码",
    "验证码是多少",
    "验证码60秒后重发",
    "密码为6-20位字母和数字",
    "password_tips",
    "shopping123 退款",
    "客服电话 95188",
    "400-800-8888",
    "",
])
def test_what_the_bot_needs_is_never_masked(text):
    assert mask_pii(text) == text
    assert not contains_pii(text)


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _bot_and_training_texts():
    files = [ROOT / "domain.yml", *sorted((ROOT / "data").rglob("*.yml"))]
    for path in files:
        for text in _strings(yaml.safe_load(path.read_text(encoding="utf-8"))):
            for line in text.splitlines():
                yield path.name, line.strip().removeprefix("- ")


def test_the_bots_own_answers_and_training_examples_are_never_masked():
    """Transcripts mask bot lines too: an answer must reach the agent as the user saw it."""
    changed = [(name, text, mask_pii(text)) for name, text in _bot_and_training_texts()
               if mask_pii(text) != text]
    assert changed == []


def test_masks_are_found_in_the_folded_view_and_applied_to_the_original():
    text = "ＷＤ２０２６１１１８０００２，卡号６２２２\u3000０２０２\u3000００１１\u3000２２３３\u3000４４５！"
    assert len(fold(text)) == len(text)
    (mask,) = find_masks(text)
    assert text[mask.start:mask.end].startswith("６２２２") and text[mask.end] == "！"
    assert mask_pii(text) == "ＷＤ２０２６１１１８０００２，卡号***************3445！"


def test_a_very_long_message_is_masked_quickly():
    import time

    text = ("我的卡号6222020200112233445，" + "1 " * 300 + "提现1000元。") * 3
    started = time.perf_counter()
    masked = mask_pii(text[:2000])
    assert time.perf_counter() - started < 2
    assert "6222020200112233445" not in masked
