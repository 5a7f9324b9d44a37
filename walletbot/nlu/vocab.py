"""Wallet vocabulary shared by the entity rules and the jieba dictionary."""

from __future__ import annotations

from typing import Dict, Tuple

# Canonical transaction type -> words users type for it (simplified, after
# normalisation). Longer words first does not matter: matching picks the
# longest span itself.
TX_TYPE_SYNONYMS: Dict[str, Tuple[str, ...]] = {
    "topup": (
        "充值", "充钱", "存钱", "冲值", "充直", "充植", "充进去", "充进", "充了", "充的",
        "入金", "储值", "top up", "topup", "top-up", "recharge", "deposit",
    ),
    "withdraw": (
        "提现", "取现", "提款", "取款", "体现", "提先", "提钱", "取钱", "提出来", "提到卡",
        "转出到卡", "withdraw", "withdrawal", "cash out",
    ),
    "transfer": (
        "转账", "转帐", "转钱", "汇款", "转给", "打款", "转过去", "transfer",
    ),
    "refund": (
        "退款", "退钱", "退回", "退费", "退宽", "refund",
    ),
}

# Order numbers: type prefix, 8-digit date, 4-digit sequence.
ORDER_PREFIXES: Tuple[str, ...] = ("TU", "WD", "TR", "RF")
ORDER_ID_PATTERN = r"(?:TU|WD|TR|RF)\d{12}"

CURRENCY_PREFIXES: Tuple[str, ...] = ("¥", "￥", "RMB", "rmb", "CNY", "cny")
CURRENCY_SUFFIXES: Tuple[str, ...] = (
    "元", "块", "块钱", "元钱", "圆", "rmb", "RMB", "人民币", "CNY", "cny",
)
# 块 typed as its homophone 快 ("800快"); only trusted right after digits.
TYPO_CURRENCY_SUFFIXES: Tuple[str, ...] = ("快钱", "快")
# Words after a number that make it a count, a time or a date, not money.
NON_MONEY_UNITS: Tuple[str, ...] = (
    "天", "日", "号", "月", "年", "周", "个", "次", "笔", "小时", "分钟", "分", "秒", "点",
    "多", "个工作日", "工作日", "%", "岁", "人", "位", "张", "遍", "倍",
)
