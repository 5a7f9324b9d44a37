"""Wallet vocabulary shared by the entity rules and the jieba dictionary."""

from __future__ import annotations

from typing import Dict, Tuple

# Canonical transaction type -> words users type for it (simplified, after
# normalisation). Longer words first does not matter: matching picks the
# longest span itself.
TX_TYPE_SYNONYMS: Dict[str, Tuple[str, ...]] = {
    "topup": (
        "充值", "充钱", "存钱", "冲值", "充直", "充进去", "充进", "充了", "充的",
        "入金", "top up", "topup", "top-up", "recharge", "deposit",
    ),
    "withdraw": (
        "提现", "取现", "提款", "体现", "提钱", "取钱", "提出来", "提到卡",
        "转出到卡", "withdraw", "withdrawal", "cash out",
    ),
    "transfer": (
        "转账", "转钱", "汇款", "转给", "打款", "转过去", "transfer",
    ),
    "refund": (
        "退款", "退钱", "退回", "退费", "refund",
    ),
}

# Order numbers: type prefix, 8-digit date, 4-digit sequence.
ORDER_PREFIXES: Tuple[str, ...] = ("TU", "WD", "TR", "RF")
ORDER_ID_PATTERN = r"(?:TU|WD|TR|RF)\d{12}"

CURRENCY_PREFIXES: Tuple[str, ...] = ("¥", "￥", "RMB", "rmb", "CNY", "cny")
CURRENCY_SUFFIXES: Tuple[str, ...] = (
    "元", "块", "块钱", "元钱", "圆", "rmb", "RMB", "人民币", "CNY", "cny",
)
