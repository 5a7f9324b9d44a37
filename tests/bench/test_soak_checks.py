"""The soak's checks (bench/soak.py) on small made-up data: they pass good runs and fail bad ones.

The soak itself is a bench command, not a test; what is proven here is that
its verdicts mean something: the p99 windows from Locust's history CSV, the
memory growth, the order and completeness of stored conversations, and the
judging of each WeChat reply.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import soak  # noqa: E402
from soak_flow import AGENT_REPLIES, CSAT_PROMPT, CSAT_THANKS, JOIN_MARK  # noqa: E402
from wechat_sim import Account, judge_reply  # noqa: E402

PERCENTILES = [column for column, _ in soak.PERCENTILE_COLUMNS]
HISTORY_HEADER = ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s",
                  *PERCENTILES, "Total Request Count", "Total Failure Count",
                  "Total Median Response Time", "Total Average Response Time",
                  "Total Min Response Time", "Total Max Response Time",
                  "Total Average Content Size"]


def percentiles(p50: float, p99: float) -> Dict[str, str]:
    """A row's percentile columns: linear from p50 to p99 (p99 up to 100 %)."""
    values = {}
    for column, q in soak.PERCENTILE_COLUMNS:
        if q <= 0.99:
            values[column] = str(round(p50 + (p99 - p50) * (q - 0.5) / 0.49))
        else:
            values[column] = str(round(p99))
    return values


def history_row(stamp: int, name: str, total: int, p50: float, p99: float,
                kind: str = "POST") -> Dict[str, str]:
    row = {key: "0" for key in HISTORY_HEADER}
    row.update({"Timestamp": str(stamp), "Type": kind, "Name": name,
                "Total Request Count": str(total)}, **percentiles(p50, p99))
    return row


