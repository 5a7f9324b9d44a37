"""A scripted day of conversations and tickets, and the dashboard figures it must give.

Today (local date in Asia/Shanghai) has 8 conversations; yesterday 2 (one of
them goes on past midnight), three days ago 1, and eight days ago 1 that no
figure may count. The expected figures are written out by hand from the
script below, following the definitions in walletbot/desk/report.py, not
computed by the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional
from zoneinfo import ZoneInfo

from walletbot.desk.scripted import PAUSE, Reply, Say, Ticket, add_tickets, session, set_presence
from walletbot.desk.scripted import write_conversations
from walletbot.store.service import WalletService

ZONE = ZoneInfo("Asia/Shanghai")

FAQ = Reply("utter_faq", "（答案）")
REPHRASE = Reply("utter_ask_rephrase", "抱歉，我没有理解，您能换个说法吗？")
HANDOFF = Reply("action_handoff", "已为您转接人工客服。")


@dataclass
class Day:
    """The scripted day written to ``tracker_url`` and the wallet DB; ``today`` is local midnight."""

    today: datetime
    tracker_url: str
    now: datetime


def midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(ZONE).date(), time(0), tzinfo=ZONE)


def write_day(folder: Path, wallet: WalletService, run: Any, *,
              now: Optional[datetime] = None) -> Day:
    """Writes the day; ``run(coro)`` runs a coroutine (``asyncio.run`` or a live desk's)."""
    now = now or datetime.now(timezone.utc)
    d0 = midnight(now)
    d1, d3, d8 = d0 - timedelta(days=1), d0 - timedelta(days=3), d0 - timedelta(days=8)

    def h(day: datetime, hour: int, minute: int = 0, second: int = 0) -> datetime:
        return day + timedelta(hours=hour, minutes=minute, seconds=second)

    conversations: Dict[str, List[Any]] = {
        # Two sessions of one sender today: the first contained, the second handed off.
        "web:c1": session(h(d0, 9), [Say("提现多久到账", confidence=0.97), FAQ])
        + session(h(d0, 15), [Say("提现失败了", "transaction", 0.9), HANDOFF, PAUSE]),
        "web:c2": session(h(d0, 9, 10), [
            Say("我的卡被吞了怎么办", fell_back=True), REPHRASE,
            Say("余额宝能转入吗", fell_back=True), REPHRASE,
            Say("转人工", "request_human", 0.98), HANDOFF, PAUSE]),
        "wechat:c3": session(h(d0, 10), [Say("我要人工 投诉你们", "request_human", 0.9),
                                         HANDOFF, PAUSE]),
        "web:c4": session(h(d0, 11), [Say("怎么开发票", confidence=0.42), FAQ,
                                      Say("谢谢", "thanks", 0.99), Reply("utter_thanks", "不客气")]),
        # A button payload is not a typed turn.
        "rest:c5": session(h(d0, 12), [Say("/greet", "greet", 1.0), Reply("utter_greet", "您好"),
                                       Say("账户被盗了", "account_compromised", 0.99),
                                       HANDOFF, PAUSE]),
        "web:c6": session(h(d0, 13), [Say("我要人工", "request_human", 0.99), HANDOFF, PAUSE]),
        "web:c7": session(h(d0, 14), [Say("怎么开发票呢", confidence=0.45), FAQ,
                                      Say("asdfgh", fell_back=True), REPHRASE]),
        "web:y1": session(h(d1, 10), [Say("我的卡被吞了怎么办", fell_back=True), REPHRASE,
                                      HANDOFF, PAUSE]),
        # Starts 23:59:10 yesterday: a conversation of yesterday, its second turn
        # (00:00:10) a user turn of today.
        "web:late": session(h(d1, 23, 59, 10), [Say("你好", "greet", 0.99),
                                                Reply("utter_greet", "您好"),
                                                Say("提现多久到账", confidence=0.97), FAQ]),
        "wechat:old": session(h(d3, 16), [Say("注册收不到验证码", confidence=0.95), FAQ]),
        # Eight days ago: read (the tracker is read from a day before the period), never counted.
        "web:ancient": session(h(d8, 10), [Say("asdf", fell_back=True), REPHRASE]),
    }
    tracker_url = write_conversations(folder / "tracker.db", conversations)

    tickets = [
        Ticket("web", "c2", "fallback", h(d0, 9, 12), agent="agent1", claimed_at=h(d0, 9, 14),
               resolved_at=h(d0, 9, 24), score=5, summary="卡被吞"),
        Ticket("wechat", "c3", "request_human", h(d0, 10, 1), agent="agent1",
               claimed_at=h(d0, 10, 6), resolved_at=h(d0, 10, 26), score=2, summary="投诉"),
        Ticket("rest", "c5", "account_compromised", h(d0, 12, 1), priority=1, agent="agent2",
               claimed_at=h(d0, 12, 2), replied_at=h(d0, 12, 3), summary="账户被盗"),
        Ticket("web", "c6", "request_human", h(d0, 13, 1), overdue_at=h(d0, 13, 6),
               summary="我要人工"),
        Ticket("web", "c1", "transaction", h(d0, 15, 1), priority=2, agent="agent1",
               claimed_at=h(d0, 15, 3), resolved_at=h(d0, 15, 13), score=4, summary="提现失败"),
        Ticket("web", "y1", "fallback", h(d1, 10, 2), agent="agent1", claimed_at=h(d1, 10, 12),
               resolved_at=h(d1, 10, 32), score=3, summary="卡被吞"),
        # Opened yesterday, claimed today: its wait counts today, its handoff yesterday.
        Ticket("web", "zz", "complain", h(d1, 23, 50), agent="agent1", claimed_at=h(d0, 0, 10),
               replied_at=h(d0, 0, 11), summary="投诉"),
    ]

    def write(conn: Any) -> None:
        add_tickets(conn=conn, tickets=tickets)
        set_presence(conn=conn, login="agent1", seen=now)
        set_presence(conn=conn, login="agent2", seen=now - timedelta(minutes=10))

    async def go() -> None:
        await wallet.run(write)

    run(go())
    return Day(today=d0, tracker_url=tracker_url, now=now)


def dates(day: Day, days: int) -> List[str]:
    return [(day.today - timedelta(days=n)).date().isoformat() for n in range(days - 1, -1, -1)]


AGENTS = [
    {"login": "agent1", "name": "小王", "online": True, "available": True, "load": 1,
     "max_tickets": 5},
    {"login": "agent2", "name": "小李", "online": False, "available": False, "load": 1,
     "max_tickets": 5},
]

# The figures of today: conversations c1 (twice), c2, c3, c4, c5, c6, c7.
TODAY = {
    "conversations": 8, "contained": 3, "containment_rate": 0.375,
    "user_turns": 13, "fallbacks": 3, "fallback_rate": 0.2308, "low_confidence": 2,
    "handoffs": {"total": 5, "by_reason": [
        {"category": "request_human", "label": "用户要求人工", "count": 2},
        {"category": "account_compromised", "label": "账户安全", "count": 1},
        {"category": "fallback", "label": "机器人未能理解", "count": 1},
        {"category": "transaction", "label": "交易核查", "count": 1},
    ]},
    # Waits 120, 300, 60, 120 and zz's 1200; handling 600, 1200, 600.
    "wait": {"count": 5, "average_seconds": 360.0, "p90_seconds": 1200.0},
    "handling": {"count": 3, "average_seconds": 800.0, "p90_seconds": 1200.0},
    "csat": {"count": 3, "average": 3.67,
             "distribution": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}},
    "overdue": {"in_period": 1, "now": 1},
    "queued_now": 1,
    "agents": {"online": 1, "list": AGENTS, "window_seconds": 60},
}
TODAY_UNANSWERED = [("怎么开发票", 2), ("asdfgh", 1), ("余额宝能转入吗", 1), ("我的卡被吞了怎么办", 1)]
TODAY_BY_DAY = [{"conversations": 8, "contained": 3, "handoffs": 5, "user_turns": 13,
                 "fallbacks": 3}]

