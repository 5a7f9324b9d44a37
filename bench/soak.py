"""Soak and load benchmark of the production profile, driven by Locust (headless).

Starts the production profile (scripts/prod.sh as tests/prod starts it: nginx,
two Rasa replicas, the action server, PostgreSQL, Redis; WeChat in safe mode;
the rate limit off) with a fake WeChat API (token and customer-service
endpoints, which records every delivery), binds the soak's WeChat OpenIDs to
the demo user 张三, checks each scenario message once, then runs Locust
(bench/locust/locustfile.py, in its own venv bench/.locust-venv, made here
when missing or stale) against nginx with a realistic mix: FAQ questions,
lookups (also through the form), handoffs with a desk agent's replies and the
satisfaction score.

    . scripts/env.sh && .venv/bin/python bench/soak.py --find-max           # 20 min at 70 %
    .venv/bin/python bench/soak.py --max-rate 30 --duration 90 --warmup 20  # a short one
    .venv/bin/python bench/soak.py --users 10 --user-rate 0.5 --duration 90 --warmup 20

--find-max: a stepped ramp (--steps, default 10,25,50,75 users, --step-duration
60 s each, users as fast as the bot answers); the maximum is the highest
msg/s of a step with 0 failures and p99 <= 1 s. The soak then runs
ceil(0.7 x max / --user-rate) users, each sending --user-rate messages a
second (default 0.2). --max-rate R uses a maximum measured before; --users N
takes N users as they are.

While Locust runs, the resident memory (VmRSS, with children) of both
replicas and the action server is sampled every 10 s from /proc. Afterwards
every conversation of the run is read from PostgreSQL (the tracker store) and
checked: events ordered by id have non-decreasing timestamps; every user
message outside a handoff has a bot reply; every handoff has agent replies,
ends, asks for the score and thanks for it; the WeChat MsgIds stored are the
ones sent, in order (a conversation the tracker store pruned,
TRACKER_MAX_EVENTS, keeps the newest of them).

Writes into --out (default bench/.soak/<timestamp>/), per Locust run (soak, and
max<users> for each --find-max step): Locust's CSV (<run>_stats.csv,
<run>_stats_history.csv with every request name, <run>_failures.csv,
<run>_exceptions.csv), HTML report (<run>.html), log, scenario and the messages
sent (<run>_sent.jsonl); then the memory samples (memory.csv), the events of
conversations that failed the check (conversation_problems.json) and the
summary (summary.md). With --profile S, py-spy records both replicas (only
the thread holding the interpreter lock) for S seconds in the first and in the
last --window, and the summary compares where their time went (profile_*.txt
hold the raw stacks). msg/s counts the WeChat messages answered from the end
of the ramp (10 s) to the time limit; p50/p95/p99 are of every WeChat message.
Prints the Markdown summary with PASS/FAIL per criterion (0 errors; memory
growth <= 5 % per process after --warmup; p99 of the last --window seconds
within 20 % of the first; every conversation complete and in order) and exits
1 if one fails.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOCUST_DIR = BENCH / "locust"
LOCUSTFILE = LOCUST_DIR / "locustfile.py"
REQUIREMENTS = LOCUST_DIR / "requirements.txt"
LOCUST_VENV = BENCH / ".locust-venv"
DEFAULT_OUT = BENCH / ".soak"
PROD_ENV = ROOT / "config" / "prod" / "prod.env"

for _folder in (BENCH, LOCUST_DIR):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from soak_flow import (  # noqa: E402
    AGENT_PREFIX, CSAT_PROMPT, CSAT_THANKS, JOIN_MARK,
)

SOAK_PREFIX = "o_soak_s_"  # the soak's OpenIDs (find-max steps: o_soak_m<users>_)
WECHAT_NAMES = "wechat: "  # prefix of the message requests in Locust's statistics
FIND_MAX_P99_MS = 1000.0
SOAK_SHARE = 0.7
MAX_MEMORY_GROWTH = 5.0  # per cent, after warm-up
MAX_P99_RATIO = 1.2
MEMORY_INTERVAL = 10.0
# Locust starts the users over this many seconds (spawn rate: users / RAMP_SECONDS).
RAMP_SECONDS = 10
STOP_TIMEOUT = 90  # seconds Locust gives users to finish their task at the end
HANDOFF_TIMEOUT = 90
DUMPED_CONVERSATIONS = 10  # faulty conversations whose events go to conversation_problems.json
PERCENTILE_COLUMNS = (("50%", 0.50), ("66%", 0.66), ("75%", 0.75), ("80%", 0.80),
                      ("90%", 0.90), ("95%", 0.95), ("98%", 0.98), ("99%", 0.99),
                      ("99.9%", 0.999), ("99.99%", 0.9999), ("100%", 1.0))
# The lookups of 张三's demo orders (walletbot/store/demo.py).
LOOKUP = {
    "direct": "帮我查一下WD202611180002",
    "found": "1000.00",
    "ask": "帮我查个订单",
    "asks_for_id": "订单号",
    "order_id": "WD202611180002",
    "recent": "我最近的充值到账了吗",
    "recent_lists": "TU202611210003",
    "recent_picked": "等待银行确认",
}
FAQ_ENTRIES = ("withdraw_time", "withdraw_how", "withdraw_fee", "topup_methods", "register",
               "reset_password", "refund", "sms_code", "bind_bank_card", "transaction_records")


# --- the load generator's venv -------------------------------------------------------


def locust_python() -> str:
    """A Python 3.10 or 3.11 for the locust venv (the project's find-python.sh as a last resort)."""
    candidates = [shutil.which("python3.11"), shutil.which("python3.10")]
    found = subprocess.run(["bash", str(ROOT / "scripts" / "find-python.sh")],
                           capture_output=True, text=True)
    candidates.append(found.stdout.strip() or None)
    for candidate in filter(None, candidates):
        version = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                                 capture_output=True, text=True)
        if version.returncode == 0 and version.stdout.strip() in ("(3, 10)", "(3, 11)"):
            return candidate
    raise SystemExit("soak: no Python 3.10 or 3.11 for bench/.locust-venv")


