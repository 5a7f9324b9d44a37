import pytest

from walletbot.nlu.entities import WalletEntityRules, normalize_order_id, parse_amount


@pytest.fixture(scope="module")
def rules() -> WalletEntityRules:
    return WalletEntityRules()


def values(rules, text, entity):
    return [m.value for m in rules.extract(text) if m.entity == entity]


@pytest.mark.parametrize(
    "text",
    [
        "帮我查一下 wd 2026 1118 0002",
        "订单号是WD202611180002",
        "ＷＤ２０２６１１１８０００２",
        "单号wd202611180002呢",
        "Wd20261118 0002 还没到",
    ],
)
def test_order_id_in_any_typing(rules, text):
    assert values(rules, text, "order_id") == ["WD202611180002"]


@pytest.mark.parametrize("text", ["XX202611180002", "WD2026111800", "电话13800138000"])
def test_things_that_are_not_order_ids(rules, text):
    assert values(rules, text, "order_id") == []


def test_order_id_offsets_point_into_the_original_text(rules):
    text = "查 ｗｄ２０２６１１１８０００２ 谢谢"
    (match,) = [m for m in rules.extract(text) if m.entity == "order_id"]
    assert text[match.start : match.end] == "ｗｄ２０２６１１１８０００２"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("我最近的充值到账了吗", "topup"),
        ("充钱没到", "topup"),
        ("我想top up一下", "topup"),
        ("体现三天了", "withdraw"),
        ("提現還沒到", "withdraw"),
        ("取钱到卡", "withdraw"),
        ("转给李四的钱", "transfer"),
        ("汇款对方没收到", "transfer"),
        ("退款到哪了", "refund"),
        ("上周储值的那笔", "topup"),
        ("轉帳給房東", "transfer"),
        ("ATM取款失败了", "withdraw"),
    ],
)
def test_tx_type_synonyms_map_to_canonical_values(rules, text, expected):
    assert values(rules, text, "tx_type") == [expected]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("充了500元", ["500"]),
        ("¥1500", ["1500"]),
        ("五百块那笔", ["500"]),
        ("两千块钱", ["2000"]),
        ("退款59.9元到哪了", ["59.9"]),
        ("金额是1000", ["1000"]),
        ("我想top up 1000rmb", ["1000"]),
        ("我有3个问题", []),
        # A bare number right after a transaction word is money...
        ("昨晚充值了1500怎么还没到", ["1500"]),
        ("给同事转账650没收到", ["650"]),
        ("取款8000", ["8000"]),
        ("上午提现的2000到哪了", ["2000"]),
        # ...unless a unit makes it a count or a time.
        ("提现4天了", []),
        ("提现2次都失败", []),
        ("转账3个工作日", []),
        # Standalone Chinese numerals in hundreds or more, however jieba splits them.
        ("大概一千五，记不清了", ["1500"]),
        ("三百", ["300"]),
        ("等了三百年", []),
        ("第一百次", []),
        ("两千多", []),
        # 快 typed for 块 after digits, but not "soon".
        ("60快的那笔", ["60"]),
        ("60快到了吗", []),
    ],
)
def test_amounts(rules, text, expected):
    assert values(rules, text, "amount") == expected


def test_order_id_wins_over_an_amount_glued_to_it(rules):
    found = [(m.entity, m.value) for m in rules.extract("wd2026111800021000元")]
    assert ("order_id", "WD202611180002") in found
    assert all(entity != "amount" for entity, _ in found)


@pytest.mark.parametrize("text", ["", "   ", "😂😂😂", "\x00\x01", "a" * 5000])
def test_odd_input_does_not_crash(rules, text):
    assert isinstance(rules.extract(text), list)


def test_normalize_order_id():
    assert normalize_order_id(" tu-2026 1120-0001 ") == "TU202611200001"
    assert normalize_order_id("TU2026112000011") is None


def test_parse_amount():
    assert parse_amount("¥1,000") == "1000"
    assert parse_amount("五百块") == "500"
    assert parse_amount("0元") is None
    assert parse_amount("abc") is None
