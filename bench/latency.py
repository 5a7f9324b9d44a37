"""Latency, throughput and cost of the bot, side by side with a bare Rasa server.

Starts, in one run:
  * a bare Rasa server on a minimal model (bench/minimal: 2 intents, no actions,
    in-memory tracker store) - the baseline;
  * the bot as `make run` starts it (action server + Rasa, SQL tracker store
    and wallet DB on SQLite, every channel), with the rate limit off.
Then N concurrent simulated users (each its own sender) talk for a fixed time
to: the bare server's REST channel, the bot's REST channel, the bot's WeChat
webhook (signed plaintext XML). Bot users alternate an FAQ question and a
transaction lookup (action server + wallet DB in the loop).

    . scripts/env.sh && .venv/bin/python bench/latency.py [--duration 20] [--users 1,10,50]
        [--workers 2]

--workers N adds a third Rasa server for the bot: N Sanic workers (SANIC_WORKERS)
on port 16025 with the production lock store (walletbot.rasa_compat.lockstore.AtomicRedisLockStore,
config/prod/endpoints.yml) on a throw-away redis-server (port 16379), sharing the
action server and the wallet DB, with its own SQLite tracker store; its REST channel
gets the same load ("bot REST xN").

--endpoints-b FILE adds a second bot server (port 16035, its own SQLite tracker store)
started with FILE instead of endpoints.yml, measured right after the first: an A/B
comparison of, e.g., a tracker store ("bot REST B").

--model-b FILE does the same with another model (and endpoints.yml, or the
--endpoints-b file): an A/B comparison of two NLU pipelines, e.g. the DIET model
that bench/nlu_quality.py trains from bench/candidates/diet_rs_ensemble.yml.

--prod adds the production profile (scripts/prod.sh, started as tests/prod starts
it, on free ports with generated secrets and the rate limit off): nginx in front of
two Rasa replicas, the action server, PostgreSQL for the tracker store and the
wallet DB, Redis for locks, WeChat de-duplication and the rate limit. It gets WeChat
load in safe mode (AES-encrypted, as production's WECHAT_AES_KEY requires) through
nginx ("prod WeChat"). REST is not measured there: production does not identify
REST senders, so lookups would take a shorter path.

Prints a Markdown table (messages/s, p50/p95/p99 in ms, errors, ratios to the
bare server) and the cost figures (model load time, resident memory).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
# The bot's servers start as every launcher starts them (version check and
# walletbot's patches of Rasa, walletbot/server.py); the bare baseline stays
# plain `rasa run`.
SERVER = [str(BIN / "python"), "-m", "walletbot.server"]
MINIMAL = ROOT / "bench" / "minimal"
BOT_MODEL = ROOT / "models" / "walletbot.tar.gz"
TOKEN = os.environ.get("WECHAT_TOKEN", "dev-wechat-token")


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"process for {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} not ready after {timeout} s")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    pids = [pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        pids += [int(p) for p in children.split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def cpu_tree(pid: int) -> Dict[int, Tuple[str, float]]:
    """CPU time (user + system, seconds) so far of a process and each of its descendants.

    Maps pid -> (what the process is, from its command line; seconds).
    """
    tick = os.sysconf("SC_CLK_TCK")
    found: Dict[int, Tuple[str, float]] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            # Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            argv = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            found[p] = (process_kind(argv), (int(fields[11]) + int(fields[12])) / tick)
        except (OSError, IndexError, ValueError):
            continue
        children = subprocess.run(["pgrep", "-P", str(p)], capture_output=True, text=True).stdout
        todo += [int(c) for c in children.split()]
    return found


def process_kind(argv: str) -> str:
    """A process of the bench's stacks, named by its part."""
    for needle, kind in (("run actions", "action server"), ("walletbot.server", "Rasa"),
                         ("postgres", "PostgreSQL"), ("redis", "Redis"), ("nginx", "nginx")):
        if needle in argv:
            return kind
    return "other"


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants so far, in seconds."""
    return sum(seconds for _, seconds in cpu_tree(pid).values())


def cpu_by_kind(before: Dict[int, Tuple[str, float]],
                after: Dict[int, Tuple[str, float]]) -> Dict[str, float]:
    """CPU seconds spent between two ``cpu_tree`` readings, by kind of process."""
    spent: Dict[str, float] = {}
    for pid, (kind, seconds) in after.items():
        spent[kind] = spent.get(kind, 0.0) + seconds - before.get(pid, (kind, 0.0))[1]
    return spent


def own_cpu_seconds() -> float:
    """This process's CPU time: the load generator's cost."""
    times = os.times()
    return times.user + times.system


class Server:
    def __init__(self, name: str, argv: List[str], env: Dict[str, str], ready_url: Optional[str],
                 log: Path) -> None:
        self.name = name
        started = time.time()
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True,
                                        stdout=open(log, "wb"), stderr=subprocess.STDOUT)
        if ready_url is None:
            time.sleep(0.5)
            if self.process.poll() is not None:
                raise SystemExit(f"{name} exited with {self.process.returncode}")
        else:
            wait_ready(ready_url, self.process)
        self.load_seconds = time.time() - started

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def train_minimal(out: Path) -> Path:
    model = out / "minimal.tar.gz"
    if not model.exists():
        subprocess.run([str(BIN / "rasa"), "train", "--config", "config.yml", "--domain",
                        "domain.yml", "--data", "data", "--out", str(out),
                        "--fixed-model-name", "minimal"],
                       cwd=MINIMAL, check=True, capture_output=True)
    return model


def start_bare(work: Path, port: int, env: Dict[str, str]) -> Server:
    """The baseline: plain `rasa run` on the minimal model, in-memory tracker store."""
    minimal = train_minimal(work)
    # Explicit --credentials/--endpoints: without them `rasa run` (cwd = the
    # repository) loads the bot's channels and its SQL tracker store (the dev
    # database var/tracker.db, whose bench conversations grew from run to run).
    return Server("bare rasa", [str(BIN / "rasa"), "run", "--model", str(minimal),
                                "--port", str(port), "--interface", "127.0.0.1",
                                "--credentials", str(MINIMAL / "credentials.yml"),
                                "--endpoints", str(MINIMAL / "endpoints.yml")],
                  env, f"http://127.0.0.1:{port}/", work / "bare.log")


@dataclass(frozen=True)
class WeChatAccount:
    """What a simulated WeChat server needs to sign (and, in safe mode, encrypt)."""

    token: str = TOKEN
    aes_key: str = ""
    app_id: str = ""

    @functools.cached_property
    def crypto(self) -> Optional[Any]:
        if not self.aes_key:
            return None
        from wechatpy.crypto import WeChatCrypto

        return WeChatCrypto(self.token, self.aes_key, self.app_id)


PLAINTEXT = WeChatAccount()


def wechat_request(base: str, openid: str, text: str, msg_id: int,
                   account: WeChatAccount = PLAINTEXT) -> tuple:
    timestamp, nonce = str(int(time.time())), f"n{msg_id}"
    signature = hashlib.sha1("".join(sorted([account.token, timestamp, nonce])).encode()).hexdigest()
    url = (f"{base}/webhooks/wechat/webhook?signature={signature}&timestamp={timestamp}"
           f"&nonce={nonce}")
    body = (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>")
    if account.crypto is not None:
        envelope = account.crypto.encrypt_message(body, nonce, timestamp)
        encrypted = re.search(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", envelope).group(1)
        msg_signature = re.search(r"<MsgSignature><!\[CDATA\[(.*?)\]\]>", envelope).group(1)
        url += f"&encrypt_type=aes&msg_signature={msg_signature}"
        body = (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>")
    return url, body.encode()


# The bot's load: an FAQ question and a lookup of 张三's overdue withdrawal (design §4).
FAQ_MESSAGE = "怎么提现"
LOOKUP_MESSAGE = "帮我查一下WD202611180002"
MAX_SESSIONS = 200  # conversations per simulated user with --session-turns


def session_sender(sender: str, turn: int, session_turns: int) -> str:
    """The sender id of ``turn``: a new conversation every ``session_turns`` turns."""
    if not session_turns:
        return sender
    return f"{sender}.{(turn // session_turns) % MAX_SESSIONS}"


async def user_loop(session: aiohttp.ClientSession, target: str, base: str, user: str,
                    messages: List[str], stop_at: float, latencies: List[float],
                    errors: List[str], ids: "itertools.count", session_turns: int = 0,
                    account: WeChatAccount = PLAINTEXT,
                    by_text: Optional[Dict[str, List[float]]] = None) -> None:
    for turn, text in enumerate(itertools.cycle(messages)):
        if time.monotonic() >= stop_at:
            return
        sender = session_sender(user, turn, session_turns)
        started = time.monotonic()
        try:
            if target == "wechat":
                url, body = wechat_request(base, sender, text, next(ids), account)
                async with session.post(url, data=body) as response:
                    payload = await response.text()
                    ok = response.status == 200 and "<xml>" in payload
            else:
                async with session.post(f"{base}/webhooks/rest/webhook",
                                        json={"sender": sender, "message": text}) as response:
                    payload = await response.json()
                    ok = response.status == 200 and bool(payload)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            ok, payload = False, type(error).__name__
        latencies.append(time.monotonic() - started)
        if by_text is not None:
            # Turn 0 is not one: the warm-up message started that conversation.
            first = bool(session_turns) and turn > 0 and turn % session_turns == 0
            key = f"{text} (a conversation's first)" if first else text
            by_text.setdefault(key, []).append(latencies[-1])
        if not ok:
            errors.append(str(payload)[:200])


async def lookup_reply(target: str, base: str, sender: str,
                       account: WeChatAccount = PLAINTEXT) -> str:
    """What the bot answers ``sender`` to the benchmark's lookup message."""
    text = LOOKUP_MESSAGE
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        if target == "wechat":
            msg_id = int(time.time() * 1000)
            url, body = wechat_request(base, sender, text, msg_id, account)
            async with session.post(url, data=body) as response:
                reply = await response.text()
            if account.crypto is not None and "<Encrypt>" in reply:
                fields = dict(re.findall(r"<(\w+)><!\[CDATA\[(.*?)\]\]></\1>", reply))
                times = dict(re.findall(r"<(TimeStamp)>(\d+)</\1>", reply))
                reply = account.crypto.decrypt_message(
                    reply, fields["MsgSignature"], times["TimeStamp"], fields["Nonce"])
            return reply
        async with session.post(f"{base}/webhooks/rest/webhook",
                                json={"sender": sender, "message": text}) as response:
            return json.dumps(await response.json(), ensure_ascii=False)