def ensure_locust_venv(venv: Path = LOCUST_VENV, requirements: Path = REQUIREMENTS) -> Path:
    """The venv's ``locust``, (re)installed when the venv is missing or its pins changed."""
    stamp = venv / ".requirements.sha256"
    wanted = hashlib.sha256(requirements.read_bytes()).hexdigest()
    locust = venv / "bin" / "locust"
    if locust.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return locust
    print(f"soak: installing {requirements.relative_to(ROOT)} into {venv.relative_to(ROOT)}",
          file=sys.stderr, flush=True)
    if not (venv / "bin" / "python").exists():
        subprocess.run([locust_python(), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "-r", str(requirements)], check=True)
    stamp.write_text(wanted + "\n")
    return locust


# --- WeChat's API, faked --------------------------------------------------------------


class FakeWeChatApi:
    """WeChat's token and customer-service endpoints; ``GET /bench/inbox?openid=`` lists deliveries.

    The bot reaches WeChat users outside a passive reply only through the
    customer-service API: agent replies, the score question after a handoff,
    and answers that missed the reply budget (the fallback the soak must not see).
    """

    def __init__(self) -> None:
        self.deliveries: Dict[str, List[str]] = defaultdict(list)
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, data: Any) -> None:
                body = json.dumps(data, ensure_ascii=False).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/bench/inbox":
                    openid = urllib.parse.parse_qs(url.query).get("openid", [""])[0]
                    self._json({"messages": owner.delivered(openid)})
                else:
                    self._json({"access_token": "soak-token", "expires_in": 7200})

            def do_POST(self) -> None:
                data = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                text = (data.get("text") or {}).get("content", "")
                with owner.lock:
                    owner.deliveries[str(data.get("touser"))].append(text)
                self._json({"errcode": 0, "errmsg": "ok"})

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self, openid: str) -> List[str]:
        with self.lock:
            return list(self.deliveries.get(openid, ()))

    def fallbacks(self, prefixes: Sequence[str]) -> Dict[str, List[str]]:
        """Deliveries to the run's users that are neither an agent's nor the score question."""
        with self.lock:
            found = {openid: [t for t in texts if not is_handoff_delivery(t)]
                     for openid, texts in self.deliveries.items()
                     if openid.startswith(tuple(prefixes))}
        return {openid: texts for openid, texts in found.items() if texts}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def is_handoff_delivery(text: str) -> bool:
    """An agent's message or the score question: the deliveries a handoff is meant to make."""
    return text.startswith(AGENT_PREFIX) or CSAT_PROMPT in text


# --- the stack ------------------------------------------------------------------------