def write_history(path: Path, rows: List[Dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


def slowing_history(tmp_path: Path, first_p99: float, last_p99: float) -> List[Dict[str, str]]:
    """60 s of two message names, 10 requests/s each, p99 ``first_p99`` then ``last_p99``.

    Desk calls and Locust's Aggregated row, far slower, must not count.
    """
    rows = []
    for second in range(0, 61):
        stamp = 1_000_000 + second
        p99 = first_p99 if second <= 30 else last_p99
        for name in ("wechat: faq", "wechat: lookup"):
            rows.append(history_row(stamp, name, 10 * second, 100, p99))
        rows.append(history_row(stamp, "desk: tickets", second, 5000, 9000, kind="GET"))
        rows.append(history_row(stamp, "Aggregated", 21 * second, 5000, 9000, kind=""))
    return soak.read_csv(write_history(tmp_path / "soak_stats_history.csv", rows))


# --- percentiles ------------------------------------------------------------------


def test_mixture_quantile_of_one_part_is_its_own_percentile():
    points = soak.quantile_points(percentiles(100, 500))
    assert soak.mixture_quantile([(7, points)], 0.99) == pytest.approx(500)
    assert soak.mixture_quantile([(7, points)], 0.5) == pytest.approx(100)


def test_mixture_quantile_weighs_its_parts():
    fast, slow = soak.quantile_points(percentiles(100, 200)), soak.quantile_points(percentiles(100, 2000))
    equal = soak.mixture_quantile([(1, fast), (1, slow)], 0.99)
    mostly_fast = soak.mixture_quantile([(99, fast), (1, slow)], 0.99)
    assert 200 < equal < 2000
    assert mostly_fast < equal
    # A part without requests (Locust's N/A) changes nothing.
    empty = soak.quantile_points({column: "N/A" for column in PERCENTILES})
    assert soak.mixture_quantile([(1, fast), (5, empty)], 0.99) == pytest.approx(200)
    assert soak.mixture_quantile([], 0.99) is None


def test_window_p99_reads_only_messages_of_the_window(tmp_path):
    history = slowing_history(tmp_path, first_p99=300, last_p99=900)
    first, last, window = soak.p99_windows(history, 25)
    assert window == 25
    assert first == pytest.approx(300)
    assert last == pytest.approx(900)


def test_rows_without_figures_yet_do_not_count_as_fast_requests(tmp_path):
    rows = [history_row(1_000_000, "wechat: faq", 0, 100, 500)]
    empty = history_row(1_000_010, "wechat: faq", 100, 0, 0)  # Locust's 0s: no window yet
    rows += [empty, history_row(1_000_020, "wechat: faq", 200, 100, 500)]
    history = soak.read_csv(write_history(tmp_path / "h.csv", rows))
    assert soak.window_quantile(history, 1_000_000, 1_000_020) == pytest.approx(500)


def test_p99_windows_are_clipped_to_half_the_run(tmp_path):
    history = slowing_history(tmp_path, first_p99=300, last_p99=300)
    _, _, window = soak.p99_windows(history, 300)
    assert window == 30


def test_p99_per_request_name_shows_which_request_slowed(tmp_path):
    rows = []
    for second in range(0, 61):
        stamp = 1_000_000 + second
        rows.append(history_row(stamp, "wechat: faq", 10 * second, 100, 300))
        rows.append(history_row(stamp, "wechat: lookup", 10 * second, 100,
                                300 if second <= 30 else 1200))
        rows.append(history_row(stamp, "desk: tickets", second, 5000, 9000, kind="GET"))
    history = soak.read_csv(write_history(tmp_path / "h.csv", rows))
    table = soak.p99_by_name(history, 25)
    assert table[0].startswith("| request | p99 first 25 s")
    assert "| wechat: faq | 300 | 300 | 1.00 |" in table
    assert "| wechat: lookup | 300 | 1200 | 4.00 |" in table
    assert not any("desk:" in line for line in table)


def test_the_profile_table_compares_each_part_between_the_windows(tmp_path):
    def collapsed(name, lines):
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        return path

    read = "run (x.py:1);_retrieve_now (walletbot/rasa_compat/trackerstore.py:311)"
    nlu = "run (x.py:1);parse_message (rasa/core/processor.py:724);f (y.py:2)"
    files = {"first": {"rasa-1": collapsed("f1", [f"{nlu} 90", f"{read} 10"])},
             "last": {"rasa-1": collapsed("l1", [f"{nlu} 50", f"{read} 50"]),
                      "rasa-2": collapsed("l2", [f"{read} 100"])}}
    table = soak.profile_table(files)
    assert table[0] == ("| part of the turn (both replicas, `--gil`) | first (100 samples) "
                        "| last (200 samples) |")
    assert "| tracker read (get_tracker / retrieve) | 10.0% | 75.0% |" in table
    assert "| NLU (parse_message) | 90.0% | 25.0% |" in table


def test_set_takes_key_value_settings_for_the_stack():
    args = soak.parse_args(["--users", "3", "--set", "TRACKER_TURN_WINDOW=50", "--set", "A=b=c"])
    assert args.set == ["TRACKER_TURN_WINDOW=50", "A=b=c"]
    with pytest.raises(SystemExit):
        soak.parse_args(["--users", "3", "--set", "no value"])


def test_a_slower_last_window_fails_the_p99_criterion(tmp_path):
    steady = slowing_history(tmp_path, 300, 330)
    slower = slowing_history(tmp_path, 300, 600)
    assert verdicts(p99=soak.p99_windows(steady, 25)[:2])["p99"]
    assert not verdicts(p99=soak.p99_windows(slower, 25)[:2])["p99"]


def test_message_rate_counts_from_the_ramp_to_the_time_limit(tmp_path):
    history = slowing_history(tmp_path, 300, 300)  # 2 names x 10 messages/s, for 60 s
    for row in history:  # no new message after 40 s: users only finish their handoffs
        if float(row["Timestamp"]) > 1_000_040 and soak.is_message(row):
            row["Total Request Count"] = "400"
    assert soak.message_rate(history, duration=40, ramp=10) == pytest.approx(20)
    assert soak.message_rate([], duration=40) is None


# --- memory -----------------------------------------------------------------------


def test_memory_growth_is_from_the_first_sample_after_warm_up_to_the_last():
    samples = [(0, {"rasa-1": 500.0, "actions": 100.0}),   # start-up, not counted
               (20, {"rasa-1": 700.0, "actions": 120.0}),
               (30, {"rasa-1": 710.0, "actions": 121.0}),
               (40, {"rasa-1": 714.0, "actions": 132.0})]
    growth = soak.memory_growth(samples, warmup=20)
    assert growth["rasa-1"] == pytest.approx((700.0, 714.0, 2.0))
    assert growth["actions"] == pytest.approx((120.0, 132.0, 10.0))
    assert soak.memory_growth(samples, warmup=60) == {}


def test_memory_growth_over_5_percent_in_any_process_fails():
    fine = {"rasa-1": (700.0, 714.0, 2.0), "actions": (120.0, 121.0, 0.8)}
    leaking = dict(fine, actions=(120.0, 132.0, 10.0))
    assert verdicts(growth=fine)["memory"]
    assert not verdicts(growth=leaking)["memory"]
    assert not verdicts(growth={})["memory"]  # no sample after warm-up: not a pass


# --- conversations ----------------------------------------------------------------


class Conversation:
    """Tracker-store rows of one WeChat conversation, as load_conversations returns them."""

    def __init__(self) -> None:
        self.rows: List[Dict[str, Any]] = []
        self.sent: List[str] = []
        self.clock = 1_700_000_000.0

    def add(self, kind: str, data: Optional[Dict[str, Any]] = None, dt: float = 0.1) -> None:
        self.clock += dt
        self.rows.append({"id": len(self.rows) + 1, "type_name": kind, "timestamp": self.clock,
                          "data": dict(data or {}, event=kind)})

    def user(self, text: str) -> None:
        msg_id = str(9000 + len(self.sent))
        self.sent.append(msg_id)
        self.add("user", {"text": text, "metadata": {"wechat": {"msg_id": msg_id}}})

    def bot(self, text: str, agent: Optional[str] = None) -> None:
        self.add("bot", {"text": text, "metadata": {"agent": agent} if agent else {}})

    def turn(self, text: str, answer: str) -> None:
        self.user(text)
        self.add("action", {"name": "action_x"})
        self.bot(answer)
        self.add("action", {"name": "action_listen"})

    def handoff(self, *, agent_reply: bool = True, score: bool = True) -> None:
        self.turn("转人工", "已为您转接人工客服，工单号 T1。")
        self.add("pause")
        self.user("我的提现一直没到账")  # no bot reply while paused
        self.bot(f"您好，我是人工客服管理员，{JOIN_MARK}，请问有什么可以帮您？", agent="admin")
        if agent_reply:
            self.bot(AGENT_REPLIES[0], agent="admin")
        self.user("好的，谢谢")
        self.add("resume")
        self.bot(f"本次人工服务已结束……请为本次人工服务{CSAT_PROMPT}（1–5分）：")
        self.add("action", {"name": "action_listen"})
        if score:
            self.turn("/rate_service", f"{CSAT_THANKS}！还有其他可以帮您的吗？")

    def check(self, sent: Optional[List[str]] = None, max_events: int = 0) -> soak.ConversationReport:
        return soak.check_conversation(self.rows, self.sent if sent is None else sent,
                                       max_events=max_events)


def good_conversation() -> Conversation:
    talk = Conversation()
    talk.add("action", {"name": "action_session_start"})
    talk.add("session_started")
    talk.add("action", {"name": "action_listen"})
    talk.turn("提现多久到账", "提现提交后一般会在1–3个工作日内到账")
    talk.handoff()
    talk.turn("帮我查一下WD202611180002", "1000.00元")
    return talk


def test_a_complete_conversation_with_a_handoff_passes():
    report = good_conversation().check()
    assert report.problems == []
    assert report.handoffs == 1 and not report.pruned


def test_an_older_timestamp_after_a_newer_one_fails():
    talk = good_conversation()
    talk.rows[5]["timestamp"] = talk.rows[4]["timestamp"] - 5
    assert any("older" in p for p in talk.check().problems)


def test_a_user_message_without_a_bot_reply_fails():
    talk = good_conversation()
    talk.user("怎么充值")
    talk.turn("谢谢", "不客气")
    assert any("no bot reply" in p for p in talk.check().problems)
    last = good_conversation()
    last.user("怎么充值")  # the very last message unanswered
    assert any("no bot reply" in p for p in last.check().problems)


def test_a_lost_or_reordered_message_fails():
    talk = good_conversation()
    lost = talk.sent[:2] + ["12345"] + talk.sent[2:]
    assert any("1 missing" in p for p in talk.check(sent=lost).problems)
    swapped = talk.sent[:]
    swapped[0], swapped[1] = swapped[1], swapped[0]
    assert any("out of order" in p for p in talk.check(sent=swapped).problems)


def test_a_pruned_conversation_must_keep_the_newest_messages():
    talk = good_conversation()
    earlier = ["1", "2", "3"]
    # Few events for the bound: they cannot have been pruned, so earlier ones are lost.
    assert talk.check(sent=earlier + talk.sent, max_events=2000).problems
    assert talk.check(sent=earlier + talk.sent, max_events=0).problems
    pruned = talk.check(sent=earlier + talk.sent, max_events=len(talk.rows))
    assert pruned.problems == [] and pruned.pruned
    # Not the newest: a gap is still a gap.
    gap = talk.sent[:1] + ["99"] + talk.sent[1:]
    assert talk.check(sent=earlier + gap, max_events=len(talk.rows)).problems


def test_a_handoff_without_an_agent_reply_or_a_score_fails():
    silent_agent = Conversation()
    silent_agent.handoff(agent_reply=False)
    assert any("no agent reply" in p for p in silent_agent.check().problems)
    no_score = Conversation()
    no_score.handoff(score=False)
    assert any("score was not answered" in p for p in no_score.check().problems)
    unresolved = Conversation()
    unresolved.turn("转人工", "工单号 T1")
    unresolved.add("pause")
    unresolved.bot(AGENT_REPLIES[0], agent="admin")
    assert any("never resolved" in p for p in unresolved.check().problems)


def test_a_user_message_without_its_msg_id_fails():
    talk = good_conversation()
    del talk.rows[3]["data"]["metadata"]["wechat"]
    assert any("MsgId" in p for p in talk.check().problems)


def test_a_run_without_conversations_is_not_a_pass():
    assert verdicts()["store"]
    assert not verdicts(store=soak.StoreCheck(0, 0, 0, {}))["store"]
    assert not verdicts(store=soak.StoreCheck(3, 1, 0, {"o_1": ["user message 4 has no bot reply"]}))["store"]


# --- criteria -----------------------------------------------------------------------


def figures(failures: int = 0, exceptions: int = 0) -> soak.LoadFigures:
    return soak.LoadFigures(messages=1000, desk_calls=50, failures=failures, exceptions=exceptions,
                            per_second=20.0, p50=150.0, p95=400.0, p99=600.0)


def verdicts(*, load: Optional[soak.LoadFigures] = None, fallbacks: int = 0,
             p99=(600.0, 650.0), growth=None, store=None) -> Dict[str, bool]:
    growth = {"rasa-1": (700.0, 710.0, 1.4)} if growth is None else growth
    store = soak.StoreCheck(3, 1, 0, {}) if store is None else store
    criteria = soak.soak_criteria(load or figures(), fallbacks, p99[0], p99[1], growth, store)
    return dict(zip(("errors", "memory", "p99", "store"), (c.passed for c in criteria)))


def test_any_failure_exception_or_fallback_fails_the_error_criterion():
    assert all(verdicts().values())
    assert not verdicts(load=figures(failures=1))["errors"]
    assert not verdicts(load=figures(exceptions=1))["errors"]
    assert not verdicts(fallbacks=1)["errors"]


def test_find_max_takes_only_steps_without_failures_and_p99_within_1_s():
    assert soak.passes_max(figures())
    assert not soak.passes_max(figures(failures=1))
    slow = figures()
    slow.p99 = 1200.0
    assert not soak.passes_max(slow)
    assert soak.users_for(max_rate=30.0, user_rate=0.2) == 105


# --- the replies ---------------------------------------------------------------------


TOKEN, APP_ID = "soaktoken", "wx0123456789abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def passive_reply(account: Account, text: str) -> str:
    plain = (f"<xml><ToUserName><![CDATA[o_1]]></ToUserName><FromUserName><![CDATA[gh]]>"
             f"</FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType>"
             f"<Content><![CDATA[{text}]]></Content></xml>")
    return account.crypto.encrypt_message(plain, "nonce1", "1700000000")


def test_replies_are_judged_by_content_not_by_status():
    account = Account(TOKEN, AES_KEY, APP_ID)
    answer = passive_reply(account, "提现提交后一般会在1–3个工作日内到账")
    assert judge_reply(200, answer, account, expect=["提现提交后"]) == (
        "提现提交后一般会在1–3个工作日内到账", None)
    assert judge_reply(200, answer, account, expect=["1000.00"])[1].startswith("unexpected reply")
    apology = passive_reply(account, "抱歉，系统暂时出现故障")
    assert "apologised" in judge_reply(200, apology, account, failure_markers=["系统暂时出现故障"])[1]
    assert "fallback" in judge_reply(200, "success", account, expect=["提现"])[1]
    assert judge_reply(502, "bad gateway", account)[1] == "HTTP 502"
    assert "WeChat gives up" in judge_reply(200, answer, account, seconds=5.2)[1]
    forged = passive_reply(Account(TOKEN, AES_KEY[::-1], APP_ID), "提现")
    assert "decrypt" in judge_reply(200, forged, account)[1]


def test_silence_is_right_only_while_an_agent_has_the_conversation():
    account = Account(TOKEN, AES_KEY, APP_ID)
    assert judge_reply(200, "success", account, silent=True) == (None, None)
    assert "while an agent" in judge_reply(200, passive_reply(account, "您好"), account,
                                           silent=True)[1]


def test_a_request_round_trips_through_wechats_crypto():
    account = Account(TOKEN, AES_KEY, APP_ID)
    path, body = account.request("o_soak_s_1", "帮我查一下WD202611180002", 42)
    assert path.startswith("/webhooks/wechat/webhook?signature=") and "encrypt_type=aes" in path
    query = dict(part.split("=", 1) for part in path.split("?", 1)[1].split("&"))
    plain = account.crypto.decrypt_message(body.decode(), query["msg_signature"],
                                           query["timestamp"], query["nonce"])
    assert "帮我查一下WD202611180002" in plain and "<MsgId>42</MsgId>" in plain
