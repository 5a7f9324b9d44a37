from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from walletbot.store.rows import Transaction
from walletbot.transactions import describe as d

NOW = datetime(2026, 11, 24, 4, 0, tzinfo=timezone.utc)  # Tue 12:00 in China


def tx(**overrides):
    base = dict(
        order_id="WD202611180002", user_id="U1001", tx_type="withdraw",
        amount=Decimal("1000.00"), currency="CNY", method="bank_card", status="processing",
        created_at=datetime(2026, 11, 18, 2, 0, tzinfo=timezone.utc),
        updated_at=datetime(2026, 11, 18, 2, 5, tzinfo=timezone.utc),
        destination="尾号6789的银行卡",
    )
    base.update(overrides)
    return Transaction(**base)


def test_working_days_skip_weekends():
    assert d.add_working_days(date(2026, 11, 18), 3) == date(2026, 11, 23)  # Wed -> Mon
    assert d.add_working_days(date(2026, 11, 20), 1) == date(2026, 11, 23)  # Fri -> Mon


def test_withdrawal_past_three_working_days_is_overdue():
    text = d.describe(tx(), NOW)
    assert d.is_overdue(tx(), NOW)
    assert "1000.00元" in text and "处理中" in text and "超时" in text
    assert "11月23日" in text


def test_withdrawal_inside_the_window_gives_expected_date():
    fresh = tx(created_at=datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    text = d.describe(fresh, NOW)
    assert not d.is_overdue(fresh, NOW)
    assert "1-3个工作日" in text and "11月26日" in text and "超时" not in text


def test_failed_withdrawal_gives_reason_and_next_step():
    failed = tx(status="failed", failure_reason="银行卡信息有误", note="资金已退回钱包余额")
    text = d.describe(failed, NOW)
    assert "失败" in text and "银行卡信息有误" in text and "重新提交" in text
    assert "资金已退回钱包余额" in text
    assert not d.is_overdue(failed, NOW)


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (dict(tx_type="topup", status="success", method="alipay", order_id="TU202611200001"), "支付宝"),
        (dict(tx_type="topup", status="pending", method="bank_transfer"), "等待银行确认"),
        (dict(tx_type="transfer", status="success", destination="李四"), "转给李四"),
        (dict(tx_type="refund", status="processing", method="merchant"), "处理中"),
    ],
)
def test_each_type_and_status_is_worded(overrides, expected):
    assert expected in d.describe(tx(**overrides), NOW)


def test_short_line_for_lists():
    line = d.short_line(tx(tx_type="topup", status="success", order_id="TU202611200001",
                           created_at=datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)))
    assert line == "TU202611200001 充值 1000.00元 已到账（11月20日）"
