"""Everyday ways of typing personal data, shared by the unit and end-to-end tests.

Each variant is ``(text, secrets, kept)``: after masking, no secret may be
left in the text, even with the separators, widths and numerals folded away
(see :func:`squash`); every ``kept`` string must still be there.
"""

from __future__ import annotations

import re
from typing import List, NamedTuple, Tuple

from walletbot.privacy import CHINESE_DIGITS, fold

CARD = "6222020200112233445"
CARD_HEAD = CARD[:-4]  # what must go; the last four (3445) stay
ID18 = "110101199003071234"
IDX = "11010119900307123X"
PHONE = "13812345678"
PHONE_MIDDLE = "1381234"  # the first seven; the shape kept is 138****5678
ORDER = "WD202611180002"
AMOUNT = "1000元"


class Variant(NamedTuple):
    text: str
    secrets: Tuple[str, ...]
    kept: Tuple[str, ...] = ()


def squash(text: str) -> str:
    """The text folded, Chinese numerals as digits, separators gone, lower case."""
    folded = "".join(CHINESE_DIGITS.get(c, c) for c in fold(text))
    return re.sub(r"[\s._/\\\-\u200b]", "", folded).lower()


def fw(text: str) -> str:
    """Full-width form of ASCII letters and digits."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


_CARDS = [
    CARD,
    "6222 0202 0011 2233 445",
    "6222.0202.0011.2233.445",
    "6222-0202-0011-2233-445",
    "6222－0202－0011－2233－445",
    "6222_0202_0011_2233_445",
    "6222/0202/0011/2233/445",
    fw(CARD),
    "6222\u30000202\u30000011\u30002233\u3000445",
    "6222\u00a00202\u00a00011\u00a02233\u00a0445",
    "6222  0202   0011  2233 445",
    "6222 - 0202 - 0011 - 2233 - 445",
    "6222·0202·0011·2233·445",
    "6222—0202—0011—2233—445",
    "6222\u200b0202\u200b0011\u200b2233\u200b445",
    fw("6222 0202 0011 2233 445"),
    "六二二二〇二〇二〇〇一一二二三三四四五",
    "六二二二 〇二〇二 〇〇一一 二二三三 四四五",
    "62220202 00112233 445",
    "622202 0200112233445",
]
_PHONES = [
    PHONE,
    "138 1234 5678",
    "138-1234-5678",
    "138.1234.5678",
    "138_1234_5678",
    "138/1234/5678",
    "+86 138 1234 5678",
    "+8613812345678",
    "+86138 1234 5678",
    "0086 13812345678",
    "0086-138-1234-5678",
    "86-138-1234-5678",
    fw(PHONE),
    "１３８\u3000１２３４\u3000５６７８",
    "138\u00a01234\u00a05678",
    "幺三八一二三四五六七八",
    "一三八 一二三四 五六七八",
    "1 3 8 1 2 3 4 5 6 7 8",
    "138 - 1234 - 5678",
    "(+86) 13812345678",
]

VARIANTS: List[Variant] = (
    [Variant(f"我的卡号是{c}，帮我看看", (CARD_HEAD,), ("3445",)) for c in _CARDS]
    + [
        Variant("卡号：4111 1111 1111 1111", ("411111111111",), ("1111",)),
        Variant("card 6217.0012.3456.7890", ("621700123456",), ("7890",)),
        Variant("my card is 6222020200112233445 thanks", (CARD_HEAD,), ("3445",)),
        Variant(f"银行卡{CARD}手机{PHONE}", (CARD_HEAD, PHONE_MIDDLE), ("3445", "5678")),
        Variant(f"{CARD} {PHONE}", (CARD_HEAD, PHONE_MIDDLE), ("5678",)),
    ]
    + [Variant(f"手机{p}收不到短信", (PHONE_MIDDLE,), ("5678",)) for p in _PHONES]
    + [
        Variant(f"身份证{ID18}", (ID18[:-4],), ("1234",)),
        Variant(f"身份证号{IDX}", (IDX[:-4].lower(),), ("123X",)),
        Variant("身份证号11010119900307123x", (IDX[:-4].lower(),), ("123x",)),
        Variant("身份证 110101 19900307 1234", (ID18[:-4],), ("1234",)),
        Variant("身份证 110101 19900307 123X", (IDX[:-4].lower(),), ("123X",)),
        Variant("身份证 110101 1990 0307 123 X", (IDX[:-4].lower(),), ("X",)),
        Variant("身份证110101-1990-0307-123x", (IDX[:-4].lower(),), ("123x",)),
        Variant(f"身份证{fw(IDX)}", (IDX[:-4].lower(),), ()),
        Variant("身份證號碼110101199003071234", (ID18[:-4],), ("1234",)),
        Variant("老身份证110101900307123", ("11010190030",), ("7123",)),
        Variant("身份证 110101 900307 123", ("11010190030",), ("123",)),
        Variant("ID: 110101.19900307.1234", (ID18[:-4],), ("1234",)),
    ]
    + [
        Variant("我的支付密码是123456", ("123456",)),
        Variant("密码是：Abc@2026", ("abc@2026",)),
        Variant("登录密码：Abc@2026，谢谢", ("abc@2026",), ("谢谢",)),
        Variant("密码:Abc@2026", ("abc@2026",)),
        Variant("密码就是abc123", ("abc123",)),
        Variant("密碼是abc123", ("abc123",)),
        Variant("密碼：Ｐａｓｓ１２３", ("pass123",)),
        Variant("my password is hunter2", ("hunter2",)),
        Variant("MY PASSWORD IS Hunter2!", ("hunter2",)),
        Variant("password: hunter2", ("hunter2",)),
        Variant("password=hunter2 谢谢", ("hunter2",), ("谢谢",)),
        Variant("pwd 9x8y7z", ("9x8y7z",)),
        Variant("PIN 4321", ("4321",)),
        Variant("pin码是135790", ("135790",)),
        Variant("my pin number is 4321", ("4321",)),
        Variant("口令是qwe123", ("qwe123",)),
        Variant("密码为 881234", ("881234",)),
        Variant("登录密码 abc123 怎么登不上", ("abc123",), ("怎么登不上",)),
        Variant("密码123456", ("123456",)),
        Variant("密码 1 2 3 4 5 6", ("123456",)),
        Variant("密码是１２３４５６", ("123456",)),
        Variant("密码是一二三四五六", ("123456",)),
        Variant("取款密码也是654321", ("654321",)),
        Variant("密码改成了Abc@2027", ("abc@2027",)),
        Variant("我的密码是“abc123”", ("abc123",)),
        Variant("密码是 123 456", ("123456",)),
    ]
    + [
        Variant("验证码884512", ("884512",)),
        Variant("验证码是884512", ("884512",)),
        Variant("验证码：884512", ("884512",)),
        Variant("验证码就是884512", ("884512",)),
        Variant("验证码 8 8 4 5 1 2", ("884512",)),
        Variant("验证码 8845 12 对吗", ("884512",), ("对吗",)),
        Variant("验证码８８４５１２", ("884512",)),
        Variant("验证码 ８８４５ １２", ("884512",)),
        Variant("验证码八八四五一二", ("884512",)),
        Variant("驗證碼是884512", ("884512",)),
        Variant("短信码 6612", ("6612",)),
        Variant("动态码：77889900", ("77889900",)),
        Variant("校验码 123 456", ("123456",)),
        Variant("code 884512", ("884512",)),
        Variant("verification code: 8845 12", ("884512",)),
        Variant("OTP: 443322", ("443322",)),
        Variant("验证码是884512，金额1000元", ("884512",), ("1000元",)),
    ]
    + [
        Variant(f"卡号{CARD}，身份证{IDX}，手机+86 138-1234-5678，支付密码是Abc12345，"
                "验证码 8 8 4 5 1 2，帮我看看", (CARD_HEAD, IDX[:-4].lower(), PHONE_MIDDLE,
                                              "abc12345", "884512"), ("帮我看看",)),
    ]
)

# Contexts each variant is also tried in: what the bot needs must survive.
CONTEXTS = [
    ("订单WD202611180002提现1000元没到，{}", ("WD202611180002", "1000元")),
    ("{}。订单号 wd 2026 1118 0002，¥500", ("wd 2026 1118 0002", "¥500")),
    ("2026-11-18 提现 1,000.00 元，{} TU202611200001", ("2026-11-18", "1,000.00 元",
                                                     "TU202611200001")),
]