def check_lookups_run(steps: List[tuple], accounts: Dict[str, WeChatAccount],
                      user_counts: List[int], session_turns: int) -> None:
    """Every bot step's senders get the real lookup (bound, form, wallet DB), not a login hint."""
    for name, target, base, messages, prefix in steps:
        if LOOKUP_MESSAGE not in messages:
            continue
        sender = session_sender(f"{prefix.format(n=user_counts[0])}0", 0, session_turns)
        reply = asyncio.run(lookup_reply(target, base, sender, accounts.get(name, PLAINTEXT)))
        if "1000.00" not in reply:
            raise SystemExit(f"{name}: the lookup did not run the whole path: {reply[:300]}")


async def run_load(target: str, base: str, users: int, duration: float, messages: List[str],
                   sender_prefix: str, session_turns: int = 0,
                   account: WeChatAccount = PLAINTEXT) -> Dict[str, float]:
    latencies: List[float] = []
    by_text: Dict[str, List[float]] = {}
    errors: List[str] = []
    ids = itertools.count(int(time.time() * 1000))
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        # Warm-up: each sender's first turn starts its session.
        await asyncio.gather(*(
            user_loop(session, target, base, f"{sender_prefix}{i}", messages[:1],
                      time.monotonic() + 0.001, [], [], ids, session_turns, account)
            for i in range(users)))
        started = time.monotonic()
        stop_at = started + duration
        await asyncio.gather(*(
            user_loop(session, target, base, f"{sender_prefix}{i}", messages, stop_at,
                      latencies, errors, ids, session_turns, account, by_text)
            for i in range(users)))
        elapsed = time.monotonic() - started
    ordered = sorted(latencies) or [0.0]
    return {
        "messages": len(latencies), "per_second": len(latencies) / elapsed,
        "p50": percentile(ordered, 50), "p95": percentile(ordered, 95),
        "p99": percentile(ordered, 99),
        "mean": statistics.fmean(ordered) * 1000, "errors": len(errors),
        "error_sample": errors[:3],
        # Which message the tail belongs to: a lookup takes more steps than an FAQ turn.
        "by_message": {text: {"messages": len(values),
                              "p50": percentile(sorted(values), 50),
                              "p99": percentile(sorted(values), 99)}
                       for text, values in sorted(by_text.items())},
    }


