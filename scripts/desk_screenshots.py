#!/usr/bin/env python
"""The README's screenshots of the desk's queue and the supervisor dashboard, taken in Chromium.

    .venv/bin/python scripts/desk_screenshots.py [--out docs/img] [--chromium /usr/bin/chromium]

Writes ``<out>/desk_queue.png`` (1280×800 px: agent1 小王 at the console on a
busy afternoon, the queue with an urgent and an overdue ticket, 李四's ticket
open with its transcript and his orders) and ``<out>/desk_dashboard.png``
(1280 px wide, the whole page: the supervisor dashboard over the last 7 days).

Unlike scripts/screenshots.py it needs no model and no bot: the desk is served
in this process, on a free port, by the same channel class Rasa builds from
credentials.yml, over a throwaway SQLite wallet DB (the demo users and orders)
and tracker store in a temporary folder. Both are filled with a scripted week
(walletbot/desk/scripted.py writes it through Rasa's own SQL tracker store):
the same rows the dashboard reads in production. Everything is deterministic
except the clock: the week ends now.

The script checks that each page shows what was scripted (the ticket, its
transcript, the week's number of conversations, the unanswered questions)
before it takes the picture, and prints what it checked. Only Debian's
chromium is used (``apt-get install chromium fonts-wqy-microhei``), never
``playwright install``. Exit status: 0 done, 1 something failed, 2 no chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from screenshots import find_chromium  # noqa: E402  (the README chat pictures' script)

VIEWPORT = {"width": 1280, "height": 800}
STEP_TIMEOUT = 30_000  # ms
AGENT_LOGIN, AGENT_PASSWORD, AGENT_NAME = "agent1", "dev-agent-password", "小王"
# What the pictures show must not depend on a developer's .env or shell.
PINNED = {
    "WALLETBOT_ENV": "dev",
    "HANDOFF_TIMEZONE": "Asia/Shanghai",
    "HANDOFF_SERVICE_HOURS": "00:00-24:00",
    "DESK_WEBHOOK_URL": "",
    "DESK_AUTO_ASSIGN": "false",
}
ZONE = "Asia/Shanghai"


class Failure(Exception):
    """A step failed; the message says which."""


# --------------------------------------------------------------------------
# The scripted week.

ANSWERED = ["提现一般几天到账", "充值手续费多少", "怎么修改支付密码", "注册收不到验证码",
            "怎么绑定银行卡", "转账限额是多少", "提现手续费怎么收", "怎么实名认证"]
# Questions the bot fails on, with the other ways users ask them.
UNANSWERED = [
    ("信用卡可以充值吗", ["能不能用信用卡充值", "信用卡能充值吗"]),
    ("转账转错人了怎么办", ["转错账了能退回吗"]),
    ("可以换绑手机号吗", ["手机号换了怎么改绑"]),
    ("怎么开发票", ["能开发票吗"]),
    ("余额能转到余额宝吗", []),
    ("海外能用OK钱包吗", ["在国外能用吗"]),
    ("提现到支付宝要多久", []),
    ("为什么扣了我两次钱", ["重复扣款了"]),
]
HANDOFF_REASONS = [("request_human", "我要人工"), ("fallback", "转人工"),  # after two fallbacks
                   ("complain", "我要投诉"), ("transaction", "我的提现一直没到账"),
                   ("account_compromised", "账户好像被盗了")]

# The intent of the message that opened a ticket of each category.
INTENT_OF = {"fallback": "request_human", "transaction": "faq"}
SCORES = (1, 2, 3, 3, 4, 4, 4, 5, 5, 5, 5, 5)


def local_midnight(now: datetime, days_ago: int) -> datetime:
    from datetime import time as clock
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(ZONE)
    day = now.astimezone(zone).date() - timedelta(days=days_ago)
    return datetime.combine(day, clock(0), tzinfo=zone)


class Week:
    """The scripted week: conversations by tracker id, tickets, and what the pages must show."""

    def __init__(self, now: datetime) -> None:
        from walletbot.desk.scripted import Reply

        self.now = now
        self.rng = random.Random(18)
        self.conversations: Dict[str, List[Any]] = {}
        self.tickets: List[Any] = []
        self.answer = Reply("utter_faq", "好的，为您解答如下。")
        self.rephrase = Reply("utter_ask_rephrase", "抱歉，我没有理解您的意思，您能换个说法吗？")
        self.handoff = Reply("action_handoff", "正在为您转接人工客服。")

    def unanswered_text(self) -> str:
        leader, variants = self.rng.choice(UNANSWERED)
        return self.rng.choice([leader, leader] + variants)

    def visitor(self, start: datetime, key: str) -> None:
        """One conversation the bot handles alone, or hands to a (later resolved) agent."""
        from walletbot.desk.scripted import PAUSE, Say, Ticket, session

        roll = self.rng.random()
        channel = self.rng.choice(("web", "web", "wechat"))
        tracker = f"{channel}:{key}"
        if roll < 0.55:
            turns = [Say(self.rng.choice(ANSWERED), confidence=self.rng.uniform(0.8, 0.99)),
                     self.answer]
        elif roll < 0.72:
            turns = [Say(self.unanswered_text(), fell_back=True), self.rephrase]
            if self.rng.random() < 0.5:
                turns += [Say(self.rng.choice(ANSWERED), confidence=0.9), self.answer]
        elif roll < 0.82:
            turns = [Say(self.unanswered_text(), confidence=self.rng.uniform(0.3, 0.49)),
                     self.answer]
        else:
            category, text = self.rng.choice(HANDOFF_REASONS)
            turns = [Say(text, INTENT_OF.get(category, category), 0.95), self.handoff, PAUSE]
            if category == "fallback":  # the bot did not understand, twice; then a human
                turns = [Say(self.unanswered_text(), fell_back=True), self.rephrase,
                         Say(self.unanswered_text(), fell_back=True), self.rephrase,
                         Say("转人工", "request_human", 0.97), self.handoff, PAUSE]
            opened = start + timedelta(minutes=1)
            claimed = opened + timedelta(seconds=self.rng.randint(40, 720))
            resolved = claimed + timedelta(seconds=self.rng.randint(240, 1500))
            if resolved < self.now:
                scored = self.rng.random() < 0.75
                self.tickets.append(Ticket(
                    channel, key, category, opened, priority=1 if category == "account_compromised" else 3,
                    summary=text, agent=self.rng.choice(("agent1", "agent2")), claimed_at=claimed,
                    replied_at=claimed + timedelta(seconds=30), resolved_at=resolved,
                    score=self.rng.choice(SCORES) if scored else None))
        self.conversations[tracker] = session(start, turns, gap=25)

    def past_days(self) -> None:
        for days_ago, count in zip(range(6, 0, -1), (15, 18, 13, 21, 17, 19)):
            midnight = local_midnight(self.now, days_ago)
            for n in range(count):
                start = midnight + timedelta(hours=9, minutes=n * 38 + self.rng.randint(0, 20))
                self.visitor(start, f"d{days_ago}v{n}")

    def today(self) -> None:
        """The afternoon so far: the bot's own conversations and the open tickets."""
        from walletbot.desk.scripted import PAUSE, Say, Ticket, session

        for n in range(9):
            self.visitor(self.now - timedelta(minutes=300 - n * 29), f"t0v{n}")
        ago = lambda minutes: self.now - timedelta(minutes=minutes)  # noqa: E731
        open_tickets = [
            ("web", "t0a", "account_compromised", 1, "账户好像被盗了，有陌生登录", 3, None),
            ("wechat", "o_t0b", "request_human", 3, "我要人工客服", 14, None),
            ("web", "t0c", "complain", 3, "我要投诉，提现三天了还没到", 6, None),
            ("web", "t0e", "fallback", 3, "转人工", 26, "agent2"),
        ]
        for channel, key, category, priority, text, minutes, agent in open_tickets:
            turns = [Say(text, INTENT_OF.get(category, category), 0.95), self.handoff, PAUSE]
            if category == "fallback":
                turns = [Say(self.unanswered_text(), fell_back=True), self.rephrase] + turns
            self.conversations[f"{channel}:{key}"] = session(ago(minutes + 1), turns, gap=20)
            self.tickets.append(Ticket(
                channel, key, category, ago(minutes), priority=priority, summary=text,
                agent=agent, claimed_at=ago(minutes - 4) if agent else None,
                replied_at=ago(minutes - 5) if agent else None,
                overdue_at=ago(4) if key == "o_t0b" else None))
        # 李四's ticket, claimed by 小王: the one the queue picture opens.
        self.lisi = Ticket("web", "lisi", "transaction", ago(9), priority=2, user_id="U1002",
                           summary="充值显示成功但余额没变", agent=AGENT_LOGIN,
                           claimed_at=ago(7), replied_at=ago(6))
        self.tickets.append(self.lisi)

    def lisi_conversation(self, number: str) -> None:
        from walletbot.desk.relay import JOINED_TEXT
        from walletbot.desk.scripted import PAUSE, AgentSays, Reply, Say, session
        from walletbot.handoff.wording import HANDOFF_NEXT

        start = self.now - timedelta(minutes=11)
        self.conversations["web:lisi"] = session(start, [
            Say("我充值了1000块，显示成功但是余额没变", "faq", 0.91),
            Reply("utter_ask_order_id", "我来帮您查一下这笔充值，请发送订单号。"),
            Say("TU202611220007", "inform_order_id", 0.99),
            Reply("action_lookup_transaction",
                  "订单 TU202611220007：微信支付充值 1000.00 元，状态：成功。"),
            Say("可是余额里没有，转人工", "request_human", 0.97),
            Reply("action_handoff", HANDOFF_NEXT.format(ticket=number, minutes=3)), PAUSE,
            AgentSays(JOINED_TEXT.format(name=AGENT_NAME), AGENT_LOGIN, AGENT_NAME),
            Say("好的，余额一直没变", "affirm", 0.9),
            AgentSays("收到，我正在核实这笔充值的入账情况，请稍等几分钟。", AGENT_LOGIN, AGENT_NAME),
        ], gap=60)

    def unanswered_leaders(self) -> List[str]:
        return [leader for leader, _ in UNANSWERED]



