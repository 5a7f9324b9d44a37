from pathlib import Path
from typing import Callable

import pytest


@pytest.fixture
def make_kb(tmp_path: Path) -> Callable[..., Path]:
    """Writes a tiny knowledge base: ``make_kb(name=yaml_text, ...)``."""

    def _make(**files: str) -> Path:
        kb = tmp_path / "faq"
        kb.mkdir(exist_ok=True)
        for name, text in files.items():
            (kb / f"{name}.yml").write_text(text, encoding="utf-8")
        return kb

    return _make


WITHDRAW = """\
intent: withdraw_fee
title: 提现手续费
answer: |-
  提现手续费：{{withdraw_fee}}。
  每次提现页面都会显示手续费。
questions:
  - 提现手续费多少
  - 提现要扣钱吗
  - 提现要扣钱吗
"""

REGISTER = """\
intent: register
title: 注册
answer: 下载APP，用手机号注册。
questions:
  - 怎么注册
  - 如何开户
"""

PLACEHOLDERS = 'withdraw_fee: "【待配置：提现手续费标准】"\n'
