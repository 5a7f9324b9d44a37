"""The supervisor's figures on a scripted day: the function, the desk's API and ``walletbot report``.

The browser half (the numbers as the page shows them) is test_dashboard_browser.py.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict

import pytest

from tests.walletbot.desk.harness import AGENTS_FILE, call, client, make_desk, serve_desk, token_of
from tests.walletbot.desk.scripted_day import (
    TODAY, TODAY_BY_DAY, TODAY_UNANSWERED, WEEK, WEEK_BY_DAY, WEEK_UNANSWERED, dates, write_day,
)
from walletbot.cli import main
from walletbot.desk import report
from walletbot.desk.auth import AgentDirectory
from walletbot.store.db import make_engine
from walletbot.store.service import WalletService

EXPECTED = {1: (TODAY, TODAY_BY_DAY, TODAY_UNANSWERED), 7: (WEEK, WEEK_BY_DAY, WEEK_UNANSWERED)}


@pytest.fixture(autouse=True)
def settings(monkeypatch):
    monkeypatch.setenv("HANDOFF_TIMEZONE", "Asia/Shanghai")
    # Nobody takes the scripted queued ticket while the figures are read.
    monkeypatch.setenv("DESK_AUTO_ASSIGN", "false")


@pytest.fixture
def wallet_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wallet.db'}"


@pytest.fixture
def wallet(wallet_url: str) -> WalletService:
    return WalletService(engine_factory=lambda: make_engine(wallet_url), demo=True)


@pytest.fixture
def day(tmp_path, wallet):
    return write_day(tmp_path, wallet, asyncio.run)


def accounts():
    return AgentDirectory.from_file(AGENTS_FILE).accounts


def check(figures: Dict[str, Any], days: int, day) -> None:
    expected, by_day, unanswered = EXPECTED[days]
    for key, value in expected.items():
        assert figures[key] == value, key
    assert figures["days"] == days and figures["timezone"] == "Asia/Shanghai"
    assert [d["date"] for d in figures["by_day"]] == dates(day, days)
    assert [{k: v for k, v in d.items() if k != "date"} for d in figures["by_day"]] == by_day
    assert [(q["text"], q["count"]) for q in figures["unanswered"]] == unanswered
    start = day.today - timedelta(days=days - 1)
    assert figures["start"] == start.isoformat() and figures["end"] == (
        day.today + timedelta(days=1)).isoformat()


# --- the figures -----------------------------------------------------------------


@pytest.mark.parametrize("days", [1, 7])
def test_the_figures_of_a_scripted_day_are_exact(day, wallet, days):
    figures = asyncio.run(report.collect(wallet=wallet, tracker_url=day.tracker_url, days=days,
                                         accounts=accounts(), now=day.now))
    check(figures, days, day)


def test_similar_unanswered_questions_are_one_group_led_by_its_most_frequent_text(day, wallet):
    figures = asyncio.run(report.collect(wallet=wallet, tracker_url=day.tracker_url, days=1,
                                         accounts=accounts(), now=day.now))
    invoice = figures["unanswered"][0]
    assert invoice["variants"] == 2 and invoice["examples"] == ["怎么开发票呢"]
    assert invoice["reasons"] == {"low_confidence": 2}
    # An escalation alone (c3's request) is not an unanswered question.
    assert all("投诉" not in q["text"] for q in figures["unanswered"])


def test_p90_is_the_nearest_rank():
    assert report.p90([]) is None
    assert report.p90([5.0]) == 5.0
    assert report.p90([float(n) for n in range(1, 11)]) == 9.0  # ceil(9.0) = 9th
    assert report.p90([float(n) for n in range(1, 12)]) == 10.0  # ceil(9.9) = 10th


def test_the_period_is_local_calendar_days():
    now = datetime(2026, 5, 1, 0, 30, tzinfo=timezone(timedelta(hours=8)))  # 16:30 UTC the day before
    period = report.Period.ending_today(7, now=now, timezone="Asia/Shanghai")
    assert period.start == datetime(2026, 4, 24, 16, 0, tzinfo=timezone.utc)
    assert period.end == datetime(2026, 5, 1, 16, 0, tzinfo=timezone.utc)
    assert period.dates[0].isoformat() == "2026-04-25" and period.dates[-1].isoformat() == "2026-05-01"
    with pytest.raises(ValueError):
        report.Period.ending_today(0, now=now, timezone="Asia/Shanghai")


def test_a_missing_tracker_store_is_reported_not_created(tmp_path, wallet):
    missing = tmp_path / "nope.db"
    with pytest.raises(report.TrackerUnavailable, match="does not exist"):
        asyncio.run(report.collect(wallet=wallet, tracker_url=f"sqlite:///{missing}", days=1))
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(report.TrackerUnavailable, match="no 'events' table"):
        asyncio.run(report.collect(wallet=wallet, tracker_url=f"sqlite:///{empty}", days=1))


# --- the desk's API ----------------------------------------------------------------


async def test_the_dashboard_api_returns_the_figures_to_supervisors_only(tmp_path):
    wallet = WalletService(engine_factory=lambda: make_engine(f"sqlite:///{tmp_path / 'w.db'}"),
                           demo=True)
    loop = asyncio.get_running_loop()
    day = await loop.run_in_executor(
        None, lambda: write_day(tmp_path, wallet,
                                lambda coro: asyncio.run_coroutine_threadsafe(coro, loop).result()))
    async with serve_desk(make_desk(wallet, tracker_db_url=day.tracker_url)) as desk, \
            client() as http:
        url = f"{desk.base}/api/dashboard"
        status, body, _ = await call(http, "GET", f"{url}?days=7")
        assert status == 401 and "登录" in body["error"]
        status, _, headers = await call(http, "GET", f"{desk.base}/dashboard")
        assert status == 302 and headers["Location"] == "login"

        agent1 = await token_of(http, desk.base, "agent1")
        for bad in ("3", "seven", "1.0", "07"):
            status, body, _ = await call(http, "GET", f"{url}?days={bad}", token=agent1)
            assert status == 400 and "days" in body["error"], bad
        status, page, _ = await call(http, "GET", f"{desk.base}/dashboard", token=agent1)
        assert status == 200 and 'src="static/dashboard.js"' in page
        for days in (1, 7):
            status, body, headers = await call(http, "GET", f"{url}?days={days}", token=agent1)
            assert status == 200, body
            assert headers["Cache-Control"] == "no-store"
            check(body, days, day)

        # Last: any request of agent2's counts as being at the desk (online).
        agent2 = await token_of(http, desk.base, "agent2")
        for path in ("api/dashboard?days=7", "api/dashboard/review.csv?days=7"):
            status, body, _ = await call(http, "GET", f"{desk.base}/{path}", token=agent2)
            assert status == 403 and body["error"] == "只有主管（supervisor 角色）可以查看主管看板"
        status, page, headers = await call(http, "GET", f"{desk.base}/dashboard", token=agent2)
        assert status == 403 and "只有主管" in page and "dashboard.js" not in page
        assert headers["Content-Security-Policy"].startswith("default-src 'self'")


async def test_the_dashboard_says_when_the_tracker_store_is_unreadable(tmp_path):
    wallet = WalletService(engine_factory=lambda: make_engine(f"sqlite:///{tmp_path / 'w.db'}"),
                           demo=True)
    tracker = f"sqlite:///{tmp_path / 'missing.db'}"
    async with serve_desk(make_desk(wallet, tracker_db_url=tracker)) as desk, client() as http:
        token = await token_of(http, desk.base, "agent1")
        status, body, _ = await call(http, "GET", f"{desk.base}/api/dashboard?days=1", token=token)
        assert status == 503 and body["error"] == "暂时无法读取对话记录库，请稍后重试或联系运维"


async def test_the_review_export_is_the_file_walletbot_review_writes(tmp_path):
    wallet = WalletService(engine_factory=lambda: make_engine(f"sqlite:///{tmp_path / 'w.db'}"),
                           demo=True)
    loop = asyncio.get_running_loop()
    day = await loop.run_in_executor(
        None, lambda: write_day(tmp_path, wallet,
                                lambda coro: asyncio.run_coroutine_threadsafe(coro, loop).result()))
    async with serve_desk(make_desk(wallet, tracker_db_url=day.tracker_url)) as desk, \
            client() as http:
        token = await token_of(http, desk.base, "agent1")
        async with http.get(f"{desk.base}/api/dashboard/review.csv?days=7",
                            headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200
            assert response.headers["Content-Disposition"].startswith('attachment; filename="review-')
            exported = await response.read()
    # The same days with the CLI: from the period's first midnight to now.
    since_days = (time.time() - (day.today - timedelta(days=6)).timestamp()) / 86400
    out = tmp_path / "cli.csv"
    code = await loop.run_in_executor(None, main, [
        "review", "--db-url", day.tracker_url, "--out", str(out), "--days", str(since_days),
        "--no-progress"])
    assert code == 0
    assert exported == out.read_bytes()
    rows = list(csv.DictReader(io.StringIO(exported.decode("utf-8-sig"))))
    texts = {r["text"] for r in rows}
    assert {"我的卡被吞了怎么办", "怎么开发票", "asdfgh"} <= texts and "asdf" not in texts
    assert all(r["intent"] == "" for r in rows)


# --- walletbot report ------------------------------------------------------------------


def _cli(day, wallet_url, *args):
    return main(["report", "--db-url", day.tracker_url, "--wallet-url", wallet_url,
                 "--agents", str(AGENTS_FILE), *args])


@pytest.mark.parametrize("days", [1, 7])
def test_walletbot_report_csv_has_the_same_figures(day, wallet_url, tmp_path, days):
    out = tmp_path / "report.csv"
    assert _cli(day, wallet_url, "--days", str(days), "--format", "csv", "--out", str(out)) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel's UTF-8 mark
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["metric", "key", "value"]
    values = {(m, k): v for m, k, v in rows[1:] if m != "unanswered"}
    expected, by_day, unanswered = EXPECTED[days]
    for key in ("conversations", "contained", "containment_rate", "user_turns", "fallbacks",
                "fallback_rate", "low_confidence", "queued_now"):
        assert values[(key, "")] == str(expected[key]), key
    assert values[("handoffs", "")] == str(expected["handoffs"]["total"])
    for reason in expected["handoffs"]["by_reason"]:
        assert values[("handoffs_by_reason", reason["category"])] == str(reason["count"])
    for name in ("wait", "handling"):
        for key, value in expected[name].items():
            assert values[(name, key)] == str(value), (name, key)
    assert values[("csat", "average")] == str(expected["csat"]["average"])
    for score, count in expected["csat"]["distribution"].items():
        assert values[("csat_scores", score)] == str(count)
    assert values[("overdue", "in_period")] == "1" and values[("overdue", "now")] == "1"
    assert values[("agents_online", "")] == "1"
    assert values[("agent_online", "agent1")] == "1" and values[("agent_online", "agent2")] == "0"
    assert values[("agent_load", "agent1")] == "1" and values[("agent_load", "agent2")] == "1"
    for date, counts in zip(dates(day, days), by_day):
        for key, value in counts.items():
            assert values[(f"day_{key}", date)] == str(value), (key, date)
    assert [(k, int(v)) for m, k, v in rows[1:] if m == "unanswered"] == unanswered


def test_walletbot_report_text_has_the_same_figures(day, wallet_url, capsys):
    assert _cli(day, wallet_url, "--days", "7") == 0
    out = capsys.readouterr().out
    for line in (
        "conversations      11",
        "contained          5 (45.5%, no ticket opened)",
        "fallbacks          4 (25.0% of user turns)",
        "handoffs           7",
        "  机器人未能理解 (fallback): 2",
        "wait               6 tickets, average 400.0 s, p90 1200.0 s",
        "handling           4 tickets, average 900.0 s, p90 1200.0 s",
        "CSAT               4 scores, average 3.50; 1: 0, 2: 1, 3: 1, 4: 1, 5: 1",
        "overdue            1 in the period, 1 now (queued now: 1)",
        "agents online      1",
        "  小王 (agent1): online, taking tickets, 1 of 5 tickets",
        "  小李 (agent2): offline, 1 of 5 tickets",
        "to label them: walletbot review --days 7",
    ):
        assert line in out.splitlines(), line
    assert "我的卡被吞了怎么办" in out


def test_walletbot_report_refuses_what_it_cannot_read(day, wallet_url, tmp_path, capsys):
    assert main(["report", "--db-url", day.tracker_url,
                 "--wallet-url", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "no wallet DB at" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
    assert main(["report", "--db-url", f"sqlite:///{tmp_path / 'none.db'}",
                 "--wallet-url", wallet_url]) == 2
    assert "cannot read the tracker store" in capsys.readouterr().err
    assert main(["report", "--days", "0", "--wallet-url", wallet_url]) == 2