def write_week(folder: Path, now: datetime) -> Tuple[Week, Any, str]:
    """Writes the week; returns it, the wallet DB gateway and the tracker store URL."""
    from walletbot.desk.scripted import add_tickets, set_presence, write_conversations
    from walletbot.store.db import make_engine
    from walletbot.store.service import WalletService

    week = Week(now)
    week.past_days()
    week.today()
    url = f"sqlite:///{folder / 'wallet.db'}"
    wallet = WalletService(engine_factory=lambda: make_engine(url), demo=True)

    def write(conn: Any) -> List[int]:
        ids = add_tickets(conn=conn, tickets=week.tickets)
        set_presence(conn=conn, login="agent1", seen=now)
        set_presence(conn=conn, login="agent2", seen=now)
        return ids

    ids = asyncio.run(wallet.run(write))
    week.lisi_id = ids[week.tickets.index(week.lisi)]
    week.lisi_number = f"T{week.lisi_id:06d}"
    week.lisi_conversation(week.lisi_number)
    tracker_url = write_conversations(folder / "tracker.db", week.conversations)
    return week, wallet, tracker_url


# --------------------------------------------------------------------------
# The desk, served from a thread of this process.


class ServedRasa:
    """What the desk's relay uses of Rasa's Agent: the (scripted) tracker store and locks."""

    def __init__(self, tracker_store: Any) -> None:
        from rasa.core.lock_store import InMemoryLockStore

        self.tracker_store = tracker_store
        self.lock_store = InMemoryLockStore()
        self.processor = self

    async def get_tracker(self, key: str) -> Any:
        return await self.tracker_store.get_or_create_tracker(key)

    async def save_tracker(self, tracker: Any) -> None:
        await self.tracker_store.save(tracker)

    async def execute_action(self, *_: Any) -> None:
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_desk(wallet: Any, tracker_path: Path, tracker_url: str) -> Iterator[str]:
    """Serves the desk until the block ends; yields its base URL (``…/webhooks/desk``)."""
    import logging

    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from sanic import Sanic

    from walletbot.desk.api import DeskInput
    from walletbot.desk.service import DeskService

    logging.getLogger("sanic.root").setLevel(logging.WARNING)
    channel = DeskInput.from_credentials({
        "secret": secrets.token_hex(32), "agents_file": str(ROOT / "config" / "agents.dev.yml"),
        "session_hours": 8, "tracker_db_url": tracker_url,
    })
    channel.desk = DeskService(wallet)
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tracker_path))
    port = free_port()
    loop = asyncio.new_event_loop()
    ready: "Future[asyncio.Event]" = Future()

    async def main() -> None:
        stop = asyncio.Event()
        app = Sanic(f"desk_screenshots_{secrets.token_hex(4)}")
        app.ctx.agent = ServedRasa(store)
        app.ctx.input_channels = []

        async def on_new_message(_message: Any) -> None:
            return None

        app.blueprint(channel.blueprint(on_new_message), url_prefix="/webhooks/desk")
        server = await app.create_server(host="127.0.0.1", port=port,
                                         return_asyncio_server=True, access_log=False)
        await server.startup()
        await server.before_start()
        await server.after_start()
        ready.set_result(stop)
        try:
            await stop.wait()
        finally:
            await server.before_stop()
            await server.close()
            await server.after_stop()

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as error:  # noqa: BLE001 - reported to the main thread
            if not ready.done():
                ready.set_exception(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    stop = ready.result(60)
    try:
        yield f"http://127.0.0.1:{port}/webhooks/desk"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        store.engine.dispose()


# --------------------------------------------------------------------------
# The pages. Selectors: walletbot/desk/static/desk.html and dashboard.html.


@contextlib.contextmanager
def step(what: str, page: Any, evidence: Path) -> Iterator[None]:
    """Names the failing step, and keeps a picture of the page as it was then."""
    try:
        yield
    except Exception as error:  # Playwright's errors and ours alike
        with contextlib.suppress(Exception):
            page.screenshot(path=str(evidence))
            what += f" (the page then: {evidence})"
        raise Failure(f"{what}: {error}") from error


def logged_in(browser: Any, base: str) -> Any:
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id=ZONE)
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#login", AGENT_LOGIN)
    page.fill("#password", AGENT_PASSWORD)
    page.click("#login-submit")
    page.locator("#me", has_text=AGENT_NAME).wait_for(timeout=STEP_TIMEOUT)
    return page


