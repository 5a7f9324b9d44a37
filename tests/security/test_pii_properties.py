"""Properties of the masking, over numbers hypothesis makes up.

Card, ID and phone numbers come in random groupings, separators (spaces of
every width, dots, dashes, underscores, slashes, repeated) and character
widths; they must be masked wherever they sit. Order numbers, amounts and
dates, however written, must never change.
"""

from __future__ import annotations

import os
import re
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.corpus import squash
from walletbot.privacy import fold, mask_pii

# More examples for a long hunt: WALLETBOT_PII_EXAMPLES=5000 pytest tests/security
SETTINGS = settings(max_examples=int(os.environ.get("WALLETBOT_PII_EXAMPLES", "300")),
                    deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

SEPARATORS = st.sampled_from([
    " ", "  ", "   ", "\u3000", "\u00a0", ".", "．", "-", "－", "—", "_", "/", " - ", "·", "\t",
])
FILLER = st.sampled_from(["", "我的", "麻烦帮我查一下", "请问", "好的，", "嗯 "])
AFTER = st.sampled_from(["", "，谢谢", "。", " 怎么办", "！", "?"])


def digit_strings(prefixes, length):
    """Digit strings of exactly ``length`` that start with one of ``prefixes``."""
    return st.sampled_from(prefixes).flatmap(lambda p: st.text(
        "0123456789", min_size=length - len(p), max_size=length - len(p)).map(lambda r: p + r))


@st.composite
def typed(draw, digits: str) -> str:
    """``digits`` as a user might type them: grouped, separated, half or full width."""
    out, i = [], 0
    separator = draw(SEPARATORS)
    uniform = draw(st.booleans())  # one separator throughout, or any mix
    while i < len(digits):
        size = draw(st.integers(min_value=1, max_value=8))
        if out:
            out.append(separator if uniform else draw(SEPARATORS))
        out.append(digits[i:i + size])
        i += size
    width = draw(st.sampled_from(["half", "full", "mixed"]))
    chars = []
    for char in "".join(out):
        full = width == "full" or (width == "mixed" and draw(st.booleans()))
        chars.append(chr(ord(char) + 0xFEE0) if full and char.isascii() and char.isalnum()
                     else char)
    return "".join(chars)


# UnionPay (62), Visa (4), Mastercard (5), JCB/Amex (3): the cards users have.
cards = st.integers(min_value=16, max_value=19).flatmap(
    lambda n: digit_strings(["62", "4", "5", "35", "60"], n))
birth = st.dates(date(1930, 1, 1), date(2025, 12, 31)).map(lambda d: d.strftime("%Y%m%d"))
id18 = st.tuples(digit_strings(list("12345678"), 6), birth, digit_strings(list("0123456789"), 3),
                 st.sampled_from(list("0123456789Xx"))).map("".join)
id15 = st.tuples(digit_strings(list("12345678"), 6), birth.map(lambda b: b[2:]),
                 digit_strings(list("0123456789"), 3)).map("".join)
phones = digit_strings([f"1{d}" for d in "3456789"], 11)
ORDER_PREFIXES = ["WD", "TU", "TR", "RF", "wd", "tu", "Tr", "rf"]
orders = st.tuples(st.sampled_from(ORDER_PREFIXES),
                   st.integers(min_value=2020, max_value=2030),
                   st.integers(min_value=1, max_value=12), st.integers(min_value=1, max_value=28),
                   st.integers(min_value=1, max_value=9999)).map(
    lambda t: f"{t[0]}{t[1]}{t[2]:02d}{t[3]:02d}{t[4]:04d}")


def spaced_order(order: str, style: int) -> str:
    letters, digits = order[:2], order[2:]
    if style == 0:
        return order
    if style == 1:
        return f"{letters} {digits[:4]} {digits[4:8]} {digits[8:]}"
    if style == 2:
        return f"{letters}-{digits[:4]}-{digits[4:8]}-{digits[8:]}"
    return f"{letters}{digits[:4]} {digits[4:8]} {digits[8:]}"


amounts = st.one_of(
    st.integers(min_value=1, max_value=99_999_999).map(lambda n: f"{n}元"),
    st.integers(min_value=1, max_value=99_999_999).map(lambda n: f"¥{n}"),
    st.integers(min_value=1, max_value=9_999_999).map(lambda n: f"{n:,}.00元"),
    st.integers(min_value=1, max_value=99_999).map(lambda n: f"￥{n}.50"),
    st.integers(min_value=1, max_value=9999).map(lambda n: f"{n}块"),
)
dates = st.tuples(st.dates(date(2000, 1, 1), date(2030, 12, 31)),
                  st.sampled_from(["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日",
                                   "%m月%d号", "%m月%d日"])).map(lambda t: t[0].strftime(t[1]))


def gone(secret: str, masked: str, keep: int = 4) -> bool:
    """Nothing of ``secret`` but its last ``keep`` characters is left in ``masked``."""
    return squash(secret[:-keep] if keep else secret) not in squash(masked)


@SETTINGS
@given(card=cards, data=st.data(), before=FILLER, after=AFTER)
def test_card_numbers_are_masked_in_any_spacing_and_width(card, data, before, after):
    text = f"{before}卡号{data.draw(typed(card))}{after}"
    masked = mask_pii(text)
    assert gone(card, masked), masked
    assert masked.startswith(before) and masked.endswith(after)
    assert "*" * (len(card) - 4) + card[-4:] in masked


@SETTINGS
@given(number=st.one_of(id18, id15), data=st.data(), after=AFTER)
def test_id_numbers_are_masked_in_any_spacing_and_width(number, data, after):
    masked = mask_pii(f"身份证号{data.draw(typed(number))}{after}")
    assert gone(number.lower(), masked.lower()), masked
    assert masked.endswith(after)


@SETTINGS
@given(phone=phones, prefix=st.sampled_from(["", "+86", "+86 ", "0086 ", "0086-", "86 ", "(+86)"]),
       data=st.data(), before=FILLER, after=AFTER)
def test_mobile_numbers_are_masked_in_any_spacing_and_width(phone, prefix, data, before, after):
    masked = mask_pii(f"{before}手机{prefix}{data.draw(typed(phone))}{after}")
    assert f"{phone[:3]}****{phone[-4:]}" in masked
    # Only the country code, the first three and the last four digits are left.
    assert len(re.findall(r"[0-9]", fold(masked))) == len(re.findall(r"[0-9]", prefix)) + 7, masked
    assert masked.endswith(after)


@SETTINGS
@given(order=orders, style=st.integers(0, 3), amount=amounts, date=dates, before=FILLER,
       after=AFTER, last4=st.text("0123456789", min_size=4, max_size=4))
def test_order_numbers_amounts_dates_and_last_fours_never_change(order, style, amount, date,
                                                                 before, after, last4):
    text = f"{before}订单{spaced_order(order, style)}，{date}提现{amount}，尾号{last4}的卡{after}"
    assert mask_pii(text) == text


@SETTINGS
@given(order=orders, style=st.integers(0, 3), amount=amounts, card=cards, phone=phones,
       data=st.data())
def test_what_the_bot_needs_survives_next_to_personal_data(order, style, amount, card, phone,
                                                           data):
    order_text = spaced_order(order, style)
    text = (f"订单{order_text} {data.draw(typed(card))}，提现{amount} "
            f"{data.draw(typed(phone))}")
    masked = mask_pii(text)
    assert order_text in masked and amount in masked, masked
    assert gone(card, masked) and f"{phone[:3]}****{phone[-4:]}" in masked, masked


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("0123456789 .-_/Xx密码是验证码：:卡号一二三幺〇六八元¥WDwd"
                                              "\u3000ａ１")), max_size=80))
def test_masking_is_idempotent_and_keeps_the_folded_length(text):
    masked = mask_pii(text)
    assert mask_pii(masked) == masked
    assert len(fold(text)) == len(text)


@SETTINGS
@given(st.text(max_size=200))
def test_any_text_is_handled(text):
    assert isinstance(mask_pii(text), str)
    assert len(fold(text)) == len(text)
