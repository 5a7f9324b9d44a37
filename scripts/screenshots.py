#!/usr/bin/env python
"""The README's screenshots of the web chat page and the agent desk, taken in Chromium.

    .venv/bin/python scripts/screenshots.py [--out docs/img] [--model models/walletbot.tar.gz]

Writes ``<out>/chat.png`` (a phone, 390×844 CSS px at device scale 2, so
780×1688 px: 张三 logs in with the demo login, asks how long a withdrawal
takes, then looks up his order WD202611180002) and ``<out>/desk.png`` (a
desktop, 1280×800 px: 李四 has asked for a human on the chat page; agent1
logs in, sees the ticket in the queue and opens it, transcript and all).

The script starts a bot of its own, the way scripts/run.sh does (the same two
``python -m walletbot.server run …`` commands, the environment of
scripts/env.sh), but on free ports and with its databases in a temporary
folder instead of var/, so it neither collides with a running `make run` nor
touches the developer's data. Everything it starts is stopped at the end,
also on an error or Ctrl-C. Its own standalone launcher rather than
tests/e2e/processes.py: that module imports the tests' conftest (pytest and
its fixtures), and a script of the repository must keep working however the
tests are reorganised (and where tests/ is not shipped).

Only Debian's chromium is used (``apt-get install chromium fonts-wqy-microhei``;
the fonts are what makes the Chinese render), never ``playwright install``.
Exit status: 0 done, 1 something failed (the servers' logs are printed and
kept), 2 no chromium or no model.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
READY_TIMEOUT = 300  # s: the Rasa server loads TensorFlow and the model
STEP_TIMEOUT = 30_000  # ms: one page step (a bot turn, a poll of the desk)

CHAT_VIEWPORT = {"width": 390, "height": 844}
CHAT_SCALE = 2
DESK_VIEWPORT = {"width": 1280, "height": 800}
DESK_SCALE = 1

# What the pictures show must not depend on a developer's .env or shell: the
# demo users and orders (seeded outside production only), the demo login, the
# dev agents and their password, agents around the clock, and no
# announcement of the demo ticket to a real group chat.
PINNED = {
    "WALLETBOT_ENV": "dev",
    "WEB_DEMO_LOGIN": "true",
    "DESK_AGENTS_FILE": "config/agents.dev.yml",
    "HANDOFF_SERVICE_HOURS": "00:00-24:00",
    "DESK_WEBHOOK_URL": "",
}
AGENT_LOGIN, AGENT_PASSWORD, AGENT_NAME = "agent1", "dev-agent-password", "小王"


class Failure(Exception):
    """A step failed; the message says which."""


# --------------------------------------------------------------------------
# The bot: action server + Rasa server, as scripts/run.sh starts them.


def env_sh_environment() -> Dict[str, str]:
    """This process's environment after scripts/env.sh (.env, then config/dev.env defaults)."""
    result = subprocess.run(["bash", "-c", ". scripts/env.sh && env -0"], cwd=ROOT,
                            capture_output=True, check=True)
    pairs = (item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item)
    return {key: value for key, value in pairs}


def free_ports(count: int) -> List[int]:
    """``count`` distinct ports nobody listens on right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


class Bot:
    """One action server and one Rasa server with their databases under ``var``."""

    def __init__(self, model: Path, var: Path) -> None:
        self.model, self.var = model, var
        self.rasa_port, self.action_port = free_ports(2)
        self.env = env_sh_environment()
        self.env.update(PINNED)
        self.env.update(
            RASA_PORT=str(self.rasa_port), ACTION_PORT=str(self.action_port),
            ACTION_ENDPOINT_URL=f"http://127.0.0.1:{self.action_port}/webhook",
            TRACKER_DB_URL=f"sqlite:///{var / 'tracker.db'}",
            WALLET_DB_URL=f"sqlite:///{var / 'wallet.db'}",
            MODEL=str(model),
        )
        # A developer's Redis is shared state (locks, fan-out): in-memory instead.
        self.env.pop("REDIS_URL", None)
        self.processes: Dict[str, subprocess.Popen] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def _spawn(self, name: str, args: List[str]) -> None:
        with open(self.var / f"{name}.log", "wb") as log:
            # A session of its own: the stop reaches the whole process group,
            # and a Ctrl-C in the terminal reaches only this script.
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "walletbot.server", *args], cwd=ROOT, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def start(self) -> None:
        """Starts both servers (in parallel) and returns once both answer."""
        self._spawn("actions", ["run", "actions", "--actions", "actions",
                                "--port", str(self.action_port)])
        self._spawn("rasa", [
            "run", "--model", str(self.model), "--interface", "127.0.0.1",
            "--port", str(self.rasa_port), "--enable-api",
            "--auth-token", self.env["RASA_AUTH_TOKEN"],
            "--endpoints", "endpoints.yml", "--credentials", "credentials.yml",
        ])
        pending = {
            "actions": [f"http://127.0.0.1:{self.action_port}/health"],
            "rasa": [f"{self.base}/", f"{self.base}/webhooks/web/chat",
                     f"{self.base}/webhooks/desk/login"],
        }
        deadline = time.monotonic() + READY_TIMEOUT
        while pending:
            for name in list(pending):
                if self.processes[name].poll() is not None:
                    raise Failure(f"the {name} server exited during start-up")
                if all(answers(url) for url in pending[name]):
                    del pending[name]
            if pending and time.monotonic() > deadline:
                raise Failure(f"not ready after {READY_TIMEOUT} s: {', '.join(pending)}")
            time.sleep(0.3)
        # Rasa loads the model before it listens; /status answers 409 without one.
        token = urllib.parse.quote(self.env["RASA_AUTH_TOKEN"])
        if not answers(f"{self.base}/status?token={token}"):
            raise Failure(f"the Rasa server serves no model (is {self.model} a trained model?)")

    def stop(self) -> None:
        """SIGTERM to each server's process group, SIGKILL after 15 s."""
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=15)

    def log_tails(self, chars: int = 3000) -> str:
        parts = []
        for name in self.processes:
            path = self.var / f"{name}.log"
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {path} (last {chars} characters) ---\n{text[-chars:]}")
        return "\n".join(parts)