def shoot_queue(browser: Any, base: str, week: Week, path: Path, evidence: Path) -> str:
    """小王 opens 李四's ticket in the console: ``path``."""
    page = logged_in(browser, base)
    try:
        with step("desk queue", page, evidence):
            item = page.locator(f"#tickets li[data-id='{week.lisi_id}']")
            item.wait_for(timeout=STEP_TIMEOUT)
            item.click()
            for selector, text in (("#d-number", week.lisi_number), ("#d-user", "李四"),
                                   ("#transcript .line.user", "余额没变"),
                                   ("#transcript .line.agent", "正在核实"),
                                   ("#txs tr", "TU202611220007")):
                page.locator(selector, has_text=text).first.wait_for(timeout=STEP_TIMEOUT)
            tickets = page.locator("#tickets li").count()
            if tickets != 5:
                raise Failure(f"the queue shows {tickets} tickets, 5 are open")
            page.mouse.move(VIEWPORT["width"] - 1, VIEWPORT["height"] - 1)  # no hover
            page.screenshot(path=str(path), animations="disabled")
            return f"{tickets} open tickets, {week.lisi_number} (李四) open with 小王's replies"
    finally:
        page.context.close()


def shoot_dashboard(browser: Any, base: str, week: Week, path: Path, evidence: Path) -> str:
    """The supervisor dashboard over the last 7 days, the whole page: ``path``."""
    page = logged_in(browser, base)
    try:
        with step("dashboard", page, evidence):
            page.locator("#dashboard-link").click()
            page.wait_for_selector("body[data-loaded-days='7']", timeout=STEP_TIMEOUT)
            shown = page.inner_text("#fig-conversations").strip()
            if shown != str(len(week.conversations)):
                raise Failure(f"会话数 shows {shown}, {len(week.conversations)} were scripted")
            questions = page.eval_on_selector_all(
                "#unanswered tr .question > div:first-child", "ns => ns.map(n => n.textContent)")
            unknown = set(questions) - set(t for q in UNANSWERED for t in [q[0], *q[1]])
            if len(questions) < 5 or unknown:
                raise Failure(f"unanswered questions {questions!r} are not the scripted ones")
            if page.locator("#chart-days rect.bar[data-value]").count() != 14:
                raise Failure("the daily chart does not have 7 days of two bars")
            page.mouse.move(VIEWPORT["width"] - 1, 1)
            page.screenshot(path=str(path), full_page=True, animations="disabled")
            return f"会话数 {shown} as scripted, {len(questions)} unanswered questions"
    finally:
        page.context.close()