# The last 7 days: today, yesterday (y1, late; tickets y1, zz), three days ago (old).
WEEK = {
    "conversations": 11, "contained": 5, "containment_rate": 0.4545,
    "user_turns": 16, "fallbacks": 4, "fallback_rate": 0.25, "low_confidence": 2,
    "handoffs": {"total": 7, "by_reason": [
        {"category": "fallback", "label": "机器人未能理解", "count": 2},
        {"category": "request_human", "label": "用户要求人工", "count": 2},
        {"category": "account_compromised", "label": "账户安全", "count": 1},
        {"category": "complain", "label": "投诉", "count": 1},
        {"category": "transaction", "label": "交易核查", "count": 1},
    ]},
    "wait": {"count": 6, "average_seconds": 400.0, "p90_seconds": 1200.0},
    "handling": {"count": 4, "average_seconds": 900.0, "p90_seconds": 1200.0},
    "csat": {"count": 4, "average": 3.5,
             "distribution": {"1": 0, "2": 1, "3": 1, "4": 1, "5": 1}},
    "overdue": {"in_period": 1, "now": 1},
    "queued_now": 1,
    "agents": {"online": 1, "list": AGENTS, "window_seconds": 60},
}
WEEK_UNANSWERED = [("我的卡被吞了怎么办", 2), ("怎么开发票", 2), ("asdfgh", 1), ("余额宝能转入吗", 1)]
ZERO = {"conversations": 0, "contained": 0, "handoffs": 0, "user_turns": 0, "fallbacks": 0}
WEEK_BY_DAY = [ZERO, ZERO, ZERO,
               {"conversations": 1, "contained": 1, "handoffs": 0, "user_turns": 1, "fallbacks": 0},
               ZERO,
               {"conversations": 2, "contained": 1, "handoffs": 2, "user_turns": 2, "fallbacks": 1},
               TODAY_BY_DAY[0]]