# --------------------------------------------------------------------------
# The pages. CSS selectors: walletbot/channels/web/static/chat.html and
# walletbot/desk/static/desk.html.


class ChatPage:
    """The web chat page in one browser context, watching its socket.io traffic.

    The page says "已连接" for the old socket until a login's new socket
    replaces it, so "connected" is the server's socket.io CONNECT packet
    ("40…") on a new WebSocket; "the bot has finished answering" is no frame
    for a moment after the expected text is shown (a turn may be several
    messages).
    """

    def __init__(self, context, base: str) -> None:
        self.page = context.new_page()
        self.base = base
        self.connects = 0
        self.last_frame = time.monotonic()
        self.page.on("websocket", self._watch)

    def _watch(self, ws) -> None:
        def frame(payload) -> None:
            self.last_frame = time.monotonic()
            if isinstance(payload, str) and payload.startswith("40"):
                self.connects += 1
        ws.on("framereceived", frame)

    def until(self, condition: Callable[[], bool], what: str,
              timeout_ms: int = STEP_TIMEOUT) -> None:
        # The page's CSP forbids eval (no wait_for_function); short waits
        # let Playwright deliver the WebSocket events meanwhile.
        deadline = time.monotonic() + timeout_ms / 1000
        while not condition():
            if time.monotonic() > deadline:
                raise Failure(f"chat page: timed out waiting for {what}")
            self.page.wait_for_timeout(50)

    def _connected(self, connects_before: int) -> None:
        self.until(lambda: self.connects > connects_before, "the socket.io connection")
        self.page.locator("#status", has_text="已连接").wait_for(timeout=STEP_TIMEOUT)

    def open(self) -> None:
        before = self.connects
        self.page.goto(f"{self.base}/webhooks/web/chat", wait_until="networkidle")
        self.page.locator("#messages .msg.bot").first.wait_for(timeout=STEP_TIMEOUT)
        self._connected(before)

    def login(self, user: str, name: str) -> None:
        before = self.connects
        self.page.click(f"#login-{user}")
        self.page.locator("#who", has_text=name).wait_for(timeout=STEP_TIMEOUT)
        self._connected(before)

    def ask(self, text: str, expect: str, quiet: float = 0.8) -> str:
        """Sends ``text``; returns the text of the bot's message containing ``expect``."""
        bots = self.page.locator("#messages .msg.bot")
        before = bots.count()
        self.page.fill("#input", text)
        self.page.click("#send")
        self.page.locator("#messages .msg.user", has_text=text).last.wait_for(timeout=STEP_TIMEOUT)
        answer = self.page.locator("#messages .msg.bot", has_text=expect).last
        answer.wait_for(timeout=STEP_TIMEOUT)
        self.until(lambda: bots.count() > before, f"a new answer to {text!r}")
        self.until(lambda: time.monotonic() - self.last_frame >= quiet,
                   f"the end of the answer to {text!r}")
        return answer.inner_text()


def new_context(browser, viewport: Dict[str, int], scale: int, mobile: bool):
    return browser.new_context(viewport=viewport, device_scale_factor=scale,
                               is_mobile=mobile, has_touch=mobile,
                               locale="zh-CN", timezone_id="Asia/Shanghai")


@contextlib.contextmanager
def step(what: str, page, evidence: Path) -> Iterator[None]:
    """Names the failing step, and keeps a picture of the page as it was then."""
    try:
        yield
    except Exception as error:  # Playwright's errors and ours alike
        with contextlib.suppress(Exception):
            page.screenshot(path=str(evidence))
            what += f" (the page then: {evidence})"
        raise Failure(f"{what}: {error}") from error