# --------------------------------------------------------------------------


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img",
                        help="folder of desk_queue.png and desk_dashboard.png (default: docs/img)")
    parser.add_argument("--chromium", help="the chromium executable (default: Debian's)")
    args = parser.parse_args(argv)

    chromium = find_chromium(args.chromium)
    if not chromium:
        print("desk screenshots: Debian's chromium is not installed "
              "(apt-get install chromium fonts-wqy-microhei)", file=sys.stderr)
        return 2
    os.environ.update(PINNED)
    os.environ.pop("REDIS_URL", None)  # a developer's Redis is shared state: in memory instead
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="walletbot-desk-screenshots-"))
    names = ("desk_queue.png", "desk_dashboard.png")
    ok = False
    try:
        week, wallet, tracker_url = write_week(folder, datetime.now(timezone.utc))
        print(f"desk screenshots: {len(week.conversations)} conversations and "
              f"{len(week.tickets)} tickets scripted in {folder}", flush=True)
        with serve_desk(wallet, folder / "tracker.db", tracker_url) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                said = [
                    shoot_queue(browser, base, week, folder / names[0], folder / "failed-queue.png"),
                    shoot_dashboard(browser, base, week, folder / names[1],
                                    folder / "failed-dashboard.png"),
                ]
            finally:
                browser.close()
        # Both pictures or neither: a failed run leaves <out> as it was.
        for name, what in zip(names, said):
            shutil.move(str(folder / name), str(out / name))
            print(f"desk screenshots: wrote {out / name} "
                  f"({(out / name).stat().st_size // 1024} KB): {what}")
        ok = True
    except (Failure, PlaywrightError) as error:
        print(f"desk screenshots: failed: {error}", file=sys.stderr)
    finally:
        if ok:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"desk screenshots: the databases and pictures are kept in {folder}",
                  file=sys.stderr)
    if not ok:
        return 1
    print(f"desk screenshots: done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