def percentile(ordered: List[float], p: float) -> float:
    """The ``p``th percentile of sorted seconds, in milliseconds (nearest rank)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def bind_bench_users(wallet_url: str, user_counts: List[int], prefixes: List[tuple],
                     session_turns: int) -> None:
    """Binds every sender of the steps' users to 张三, so lookups run the whole path.

    ``prefixes``: ``(channel, sender prefix)`` pairs; with ``session_turns``
    each user's later conversations (new senders) are bound too.
    """
    from walletbot.store import bind_sender, init_db, make_engine, seed_demo

    engine = make_engine(wallet_url)
    init_db(engine)
    seed_demo(engine)  # 张三 must exist before anyone is bound to him
    with engine.begin() as conn:
        for users in user_counts:
            for channel, prefix in prefixes:
                for i in range(users):
                    user = f"{prefix.format(n=users)}{i}"
                    senders = {session_sender(user, k * session_turns, session_turns)
                               for k in range(MAX_SESSIONS)}
                    for sender in sorted(senders):
                        bind_sender(conn=conn, channel=channel, user_id="U1001", sender_id=sender)
    engine.dispose()


def start_prod(user_counts: List[int], session_turns: int) -> Any:
    """scripts/prod.sh as tests/prod starts it, rate limit off, bench users bound."""
    sys.path.insert(0, str(ROOT))
    from tests.prod.conftest import find_binaries, start_stack

    missing = [name for name, path in find_binaries().items() if path is None]
    if missing:
        raise SystemExit(f"--prod needs {', '.join(missing)} (apt-get install postgresql "
                         "redis-server nginx)")
    stack = start_stack(BOT_MODEL, {"RATE_LIMIT_PER_MINUTE": "1000000"})
    bind_bench_users(stack.env["WALLET_DB_URL"], user_counts, [("wechat", "o_prod_{n}_")],
                     session_turns)
    return stack


def plot(results: Dict[str, Dict[int, Dict[str, float]]], path: Path) -> None:
    """p50 (solid) and p99 (dashed) latency against concurrent users, one colour per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for n, (name, steps) in enumerate(results.items()):
        users = sorted(steps)
        colour = f"C{n}"
        label = name.replace(" (nginx, 2 replicas, PostgreSQL, Redis)", " (prod profile)")
        left.plot(users, [steps[u]["p50"] for u in users], "o-", color=colour, label=f"{label} p50")
        left.plot(users, [steps[u]["p99"] for u in users], "o--", color=colour, alpha=0.6)
        right.plot(users, [steps[u]["per_second"] for u in users], "o-", color=colour, label=label)
    left.set_xlabel("concurrent users")
    left.set_ylabel("latency, ms (solid p50, dashed p99)")
    right.set_xlabel("concurrent users")
    right.set_ylabel("messages per second")
    for axis in (left, right):
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    right.legend(fontsize=8)
    figure.suptitle("walletbot vs bare Rasa, same machine, same run (bench/latency.py)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per load step")
    parser.add_argument("--users", default="1,10,50", help="concurrent users per step")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--workers", type=int, default=0,
                        help="also measure the bot with this many Sanic workers and a Redis lock store")
    parser.add_argument("--session-turns", type=int, default=0,
                        help="each user starts a new conversation every N turns "
                             "(0: one conversation per user and step)")
    parser.add_argument("--tf-threads", type=int, default=0,
                        help="TF intra/inter-op threads of both Rasa servers (0: TensorFlow's default)")
    parser.add_argument("--endpoints-b", type=Path,
                        help="A/B: also measure the bot with this endpoints file (port 16035), "
                             "right after the bot with endpoints.yml")
    parser.add_argument("--model-b", type=Path,
                        help="A/B: also measure the bot with this model (port 16035)")
    parser.add_argument("--plot", type=Path,
                        help="write a latency-versus-users plot (PNG, p50 and p99 per target) here")
    parser.add_argument("--prod", action="store_true",
                        help="also measure the production profile (scripts/prod.sh) through nginx")
    parser.add_argument("--only", default="",
                        help="measure only these targets besides bare Rasa (comma-separated: "
                             "rest, wechat, workers, b, prod; default: all that are enabled)")
    args = parser.parse_args()
    user_counts = [int(u) for u in args.users.split(",")]

    work = Path(tempfile.mkdtemp(prefix="walletbot-bench-"))
    env = dict(os.environ)
    env.update(RATE_LIMIT_PER_MINUTE="0", WECHAT_AES_KEY="", REDIS_URL="")
    env.pop("REDIS_URL")
    if args.tf_threads:
        env.update(TF_INTRA_OP_PARALLELISM_THREADS=str(args.tf_threads),
                   TF_INTER_OP_PARALLELISM_THREADS=str(args.tf_threads))
    servers: List[Server] = []
    stack = None
    try:
        bare = start_bare(work, 16005, env)
        servers.append(bare)
        bot_env = dict(env)
        wallet_url = f"sqlite:///{work / 'wallet.db'}"
        bot_env.update(ACTION_ENDPOINT_URL="http://127.0.0.1:16055/webhook",
                       TRACKER_DB_URL=f"sqlite:///{work / 'tracker.db'}", WALLET_DB_URL=wallet_url)
        bind_bench_users(wallet_url, user_counts,
                         [("rest", "bench-rest-{n}-"), ("rest", "bench-restw-{n}-"),
                          ("rest", "bench-restb-{n}-"), ("wechat", "o_bench_{n}_")],
                         args.session_turns)
        actions = Server("action server", [*SERVER, "run", "actions", "--actions",
                                           "actions", "--port", "16055"],
                         bot_env, "http://127.0.0.1:16055/health", work / "actions.log")
        servers.append(actions)
        bot = Server("bot rasa", [*SERVER, "run", "--model", str(BOT_MODEL),
                                  "--port", "16015", "--interface", "127.0.0.1",
                                  "--enable-api", "--auth-token", env["RASA_AUTH_TOKEN"],
                                  "--endpoints", "endpoints.yml", "--credentials",
                                  "credentials.yml"],
                     bot_env, "http://127.0.0.1:16015/", work / "bot.log")
        servers.append(bot)
        if args.workers:
            redis_server = shutil.which("redis-server") or "/usr/sbin/redis-server"
            servers.append(Server("redis", [redis_server, "--port", "16379", "--bind", "127.0.0.1",
                                            "--dir", str(work), "--save", "", "--appendonly", "no"],
                                  env, None, work / "redis.log"))
            workers_env = dict(bot_env)
            workers_env.update(SANIC_WORKERS=str(args.workers), REDIS_HOST="127.0.0.1",
                               REDIS_PORT="16379", REDIS_DB="0", REDIS_PASSWORD="",
                               TRACKER_DB_URL=f"sqlite:///{work / 'tracker-workers.db'}")
            servers.append(Server(f"bot rasa x{args.workers}",
                                  [*SERVER, "run", "--model", str(BOT_MODEL),
                                   "--port", "16025", "--interface", "127.0.0.1",
                                   "--endpoints", "config/prod/endpoints.yml",
                                   "--credentials", "credentials.yml"],
                                  workers_env, "http://127.0.0.1:16025/", work / "bot-workers.log"))
        b_variant = args.endpoints_b or args.model_b
        if b_variant:
            b_env = dict(bot_env, TRACKER_DB_URL=f"sqlite:///{work / 'tracker-b.db'}")
            servers.append(Server("bot rasa B", [*SERVER, "run", "--model",
                                                 str(args.model_b or BOT_MODEL),
                                                 "--port", "16035", "--interface", "127.0.0.1",
                                                 "--endpoints", str(args.endpoints_b or "endpoints.yml"),
                                                 "--credentials", "credentials.yml"],
                                  b_env, "http://127.0.0.1:16035/", work / "bot-b.log"))

        bot_messages = [FAQ_MESSAGE, LOOKUP_MESSAGE]
        steps = [
            ("bare REST", "rest", "http://127.0.0.1:16005", ["hello", "bye"], "bare-{n}-"),
            ("bot REST", "rest", "http://127.0.0.1:16015", bot_messages, "bench-rest-{n}-"),
            ("bot WeChat", "wechat", "http://127.0.0.1:16015", bot_messages, "o_bench_{n}_"),
        ]
        if args.workers:
            steps.append((f"bot REST x{args.workers}", "rest", "http://127.0.0.1:16025",
                          bot_messages, "bench-restw-{n}-"))
        if b_variant:
            steps.insert(2, (f"bot REST B ({b_variant.name})", "rest", "http://127.0.0.1:16035",
                             bot_messages, "bench-restb-{n}-"))
        accounts = {}
        if args.prod:
            stack = start_prod(user_counts, args.session_turns)
            name = "prod WeChat (nginx, 2 replicas, PostgreSQL, Redis)"
            steps.append((name, "wechat", stack.nginx, bot_messages, "o_prod_{n}_"))
            accounts[name] = WeChatAccount(stack.env["WECHAT_TOKEN"], stack.env["WECHAT_AES_KEY"],
                                           stack.env["WECHAT_APP_ID"])
        if args.only:
            wanted = {part.strip() for part in args.only.split(",") if part.strip()}
            kinds = {"bare REST": "bare", "bot REST": "rest", "bot WeChat": "wechat"}
            steps = [step for step in steps if kinds.get(step[0]) == "bare"
                     or kinds.get(step[0]) in wanted
                     or ("workers" in wanted and step[0].startswith("bot REST x"))
                     or ("b" in wanted and step[0].startswith("bot REST B"))
                     or ("prod" in wanted and step[0].startswith("prod"))]
        check_lookups_run(steps, accounts, user_counts, args.session_turns)
        by_name = {server.name: server for server in servers}
        # Whose CPU a step costs: its Rasa server (all workers) and the action server.
        step_servers = {"bare REST": ([by_name["bare rasa"]], [])}
        for name, *_ in steps:
            if name.startswith("bot REST x"):
                step_servers[name] = ([by_name[f"bot rasa x{args.workers}"], by_name["redis"]],
                                      [actions])
            elif name.startswith("bot REST B"):
                step_servers[name] = ([by_name["bot rasa B"]], [actions])
            elif name.startswith("bot "):
                step_servers[name] = ([bot], [actions])
        results: Dict[str, Dict[int, Dict[str, float]]] = {}
        for users in user_counts:
            for name, target, base, messages, prefix in steps:
                rasa_side, action_side = step_servers.get(name, ([], []))
                stack_before = cpu_tree(stack.process.pid) if name.startswith("prod") else None
                before = ([cpu_seconds(x.process.pid) for x in rasa_side],
                          [cpu_seconds(x.process.pid) for x in action_side], own_cpu_seconds())
                # New senders per step: every step starts with short conversations.
                figures = asyncio.run(run_load(target, base, users, args.duration, messages,
                                               prefix.format(n=users), args.session_turns,
                                               accounts.get(name, PLAINTEXT)))
                if rasa_side and figures["messages"]:
                    per = 1000 / figures["messages"]
                    figures["cpu_rasa_ms"] = per * sum(
                        cpu_seconds(x.process.pid) - b for x, b in zip(rasa_side, before[0]))
                    figures["cpu_actions_ms"] = per * sum(
                        cpu_seconds(x.process.pid) - b for x, b in zip(action_side, before[1]))
                    figures["cpu_load_ms"] = per * (own_cpu_seconds() - before[2])
                if stack_before is not None and figures["messages"]:
                    per = 1000 / figures["messages"]
                    figures["cpu_stack_ms"] = {
                        kind: per * seconds for kind, seconds in
                        cpu_by_kind(stack_before, cpu_tree(stack.process.pid)).items()}
                    figures["cpu_load_ms"] = per * (own_cpu_seconds() - before[2])
                results.setdefault(name, {})[users] = figures
                print(f"{name:10} users={users:3} {figures['per_second']:7.1f} msg/s "
                      f"p50={figures['p50']:6.0f} p95={figures['p95']:6.0f} "
                      f"p99={figures['p99']:6.0f} ms errors={figures['errors']}",
                      file=sys.stderr, flush=True)
                for text, part in figures["by_message"].items():
                    print(f"{'':10}   {text}: {part['messages']} messages "
                          f"p50={part['p50']:6.0f} p99={part['p99']:6.0f} ms",
                          file=sys.stderr, flush=True)
        memory = {s.name: rss_mb(s.process.pid) for s in servers}
        load = {s.name: s.load_seconds for s in servers}
    finally:
        for server in servers:
            server.stop()
        if stack is not None:
            stack.stop()
            shutil.rmtree(stack.folder, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nDuration per step: {args.duration:.0f} s; bot messages alternate an FAQ and a "
          f"transaction lookup; TF threads: {args.tf_threads or 'default'}; "
          f"extra bot with Sanic workers: {args.workers or 'none'}; new conversation every "
          f"{args.session_turns or 'never'} turns.\n")
    print("| target | users | messages/s | p50 ms | p95 ms | p99 ms | errors | "
          "msg/s vs bare | p99 vs bare |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in results:
        for users, f in results[name].items():
            base = results["bare REST"][users]
            print(f"| {name} | {users} | {f['per_second']:.1f} | {f['p50']:.0f} | {f['p95']:.0f} "
                  f"| {f['p99']:.0f} | {f['errors']} | {f['per_second'] / base['per_second']:.2f} "
                  f"| {f['p99'] / max(base['p99'], 1e-9):.1f} |")
    print("\nCPU per message (user + system over the step, its one warm-up message per user included; "
          "the Rasa side includes Redis for the "
          "workers; the load generator is this process):\n")
    print("| target | users | Rasa ms | action server ms | load generator ms | total ms |")
    print("|---|---|---|---|---|---|")
    for name in results:
        for users, f in results[name].items():
            if "cpu_rasa_ms" in f:
                total = f["cpu_rasa_ms"] + f["cpu_actions_ms"] + f["cpu_load_ms"]
                print(f"| {name} | {users} | {f['cpu_rasa_ms']:.1f} | {f['cpu_actions_ms']:.1f} "
                      f"| {f['cpu_load_ms']:.1f} | {total:.1f} |")
    for name in results:
        for users, f in results[name].items():
            if "cpu_stack_ms" in f:
                parts = sorted(f["cpu_stack_ms"].items(), key=lambda kv: -kv[1])
                print(f"\n{name}, {users} users, CPU ms per message by process: "
                      + ", ".join(f"{kind} {ms:.1f}" for kind, ms in parts)
                      + f", load generator {f['cpu_load_ms']:.1f}; "
                      f"total {sum(f['cpu_stack_ms'].values()) + f['cpu_load_ms']:.1f}")
    print("\n| process | ready after (s) | resident memory (MB) |")
    print("|---|---|---|")
    for name in memory:
        print(f"| {name} | {load[name]:.1f} | {memory[name]:.0f} |")
    if args.plot:
        plot(results, args.plot)
        print(f"\nplot: {args.plot}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "memory_mb": memory,
                                         "load_seconds": load}, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