def shoot_chat(browser, base: str, path: Path, evidence: Path) -> None:
    """张三 logs in, asks an FAQ and looks up his order: ``path``."""
    context = new_context(browser, CHAT_VIEWPORT, CHAT_SCALE, mobile=True)
    try:
        chat = ChatPage(context, base)
        with step("chat page (张三)", chat.page, evidence):
            chat.open()
            chat.login("zhangsan", "张三")
            chat.ask("提现一般几天到账", "工作日")
            chat.ask("帮我查一下 WD202611180002", "1000.00元")
            chat.page.locator("#input").blur()
            chat.page.screenshot(path=str(path), animations="disabled")
    finally:
        context.close()


def raise_ticket(browser, base: str, evidence: Path) -> str:
    """李四 asks for a human on the chat page; returns the ticket's number."""
    context = new_context(browser, CHAT_VIEWPORT, CHAT_SCALE, mobile=True)
    try:
        chat = ChatPage(context, base)
        with step("chat page (李四 asks for a human)", chat.page, evidence):
            chat.open()
            chat.login("lisi", "李四")
            chat.ask("支付密码忘了怎么办", "支付密码")
            reply = chat.ask("转人工", "工单号")
            found = re.search(r"工单号\s*([A-Za-z0-9-]+)", reply)
            if not found:
                raise Failure(f"no ticket number in {reply!r}")
            return found.group(1)
    finally:
        context.close()


def shoot_desk(browser, base: str, path: Path, number: str, evidence: Path) -> None:
    """agent1 logs in and opens ticket ``number``: ``path``."""
    context = new_context(browser, DESK_VIEWPORT, DESK_SCALE, mobile=False)
    try:
        desk = context.new_page()
        with step(f"desk (ticket {number})", desk, evidence):
            desk.goto(f"{base}/webhooks/desk/", wait_until="networkidle")
            desk.fill("#login", AGENT_LOGIN)
            desk.fill("#password", AGENT_PASSWORD)
            desk.click("#login-submit")
            desk.locator("#me", has_text=AGENT_NAME).wait_for(timeout=STEP_TIMEOUT)
            item = desk.locator("#tickets li", has_text=number)
            item.wait_for(timeout=STEP_TIMEOUT)  # the queue polls every 2 s
            item.click()
            for selector, text in (("#tickets li.selected", number), ("#d-number", number),
                                   ("#transcript .line.user", "转人工"),
                                   ("#transcript .line.bot", "工单号"),
                                   ("#d-user", "李四"), ("#txs tr", None)):
                desk.locator(selector, has_text=text).first.wait_for(timeout=STEP_TIMEOUT)
            desk.mouse.move(DESK_VIEWPORT["width"] - 1, DESK_VIEWPORT["height"] - 1)  # no hover
            desk.screenshot(path=str(path), animations="disabled")
    finally:
        context.close()


# --------------------------------------------------------------------------


def find_chromium(given: Optional[str]) -> Optional[str]:
    if given:
        return given if os.access(given, os.X_OK) else None
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


def _stop_on_sigterm(signum, frame):  # noqa: ARG001
    raise SystemExit(128 + signum)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img",
                        help="folder of chat.png and desk.png (default: docs/img)")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "walletbot.tar.gz",
                        help="the model to serve (default: models/walletbot.tar.gz)")
    parser.add_argument("--chromium", help="the chromium executable (default: Debian's)")
    args = parser.parse_args(argv)

    chromium = find_chromium(args.chromium)
    if not chromium:
        print("screenshots: Debian's chromium is not installed "
              "(apt-get install chromium fonts-wqy-microhei)", file=sys.stderr)
        return 2
    model = args.model.resolve()
    if not model.is_file():
        print(f"screenshots: no model at {model} (`make train` builds it)", file=sys.stderr)
        return 2
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    started = time.monotonic()
    var = Path(tempfile.mkdtemp(prefix="walletbot-screenshots-"))
    bot = Bot(model, var)
    ok = False
    try:
        print(f"screenshots: starting the bot on port {bot.rasa_port} "
              f"(actions {bot.action_port}), databases in {var}", flush=True)
        bot.start()
        print(f"screenshots: bot ready after {time.monotonic() - started:.0f} s", flush=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                shoot_chat(browser, bot.base, var / "chat.png", var / "failed-chat.png")
                number = raise_ticket(browser, bot.base, var / "failed-handoff.png")
                shoot_desk(browser, bot.base, var / "desk.png", number, var / "failed-desk.png")
            finally:
                browser.close()
        # Both pictures or neither: a failed run leaves <out> as it was.
        for name in ("chat.png", "desk.png"):
            shutil.move(str(var / name), str(out / name))
        ok = True
    except (Failure, PlaywrightError) as error:
        print(f"screenshots: failed: {error}", file=sys.stderr)
    finally:
        bot.stop()
        if ok:
            shutil.rmtree(var, ignore_errors=True)
        elif bot.processes:
            print(bot.log_tails(), file=sys.stderr)
            print(f"screenshots: the servers' logs are kept in {var}", file=sys.stderr)
    if not ok:
        return 1
    for name in ("chat.png", "desk.png"):
        print(f"screenshots: wrote {out / name} ({(out / name).stat().st_size // 1024} KB)")
    print(f"screenshots: done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