def start_soak_stack(api_url: str, settings: Optional[Mapping[str, str]] = None) -> Any:
    """scripts/prod.sh as tests/prod starts it, rate limit off, WeChat's API faked.

    ``settings``: more KEY=VALUE lines for the stack's env file (``--set``).
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from latency import BOT_MODEL
    from tests.prod.conftest import find_binaries, start_stack

    missing = [name for name, path in find_binaries().items() if path is None]
    if missing:
        raise SystemExit(f"soak needs {', '.join(missing)} (apt-get install postgresql "
                         "redis-server nginx)")
    if not BOT_MODEL.exists():
        raise SystemExit(f"no model at {BOT_MODEL}: run `make train` first")
    return start_stack(BOT_MODEL, {**(settings or {}), "RATE_LIMIT_PER_MINUTE": "0",
                                   "WECHAT_API_BASE": api_url})


def bind_openids(stack: Any, prefix: str, count: int) -> None:
    """Binds ``<prefix>0`` … ``<prefix><count-1>`` to 张三, so lookups run the whole path."""
    from latency import bind_bench_users

    bind_bench_users(stack.env["WALLET_DB_URL"], [count], [("wechat", prefix)], 0)


def account_of(stack: Any) -> Any:
    from wechat_sim import Account

    return Account(stack.env["WECHAT_TOKEN"], stack.env["WECHAT_AES_KEY"],
                   stack.env["WECHAT_APP_ID"])


# --- the scenario ---------------------------------------------------------------------


def faq_cases(entries: Sequence[str] = FAQ_ENTRIES) -> List[Dict[str, str]]:
    """A question of each FAQ entry and the start of its answer (the knowledge base's own)."""
    from walletbot.faq.kb import load_entry

    cases = []
    for name in entries:
        entry = load_entry(ROOT / "data" / "faq" / f"{name}.yml")
        first_line = entry.answer.strip().splitlines()[0]
        cases.append({"question": entry.questions[0], "expect": first_line[:12]})
    return cases


def failure_markers() -> List[str]:
    """What the bot says only when a dependency failed: the apologies of the turn, lookups, handoff."""
    if str(ROOT) not in sys.path:  # the action server's package, actions/
        sys.path.insert(0, str(ROOT))
    from actions.transactions import MSG_DB_DOWN
    from walletbot.handoff.wording import HANDOFF_UNAVAILABLE
    from walletbot.turns.screening import FAILED

    return [FAILED, MSG_DB_DOWN, HANDOFF_UNAVAILABLE]


def write_scenario(path: Path, stack: Any, api: FakeWeChatApi, *, prefix: str, openids: int,
                   user_rate: float, sent_log: Path, faq: List[Dict[str, str]],
                   markers: List[str]) -> Path:
    scenario = {
        "token": stack.env["WECHAT_TOKEN"], "aes_key": stack.env["WECHAT_AES_KEY"],
        "app_id": stack.env["WECHAT_APP_ID"], "openid_prefix": prefix, "openids": openids,
        "inbox": api.url, "agent_login": "admin", "agent_password": stack.agent_password,
        "user_rate": user_rate, "sent_log": str(sent_log), "faq": faq, "lookup": LOOKUP,
        "failure_markers": markers, "handoff_timeout": HANDOFF_TIMEOUT,
    }
    path.write_text(json.dumps(scenario, ensure_ascii=False, indent=2), encoding="utf-8")
    path.chmod(0o600)  # the stack's (throw-away) secrets
    return path


def post_wechat(base: str, account: Any, openid: str, text: str, msg_id: int) -> Tuple[int, str]:
    path, body = account.request(openid, text, msg_id)
    request = urllib.request.Request(base + path, data=body,
                                     headers={"Content-Type": "text/xml"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def sanity_pass(stack: Any, faq: List[Dict[str, str]], markers: List[str], openid: str) -> None:
    """Each scenario message once, judged as Locust judges it: a broken scenario stops here."""
    from wechat_sim import judge_reply

    account = account_of(stack)
    steps = [(case["question"], case["expect"]) for case in faq]
    steps += [(LOOKUP["direct"], LOOKUP["found"]), (LOOKUP["ask"], LOOKUP["asks_for_id"]),
              (LOOKUP["order_id"], LOOKUP["found"]), (LOOKUP["recent"], LOOKUP["recent_lists"]),
              ("1", LOOKUP["recent_picked"])]
    msg_id = (int(time.time()) % 10**6) * 10**6  # as the locustfile numbers them
    for n, (text, expect) in enumerate(steps):
        status, body = post_wechat(stack.nginx, account, openid, text, msg_id + n)
        reply, problem = judge_reply(status, body, account, expect=[expect],
                                     failure_markers=markers)
        if problem:
            raise SystemExit(f"soak: the scenario message {text!r} failed before the load: "
                             f"{problem}\nreply: {reply!r}")


# --- Locust ---------------------------------------------------------------------------


@dataclass
class LocustRun:
    """One headless Locust run's files."""

    folder: Path
    name: str

    @property
    def prefix(self) -> Path:
        return self.folder / self.name

    def csv(self, kind: str) -> Path:
        return self.folder / f"{self.name}_{kind}.csv"


def run_locust(locust: Path, run: LocustRun, *, host: str, scenario: Path, users: int,
               duration: float) -> int:
    """Locust headless with ``users`` WeChat users and the agent; its exit status."""
    total = users + 1  # the agent (AgentUser.fixed_count) is one of Locust's users
    argv = [str(locust), "-f", str(LOCUSTFILE), "--headless", "--host", host,
            "-u", str(total), "-r", str(max(1, math.ceil(total / RAMP_SECONDS))),
            "-t", f"{int(duration)}s", "--stop-timeout", str(STOP_TIMEOUT),
            "--csv", str(run.prefix), "--csv-full-history", "--html", str(run.prefix) + ".html",
            "--logfile", str(run.prefix) + ".log", "--only-summary"]
    env = dict(os.environ, SOAK_SCENARIO=str(scenario))
    with open(str(run.prefix) + ".out", "wb") as out:
        return subprocess.run(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=duration + STOP_TIMEOUT + HANDOFF_TIMEOUT + 300).returncode


def read_csv(path: Path) -> List[Dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- percentiles from Locust's CSV (pure) ---------------------------------------------


def number(value: Any) -> Optional[float]:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None  # Locust writes N/A for a name without requests
    return None if math.isnan(result) else result


def quantile_points(row: Mapping[str, str]) -> List[Tuple[float, float]]:
    """``(quantile, ms)`` of a Locust CSV row, from (0, 0), non-decreasing in ms."""
    points = [(0.0, 0.0)]
    for column, q in PERCENTILE_COLUMNS:
        value = number(row.get(column))
        if value is not None:
            points.append((q, max(value, points[-1][1])))
    return points


def _cdf(points: Sequence[Tuple[float, float]], x: float, *, left: bool = False) -> float:
    """The share of requests at or under ``x`` ms (``left``: under), linear between percentiles.

    Equal values at several percentiles are a jump of the distribution at that value.
    """
    if left:
        above = [i for i, (_, ms) in enumerate(points) if ms >= x]
        if not above:
            return points[-1][0]
        m = above[0]
        if m == 0:
            return 0.0
        (q0, v0), (q1, v1) = points[m - 1], points[m]
        return q0 + (q1 - q0) * (x - v0) / (v1 - v0)
    below = [i for i, (_, ms) in enumerate(points) if ms <= x]
    k = below[-1] if below else 0
    if k == len(points) - 1:
        return points[-1][0]
    (q0, v0), (q1, v1) = points[k], points[k + 1]
    return q0 + (q1 - q0) * (x - v0) / (v1 - v0)


def mixture_quantile(components: Iterable[Tuple[float, Sequence[Tuple[float, float]]]],
                     q: float) -> Optional[float]:
    """The ``q`` quantile (ms) of requests described by ``(weight, quantile points)`` parts.

    Locust reports percentiles per request name and, in the history, per
    10-second window; the requests of several names or windows together have
    the mixture of their distributions: ``F(x) = sum(w_i F_i(x)) / sum(w_i)``,
    each ``F_i`` linear between its reported percentiles. ``F`` is then linear
    between the union of the reported values (with jumps where a part reports
    one value for several percentiles), so the quantile is found exactly on
    that function. None without any weight.
    """
    parts = [(w, p) for w, p in components if w > 0 and len(p) > 1]
    if not parts:
        return None
    total = sum(w for w, _ in parts)

    def mixture(x: float, left: bool = False) -> float:
        return sum(w * _cdf(p, x, left=left) for w, p in parts) / total

    tolerance = 1e-9
    x0, f0 = 0.0, 0.0
    for x in sorted({ms for _, p in parts for _, ms in p}):
        before, at = mixture(x, left=True), mixture(x)
        if before >= q - tolerance and before > f0:
            return x0 + (x - x0) * min(1.0, (q - f0) / (before - f0))
        if at >= q - tolerance:
            return x
        x0, f0 = x, at
    return x0


def is_message(row: Mapping[str, str]) -> bool:
    return row.get("Name", "").startswith(WECHAT_NAMES)


def overall_percentiles(stats: Sequence[Mapping[str, str]],
                        quantiles: Sequence[float] = (0.5, 0.95, 0.99)) -> Dict[float, Optional[float]]:
    """Percentiles (ms) of all WeChat messages, from the per-name rows of ``*_stats.csv``."""
    parts = [(number(r["Request Count"]) or 0.0, quantile_points(r))
             for r in stats if is_message(r)]
    return {q: mixture_quantile(parts, q) for q in quantiles}


def window_quantile(history: Sequence[Mapping[str, str]], start: float, end: float,
                    q: float = 0.99, span: float = 10.0) -> Optional[float]:
    """The ``q`` quantile (ms) of WeChat messages answered between ``start`` and ``end``.

    From ``*_stats_history.csv`` (``--csv-full-history``): each name's rows
    carry the percentiles of about the last ``span`` seconds (Locust's
    current-response-time window) and the running request count. Rows at
    least ``span`` apart are taken as disjoint windows, weighted by the
    requests counted between them, and mixed (:func:`mixture_quantile`).
    """
    by_name: Dict[str, List[Mapping[str, str]]] = defaultdict(list)
    for row in history:
        stamp = number(row.get("Timestamp"))
        if is_message(row) and stamp is not None and start <= stamp <= end:
            by_name[row["Name"]].append(row)
    parts = []
    for rows in by_name.values():
        rows.sort(key=lambda r: float(r["Timestamp"]))
        last_stamp = float(rows[0]["Timestamp"])
        last_count = number(rows[0]["Total Request Count"]) or 0.0
        for row in rows[1:]:
            stamp = float(row["Timestamp"])
            points = quantile_points(row)
            # Locust writes 0 for every percentile before it has a window of
            # earlier counts: no figures, so the next row takes these requests.
            if stamp - last_stamp < span or points[-1][1] <= 0:
                continue
            count = number(row["Total Request Count"]) or 0.0
            parts.append((count - last_count, points))
            last_stamp, last_count = stamp, count
    return mixture_quantile(parts, q)


def history_span(history: Sequence[Mapping[str, str]]) -> Optional[Tuple[float, float]]:
    stamps = [s for s in (number(r.get("Timestamp")) for r in history) if s is not None]
    return (min(stamps), max(stamps)) if stamps else None


def messages_by(history: Sequence[Mapping[str, str]], moment: float) -> float:
    """WeChat messages answered by ``moment`` (each name's last running count until then)."""
    latest: Dict[str, Tuple[float, float]] = {}
    for row in history:
        stamp = number(row.get("Timestamp"))
        if is_message(row) and stamp is not None and stamp <= moment:
            if row["Name"] not in latest or stamp >= latest[row["Name"]][0]:
                latest[row["Name"]] = (stamp, number(row["Total Request Count"]) or 0.0)
    return sum(count for _, count in latest.values())


def message_rate(history: Sequence[Mapping[str, str]], duration: float,
                 ramp: float = RAMP_SECONDS) -> Optional[float]:
    """Messages a second from the end of the ramp to the run-time limit.

    Neither the ramp nor the end, when users only finish their handoffs,
    is the load asked for (Locust's own Requests/s counts both).
    """
    span = history_span(history)
    if span is None or duration <= 0:
        return None
    start = span[0]
    begin = start + ramp if duration > 2 * ramp else start
    end = start + duration
    return (messages_by(history, end) - messages_by(history, begin)) / (end - begin)


@dataclass
class LoadFigures:
    """What one Locust run measured."""

    messages: int
    desk_calls: int
    failures: int
    exceptions: int
    per_second: float
    p50: Optional[float]
    p95: Optional[float]
    p99: Optional[float]
    top_failures: List[str] = field(default_factory=list)


def load_figures(run: LocustRun, duration: float) -> LoadFigures:
    stats = [r for r in read_csv(run.csv("stats")) if r.get("Name") != "Aggregated"]
    rate = message_rate(read_csv(run.csv("stats_history")), duration)
    messages = [r for r in stats if is_message(r)]
    percentiles = overall_percentiles(stats)
    failures = read_csv(run.csv("failures"))
    exceptions = read_csv(run.csv("exceptions"))
    top = sorted(failures, key=lambda r: -int(r.get("Occurrences") or 0))[:5]
    return LoadFigures(
        messages=int(sum(number(r["Request Count"]) or 0 for r in messages)),
        desk_calls=int(sum(number(r["Request Count"]) or 0 for r in stats
                           if r.get("Name", "").startswith("desk: "))),
        failures=int(sum(number(r["Failure Count"]) or 0 for r in stats)),
        exceptions=int(sum(int(r.get("Count") or 0) for r in exceptions)),
        per_second=rate if rate is not None else sum(number(r["Requests/s"]) or 0.0
                                                     for r in messages),
        p50=percentiles[0.5], p95=percentiles[0.95], p99=percentiles[0.99],
        top_failures=[f"{r.get('Occurrences')}x {r.get('Name')}: {r.get('Error', '')[:160]}"
                      for r in top],
    )


# --- memory ---------------------------------------------------------------------------


def _children() -> Dict[int, List[int]]:
    tree: Dict[int, List[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ")".
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree[ppid].append(int(entry.name))
    return tree


def _descendants(pid: int, tree: Mapping[int, List[int]]) -> List[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, ()))
    return found


def service_pids(stack: Any) -> Dict[str, int]:
    """The replicas' and the action server's processes under scripts/prod.sh."""
    tree = _children()
    ports = {str(stack.ports["rasa_1"]): "rasa-1", str(stack.ports["rasa_2"]): "rasa-2"}
    found: Dict[str, int] = {}
    for pid in _descendants(stack.process.pid, tree):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "walletbot.server" not in argv or "run" not in argv:
            continue
        if "actions" in argv:
            found["actions"] = pid
        elif "--port" in argv and argv.index("--port") + 1 < len(argv):
            name = ports.get(argv[argv.index("--port") + 1])
            if name:
                found[name] = pid
    return found


def rss_mb(pid: int, tree: Mapping[int, List[int]]) -> float:
    """VmRSS of ``pid`` and its descendants, in MB."""
    total_kb = 0
    for p in _descendants(pid, tree):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


class MemorySampler:
    """Samples the services' resident memory every ``interval`` seconds, in a thread."""

    def __init__(self, pids: Mapping[str, int], interval: float = MEMORY_INTERVAL) -> None:
        self.pids = dict(pids)
        self.interval = interval
        self.samples: List[Tuple[float, Dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = 0.0

    def _run(self) -> None:
        while True:
            tree = _children()
            self.samples.append((time.time() - self.started,
                                 {name: rss_mb(pid, tree) for name, pid in self.pids.items()}))
            if self._stop.wait(self.interval):
                return

    def start(self) -> "MemorySampler":
        self.started = time.time()
        self._thread.start()
        return self

    def stop(self) -> List[Tuple[float, Dict[str, float]]]:
        self._stop.set()
        self._thread.join()
        return self.samples


class Profiler:
    """py-spy on the replicas, once in the first and once in the last p99 window.

    Records only the thread holding the interpreter lock (``--gil``): one event
    loop per replica, so what holds it is what a waiting request waits for.
    """

    def __init__(self, pids: Mapping[str, int], out: Path, *, seconds: float,
                 starts: Mapping[str, float], rate: int = 50) -> None:
        self.pids = {name: pid for name, pid in pids.items() if name.startswith("rasa")}
        self.out, self.seconds, self.starts, self.rate = out, seconds, dict(starts), rate
        self.files: Dict[str, Dict[str, Path]] = defaultdict(dict)  # phase -> replica -> file
        self.errors: List[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.time()
        for phase, at in sorted(self.starts.items(), key=lambda item: item[1]):
            if self._stop.wait(max(0.0, at - (time.time() - started))):
                return
            spies = {}
            for name, pid in self.pids.items():
                path = self.out / f"profile_{phase}_{name}.txt"
                spies[name] = (path, subprocess.Popen(
                    [str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--pid", str(pid),
                     "--format", "raw", "--output", str(path), "--duration",
                     str(int(self.seconds)), "--rate", str(self.rate), "--threads",
                     "--nonblocking", "--gil"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            for name, (path, spy) in spies.items():
                _, err = spy.communicate()
                if spy.returncode == 0 and path.exists():
                    self.files[phase][name] = path
                else:
                    self.errors.append(f"{phase} {name}: {err.decode(errors='replace')[-200:]}")

    def start(self) -> "Profiler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def profile_table(files: Mapping[str, Mapping[str, Path]]) -> List[str]:
    """Share of each part of a turn in the replicas' busy samples, per phase, side by side."""
    from pyspy_profile import part_of, read_collapsed  # bench/, on sys.path above

    phases = sorted(files)
    shares: Dict[str, Dict[str, float]] = {}
    totals: Dict[str, int] = {}
    for phase in phases:
        parts: Dict[str, int] = defaultdict(int)
        for path in files[phase].values():
            for frames, count in read_collapsed(path):
                parts[part_of(frames)] += count
        totals[phase] = sum(parts.values())
        shares[phase] = {name: count / (totals[phase] or 1) for name, count in parts.items()}
    names = sorted({n for s in shares.values() for n in s},
                   key=lambda n: -max(s.get(n, 0.0) for s in shares.values()))
    lines = ["| part of the turn (both replicas, `--gil`) | "
             + " | ".join(f"{p} ({totals[p]} samples)" for p in phases) + " |",
             "|---|" + "---|" * len(phases)]
    lines += [f"| {n} | " + " | ".join(f"{shares[p].get(n, 0.0):.1%}" for p in phases) + " |"
              for n in names]
    return lines


def p99_by_name(history: Sequence[Mapping[str, str]], window: float) -> List[str]:
    """p99 (ms) of each WeChat request name in the first and the last ``window`` seconds."""
    span = history_span(history)
    if span is None:
        return []
    start, end = span
    window = min(window, (end - start) / 2)
    names = sorted({r["Name"] for r in history if is_message(r)})
    lines = [f"| request | p99 first {window:.0f} s | p99 last {window:.0f} s | last / first |",
             "|---|---|---|---|"]
    for name in names:
        rows = [r for r in history if r.get("Name") == name]
        first = window_quantile(rows, start, start + window)
        last = window_quantile(rows, end - window, end)
        ratio = f"{last / first:.2f}" if first and last is not None else "n/a"
        lines.append(f"| {name} | {ms(first)} | {ms(last)} | {ratio} |")
    return lines


def memory_growth(samples: Sequence[Tuple[float, Mapping[str, float]]],
                  warmup: float) -> Dict[str, Tuple[float, float, float]]:
    """Per process: ``(MB after warm-up, MB at the end, growth in %)``.

    After warm-up is the first sample at or after ``warmup`` seconds; the end
    is the last sample. Processes without a sample after warm-up are left out.
    """
    after = [(t, values) for t, values in samples if t >= warmup]
    if not after:
        return {}
    first, last = after[0][1], after[-1][1]
    return {name: (first[name], last[name], (last[name] - first[name]) / first[name] * 100)
            for name in first if name in last and first[name] > 0}


def write_memory_csv(path: Path, samples: Sequence[Tuple[float, Mapping[str, float]]]) -> None:
    names = sorted({name for _, values in samples for name in values})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seconds", *[f"{n} MB" for n in names]])
        for t, values in samples:
            writer.writerow([f"{t:.0f}", *[f"{values.get(n, 0):.1f}" for n in names]])


# --- conversations in PostgreSQL ------------------------------------------------------


@dataclass
class ConversationReport:
    """What the check of one conversation found."""

    problems: List[str] = field(default_factory=list)
    handoffs: int = 0
    pruned: bool = False


def _metadata(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return event.get("data", {}).get("metadata") or {}


def _msg_id(event: Mapping[str, Any]) -> Optional[str]:
    wechat = _metadata(event).get("wechat") or {}
    return None if wechat.get("msg_id") is None else str(wechat["msg_id"])


def describe(event: Optional[Mapping[str, Any]]) -> str:
    """An event in a few words, for a problem report: its type, agent, action or text."""
    if event is None:
        return "none"
    data = event.get("data") or {}
    words = [event["type_name"]]
    if _metadata(event).get("agent"):
        words.append(f"agent {_metadata(event)['agent']}")
    if data.get("name"):
        words.append(str(data["name"]))
    if data.get("text"):
        words.append(repr(str(data["text"])[:16]))
    return " ".join(words)


def check_conversation(events: Sequence[Mapping[str, Any]], sent: Sequence[str], *,
                       max_events: int = 0) -> ConversationReport:
    """Whether one stored conversation is complete and in order.

    Args:
        events: Its rows of the tracker store's ``events`` table, ordered by
            ``id``: ``{"id", "type_name", "timestamp", "data"}`` (``data`` parsed).
        sent: The WeChat MsgIds the load generator sent to it, in order.
        max_events: The tracker store's TRACKER_MAX_EVENTS (0: no bound). A
            conversation with at least half as many events stored may have
            been pruned: then its stored messages must be the newest sent.
    """
    report = ConversationReport()
    problems = report.problems
    last_id, last_time, last_event = None, None, None
    paused = False
    waiting_user: Optional[Any] = None  # a user message still without the bot's reply
    handoff: Optional[Dict[str, Any]] = None
    handoffs: List[Dict[str, Any]] = []
    for event in events:
        kind, event_id, stamp = event["type_name"], event["id"], float(event["timestamp"])
        if last_id is not None and event_id <= last_id:
            problems.append(f"event {event_id} stored after event {last_id}")
        if last_time is not None and stamp < last_time:
            problems.append(f"event {event_id} ({describe(event)}) is {last_time - stamp:.3f} s "
                            f"older than event {last_id} ({describe(last_event)}) before it")
        last_id, last_time, last_event = event_id, stamp, event
        text = event.get("data", {}).get("text") or ""
        if kind == "user":
            if waiting_user is not None:
                problems.append(f"user message {waiting_user} has no bot reply")
            waiting_user = None if paused else event_id
            if handoff is not None and handoff["asked"] and not paused:
                handoff["answered_by"] = event_id
        elif kind == "bot":
            waiting_user = None
            if paused and handoff is not None and _metadata(event).get("agent"):
                handoff["agent"] += 0 if JOIN_MARK in text else 1
            elif handoff is not None and handoff["resumed"]:
                if not handoff["asked"]:
                    handoff["asked"] = CSAT_PROMPT in text
                    if not handoff["asked"]:
                        problems.append(f"handoff at event {handoff['at']}: the bot's first "
                                        f"message after it is not the score question")
                        handoff["asked"] = True  # reported once
                elif handoff.get("answered_by") and CSAT_THANKS in text:
                    handoff["thanked"] = True
        elif kind == "pause":
            paused = True
            handoff = {"at": event_id, "agent": 0, "resumed": False, "asked": False,
                       "thanked": False}
            handoffs.append(handoff)
        elif kind == "resume":
            paused = False
            if handoff is not None:
                handoff["resumed"] = True
    if waiting_user is not None:
        problems.append(f"user message {waiting_user} has no bot reply")
    for h in handoffs:
        if h["agent"] < 1:
            problems.append(f"handoff at event {h['at']}: no agent reply")
        if not h["resumed"]:
            problems.append(f"handoff at event {h['at']}: never resolved")
        elif not h["asked"]:
            problems.append(f"handoff at event {h['at']}: no score question")
        elif not h["thanked"]:
            problems.append(f"handoff at event {h['at']}: the score was not answered")
    report.handoffs = len(handoffs)

    stored = [_msg_id(e) for e in events if e["type_name"] == "user"]
    if None in stored:
        problems.append("a user message without its WeChat MsgId")
    sent = [str(s) for s in sent]
    if stored != sent:
        may_be_pruned = bool(max_events) and len(events) >= max_events / 2
        if may_be_pruned and stored and stored == sent[-len(stored):]:
            report.pruned = True
        else:
            missing = [s for s in sent if s not in set(stored)]
            extra = [s for s in stored if s not in set(sent)]
            problems.append(f"stored messages differ from those sent: {len(stored)} stored, "
                            f"{len(sent)} sent, {len(missing)} missing, {len(extra)} unknown"
                            + ("" if missing or extra else ", out of order"))
    return report


def read_sent(path: Path) -> Dict[str, List[str]]:
    """OpenID -> MsgIds sent, in order, from the locustfile's log."""
    sent: Dict[str, List[str]] = defaultdict(list)
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                sent[record["openid"]].append(str(record["msg_id"]))
    return sent


def load_conversations(tracker_url: str, openids: Iterable[str]) -> Dict[str, List[Dict[str, Any]]]:
    """The stored events of the conversations ``wechat:<openid>``, ordered by id."""
    import sqlalchemy as sa

    senders = [f"wechat:{o}" for o in openids]
    engine = sa.create_engine(tracker_url)
    conversations: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT id, sender_id, type_name, timestamp, data FROM events "
                        "WHERE sender_id IN :senders ORDER BY sender_id, id")
                .bindparams(sa.bindparam("senders", expanding=True)),
                {"senders": senders})
            for row in rows:
                conversations[row.sender_id.split(":", 1)[1]].append({
                    "id": row.id, "type_name": row.type_name, "timestamp": row.timestamp,
                    "data": json.loads(row.data) if row.data else {}})
    finally:
        engine.dispose()
    return conversations


@dataclass
class StoreCheck:
    conversations: int
    handoffs: int
    pruned: int
    problems: Dict[str, List[str]]


def check_store(tracker_url: str, sent: Mapping[str, List[str]], max_events: int,
                dump: Optional[Path] = None) -> StoreCheck:
    """Checks every conversation of ``sent``; ``dump``: where the events of faulty ones go."""
    stored = load_conversations(tracker_url, sent)
    problems: Dict[str, List[str]] = {}
    handoffs = pruned = 0
    for openid, ids in sent.items():
        report = check_conversation(stored.get(openid, []), ids, max_events=max_events)
        handoffs += report.handoffs
        pruned += report.pruned
        if report.problems:
            problems[openid] = report.problems
    if dump is not None and problems:
        faulty = {openid: {"problems": problems[openid], "events": stored.get(openid, [])}
                  for openid in list(problems)[:DUMPED_CONVERSATIONS]}
        dump.write_text(json.dumps(faulty, ensure_ascii=False, indent=1), encoding="utf-8")
    return StoreCheck(len(sent), handoffs, pruned, problems)


def max_tracker_events(stack: Any) -> int:
    from walletbot.settings import read_env_file

    value = stack.env.get("TRACKER_MAX_EVENTS") or read_env_file(PROD_ENV).get("TRACKER_MAX_EVENTS")
    return int(value or 0)


# --- criteria and the summary ---------------------------------------------------------


@dataclass
class Criterion:
    name: str
    passed: bool
    detail: str


def p99_windows(history: Sequence[Mapping[str, str]],
                window: float) -> Tuple[Optional[float], Optional[float], float]:
    """p99 (ms) of the first and of the last ``window`` seconds (at most half the run each)."""
    span = history_span(history)
    if span is None:
        return None, None, 0.0
    start, end = span
    window = min(window, (end - start) / 2)
    return (window_quantile(history, start, start + window),
            window_quantile(history, end - window, end), window)


def soak_criteria(figures: LoadFigures, fallbacks: int, first_p99: Optional[float],
                  last_p99: Optional[float], growth: Mapping[str, Tuple[float, float, float]],
                  store: StoreCheck) -> List[Criterion]:
    errors = figures.failures + figures.exceptions + fallbacks
    ratio = (last_p99 / first_p99) if first_p99 and last_p99 is not None else None
    worst = max(growth.items(), key=lambda item: item[1][2]) if growth else None
    return [
        Criterion("0 errors", errors == 0,
                  f"{figures.failures} failed requests, {figures.exceptions} exceptions, "
                  f"{fallbacks} customer-service fallbacks"),
        Criterion(f"memory growth <= {MAX_MEMORY_GROWTH:.0f} % after warm-up",
                  bool(growth) and all(g <= MAX_MEMORY_GROWTH for _, _, g in growth.values()),
                  f"worst {worst[0]} {worst[1][2]:+.1f} %" if worst else "no sample after warm-up"),
        Criterion(f"p99 last window within {MAX_P99_RATIO - 1:.0%} of the first",
                  ratio is not None and ratio <= MAX_P99_RATIO,
                  f"ratio {ratio:.2f}" if ratio is not None else "no p99"),
        Criterion("every conversation complete and in order in PostgreSQL",
                  store.conversations > 0 and not store.problems,
                  f"{store.conversations} conversations, {store.handoffs} handoffs, "
                  f"{store.pruned} pruned by TRACKER_MAX_EVENTS, {len(store.problems)} with problems"),
    ]


def ms(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def steps_table(steps: Sequence[Tuple[int, LoadFigures]]) -> List[str]:
    lines = ["## Maximum (stepped ramp, users as fast as the bot answers)", "",
             "| users | msg/s | p50 ms | p95 ms | p99 ms | failures | counts |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {n} | {f.per_second:.1f} | {ms(f.p50)} | {ms(f.p95)} | {ms(f.p99)} | "
              f"{f.failures + f.exceptions} | {'yes' if passes_max(f) else 'no'} |" for n, f in steps]
    return lines + [""]


def render_summary(*, users: int, user_rate: float, duration: float, max_rate: Optional[float],
                   figures: LoadFigures, first_p99: Optional[float], last_p99: Optional[float],
                   window: float, growth: Mapping[str, Tuple[float, float, float]],
                   warmup: float, store: StoreCheck, criteria: Sequence[Criterion],
                   steps: Sequence[Tuple[int, LoadFigures]] = (), out: Optional[Path] = None,
                   by_name: Sequence[str] = (), profile: Sequence[str] = ()) -> str:
    lines: List[str] = steps_table(steps) if steps else []
    target = (f"{SOAK_SHARE:.0%} of {max_rate:.1f} msg/s = {SOAK_SHARE * max_rate:.1f} msg/s"
              if max_rate else "none (users given)")
    rate = f"{user_rate:g} msg/s each" if user_rate else "as fast as the bot answers"
    ratio = f"{last_p99 / first_p99:.2f}" if first_p99 and last_p99 is not None else "n/a"
    lines += [
        "## Soak", "",
        f"{users} WeChat users ({rate}) and 1 desk agent for {duration:.0f} s; target: {target}.", "",
        "| requests (WeChat) | desk calls | failures | msg/s | p50 ms | p95 ms | p99 ms | "
        f"p99 first {window:.0f} s | p99 last {window:.0f} s | last / first |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {figures.messages} | {figures.desk_calls} | {figures.failures + figures.exceptions} | "
        f"{figures.per_second:.1f} | {ms(figures.p50)} | {ms(figures.p95)} | {ms(figures.p99)} | "
        f"{ms(first_p99)} | {ms(last_p99)} | {ratio} |", "",
        f"| process | MB after warm-up ({warmup:.0f} s) | MB at the end | growth |",
        "|---|---|---|---|",
    ]
    lines += [f"| {name} | {a:.0f} | {b:.0f} | {g:+.1f} % |" for name, (a, b, g) in sorted(growth.items())]
    lines += ["", "| criterion | result | detail |", "|---|---|---|"]
    lines += [f"| {c.name} | {'PASS' if c.passed else 'FAIL'} | {c.detail} |" for c in criteria]
    if by_name:
        lines += ["", *by_name]
    if profile:
        lines += ["", *profile]
    if figures.top_failures:
        lines += ["", "Most frequent failures:", *[f"- {f}" for f in figures.top_failures]]
    if store.problems:
        lines += ["", "Conversation problems (first 5):"]
        lines += [f"- {openid}: {'; '.join(p[:3])}" for openid, p in list(store.problems.items())[:5]]
    if out is not None:
        lines += ["", f"Reports: {out}"]
    return "\n".join(lines) + "\n"


# --- the runs -------------------------------------------------------------------------


def users_for(max_rate: float, user_rate: float) -> int:
    """Users that, at ``user_rate`` messages a second each, send 70 % of ``max_rate``."""
    return max(1, math.ceil(SOAK_SHARE * max_rate / user_rate))


def passes_max(figures: LoadFigures) -> bool:
    return (figures.failures + figures.exceptions == 0 and figures.p99 is not None
            and figures.p99 <= FIND_MAX_P99_MS)


@dataclass
class Session:
    """The running stack and what every Locust run of it shares."""

    stack: Any
    api: FakeWeChatApi
    locust: Path
    out: Path
    faq: List[Dict[str, str]]
    markers: List[str]

    def run(self, name: str, prefix: str, users: int, user_rate: float,
            duration: float) -> LocustRun:
        bind_openids(self.stack, prefix, users)
        run = LocustRun(self.out, name)
        sent_log = self.out / f"{name}_sent.jsonl"
        sent_log.unlink(missing_ok=True)  # the locustfile appends; an --out used before
        scenario = write_scenario(self.out / f"{name}_scenario.json", self.stack, self.api,
                                  prefix=prefix, openids=users, user_rate=user_rate,
                                  sent_log=sent_log, faq=self.faq,
                                  markers=self.markers)
        run_locust(self.locust, run, host=self.stack.nginx, scenario=scenario, users=users,
                   duration=duration)
        return run


def find_max(session: Session, steps: Sequence[int],
             step_duration: float) -> Tuple[Optional[float], List[Tuple[int, LoadFigures]]]:
    results: List[Tuple[int, LoadFigures]] = []
    for users in steps:
        figures = load_figures(session.run(f"max{users}", f"o_soak_m{users}_", users, 0.0,
                                           step_duration), step_duration)
        results.append((users, figures))
        print(f"soak: {users} users: {figures.per_second:.1f} msg/s, p99 {ms(figures.p99)} ms, "
              f"{figures.failures + figures.exceptions} failures", file=sys.stderr, flush=True)
        if not passes_max(figures):
            break  # more users only queue longer
    passing = [f.per_second for _, f in results if passes_max(f)]
    return (max(passing) if passing else None), results


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load = parser.add_mutually_exclusive_group(required=True)
    load.add_argument("--find-max", action="store_true",
                      help="measure the maximum first (stepped ramp), then soak at 70 %%")
    load.add_argument("--max-rate", type=float, help="a maximum measured before (msg/s)")
    load.add_argument("--users", type=int, help="this many WeChat users")
    parser.add_argument("--user-rate", type=float, default=0.2,
                        help="messages a second per user (0: as fast as the bot answers)")
    parser.add_argument("--duration", type=float, default=1200.0, help="soak seconds")
    parser.add_argument("--warmup", type=float, default=120.0,
                        help="seconds before the memory baseline")
    parser.add_argument("--window", type=float, default=300.0,
                        help="seconds of the first and last p99 windows (at most half the run)")
    parser.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                        help="py-spy both replicas this long in the first and the last window")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for the stack's env file, e.g. TRACKER_TURN_WINDOW=50 "
                             "(repeatable)")
    parser.add_argument("--steps", default="10,25,50,75", help="--find-max: users per step")
    parser.add_argument("--step-duration", type=float, default=60.0, help="--find-max: seconds")
    parser.add_argument("--out", type=Path, help="report folder (default bench/.soak/<time>)")
    args = parser.parse_args(argv)
    for item in args.set:
        key, sep, _ = item.partition("=")
        if not sep or not key.isidentifier():
            parser.error(f"--set takes KEY=VALUE, not {item!r}")
    if (args.find_max or args.max_rate) and args.user_rate <= 0:
        parser.error("--find-max and --max-rate need --user-rate > 0 to aim at 70 %")
    return args


@dataclass
class SoakResult:
    """Everything the soak's summary and verdicts come from."""

    users: int
    figures: LoadFigures
    first_p99: Optional[float]
    last_p99: Optional[float]
    window: float
    growth: Dict[str, Tuple[float, float, float]]
    store: StoreCheck
    fallbacks: int
    by_name: List[str] = field(default_factory=list)
    profile: List[str] = field(default_factory=list)


def soak(session: Session, args: argparse.Namespace, users: int) -> SoakResult:
    """The soak run itself, its memory samples and the check of its conversations."""
    pids = service_pids(session.stack)
    sampler = MemorySampler(pids).start()
    profiler = None
    if args.profile > 0:
        window = min(args.window, args.duration / 2)
        # Inside each window, clear of the ramp and of the end's stragglers.
        lead = max(0.0, min(RAMP_SECONDS + 20.0, window - args.profile))
        profiler = Profiler(pids, session.out, seconds=args.profile,
                            starts={"first": lead,
                                    "last": args.duration - window + lead}).start()
    try:
        run = session.run("soak", SOAK_PREFIX, users, args.user_rate, args.duration)
    finally:
        samples = sampler.stop()
        if profiler is not None:
            profiler.stop()
    write_memory_csv(session.out / "memory.csv", samples)
    history = read_csv(run.csv("stats_history"))
    first_p99, last_p99, window = p99_windows(history, args.window)
    # The soak's own conversations: a find-max step past the maximum may rightly have failed.
    store = check_store(session.stack.env["TRACKER_DB_URL"],
                        read_sent(session.out / "soak_sent.jsonl"),
                        max_tracker_events(session.stack),
                        dump=session.out / "conversation_problems.json")
    profile: List[str] = []
    if profiler is not None:
        profile = profile_table(profiler.files) if profiler.files else []
        profile += [f"py-spy failed: {e}" for e in profiler.errors]
    return SoakResult(users, load_figures(run, args.duration), first_p99, last_p99, window,
                      memory_growth(samples, args.warmup), store,
                      sum(len(t) for t in session.api.fallbacks([SOAK_PREFIX]).values()),
                      by_name=p99_by_name(history, args.window), profile=profile)


def no_maximum(out: Path, steps: Sequence[Tuple[int, LoadFigures]]) -> int:
    table = "\n".join(steps_table(steps)) + f"\nReports: {out}\n"
    (out / "summary.md").write_text(table, encoding="utf-8")
    print(table + "\nNo step passed (0 failures, p99 <= 1 s): no maximum, no soak.")
    return 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    out = (args.out or DEFAULT_OUT / datetime.now().strftime("%Y%m%d-%H%M%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    locust = ensure_locust_venv()
    faq, markers = faq_cases(), failure_markers()
    api = FakeWeChatApi()
    stack = None
    try:
        stack = start_soak_stack(api.url, dict(item.split("=", 1) for item in args.set))
        session = Session(stack, api, locust, out, faq, markers)
        bind_openids(stack, "o_soak_check", 1)
        sanity_pass(stack, faq, markers, "o_soak_check0")
        max_rate, steps = args.max_rate, []
        if args.find_max:
            max_rate, steps = find_max(session, [int(s) for s in args.steps.split(",")],
                                       args.step_duration)
            if max_rate is None:
                return no_maximum(out, steps)
        users = args.users or users_for(max_rate, args.user_rate)
        print(f"soak: {users} users for {args.duration:.0f} s", file=sys.stderr, flush=True)
        result = soak(session, args, users)
    finally:
        if stack is not None:
            stack.stop()
            shutil.rmtree(stack.folder, ignore_errors=True)
        api.stop()
    criteria = soak_criteria(result.figures, result.fallbacks, result.first_p99,
                             result.last_p99, result.growth, result.store)
    summary = render_summary(users=users, user_rate=args.user_rate, duration=args.duration,
                             max_rate=max_rate, figures=result.figures,
                             first_p99=result.first_p99, last_p99=result.last_p99,
                             window=result.window, growth=result.growth, warmup=args.warmup,
                             store=result.store, criteria=criteria, steps=steps, out=out,
                             by_name=result.by_name, profile=result.profile)
    (out / "summary.md").write_text(summary, encoding="utf-8")
    print(summary)
    return 0 if all(c.passed for c in criteria) else 1


if __name__ == "__main__":
    sys.exit(main())
