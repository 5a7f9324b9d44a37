"""Where a turn's time goes: py-spy samples of the bot's Rasa server and action server under load.

Starts the action server and the bot's Rasa server as bench/latency.py does
(SQL tracker store and wallet DB on SQLite, rate limit off), puts ``--users``
concurrent REST users on it for ``--duration`` seconds (FAQ and lookup
alternating, a new conversation every ``--session-turns`` turns) and records
both processes with py-spy (all threads, idle samples excluded). Then prints,
per process, the share of the busy samples spent under each part of a turn
(inclusive) and the top functions by own time.

    . scripts/env.sh && .venv/bin/python bench/pyspy_profile.py [--users 10] [--duration 30]
        [--out bench/.profile] [--endpoints endpoints.yml]

py-spy needs ptrace rights (root, or kernel.yama.ptrace_scope=0). The raw
collapsed stacks stay in --out (flamegraph-ready: ``flamegraph.pl`` or
speedscope read them).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import (  # noqa: E402  (bench/ is not a package)
    BIN, BOT_MODEL, FAQ_MESSAGE, LOOKUP_MESSAGE, SERVER, Server, bind_bench_users, run_load)

# Parts of a turn, matched against the frames of a stack (first match wins,
# checked from the innermost frame outwards: the most specific part).
PARTS: List[Tuple[str, Tuple[str, ...]]] = [
    ("NLU (parse_message)", ("parse_message (rasa/core/processor.py",)),
    ("tracker read (get_tracker / retrieve)", ("_retrieve_now", "retrieve (rasa/core/tracker_store",
                                               "fetch_tracker_with_initial_session")),
    ("tracker write (save)", ("_save_now", "save_tracker (rasa/core/processor.py")),
    ("policies (predict_next_action)", ("_predict_next_with_tracker", "predict_next_with_tracker")),
    ("action calls (RemoteAction.run)", ("run (rasa/core/actions/action.py",)),
    ("channel + turn pipeline (walletbot)", ("walletbot/turns/", "walletbot/channels/")),
    ("lock store", ("lock_store.py",)),
    ("HTTP server (sanic)", ("sanic/",)),
    ("garbage collection", ("<gc>", "gc_collect")),
]


# Leaf frames where a thread waits (py-spy's idle detection misses them with
# --nonblocking): the event loop in select, a pool thread waiting for work.
IDLE_LEAVES = ("_worker (concurrent/futures/thread.py:81)", "serve (sanic/server/runners.py:155)",
               "run_forever", "select (selectors.py", "wait (threading.py")


def part_of(stack: List[str]) -> str:
    for frame in reversed(stack):
        for name, needles in PARTS:
            if any(needle in frame for needle in needles):
                return name
    return "other"


def read_collapsed(path: Path) -> List[Tuple[List[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit() and not frames.split(";")[-1].startswith(IDLE_LEAVES):
            stacks.append((frames.split(";"), int(count)))
    return stacks


def summarise(path: Path, top: int = 25) -> str:
    stacks = read_collapsed(path)
    total = sum(count for _, count in stacks) or 1
    parts: Dict[str, int] = collections.Counter()
    own: Dict[str, int] = collections.Counter()
    for frames, count in stacks:
        parts[part_of(frames)] += count
        own[frames[-1]] += count
    lines = [f"{path.name}: {total} busy samples", "", "| part of the turn | share |", "|---|---|"]
    lines += [f"| {name} | {count / total:.1%} |" for name, count in
              sorted(parts.items(), key=lambda item: -item[1])]
    lines += ["", "| own time | share |", "|---|---|"]
    lines += [f"| `{frame[:110]}` | {count / total:.1%} |" for frame, count in own.most_common(top)]
    return "\n".join(lines)


def record(pid: int, out: Path, duration: float, rate: int, gil: bool) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "py-spy"), "record", "--pid", str(pid), "--format", "raw",
                             "--output", str(out), "--duration", str(int(duration)),
                             "--rate", str(rate), "--threads", "--nonblocking",
                             *(["--gil"] if gil else [])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--session-turns", type=int, default=20)
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--endpoints", default="endpoints.yml")
    parser.add_argument("--gil", action="store_true",
                        help="only samples of the thread holding the GIL: where the Python CPU "
                             "goes (without it, threads waiting in C, e.g. in SQLite, count too)")
    parser.add_argument("--out", type=Path, default=Path("bench/.profile"))
    args = parser.parse_args(argv)
    if not (BIN / "py-spy").exists():
        raise SystemExit("py-spy is missing: make install (requirements.txt pins it)")

    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="walletbot-profile-"))
    env = dict(os.environ, RATE_LIMIT_PER_MINUTE="0", WECHAT_AES_KEY="")
    env.pop("REDIS_URL", None)
    wallet_url = f"sqlite:///{work / 'wallet.db'}"
    env.update(ACTION_ENDPOINT_URL="http://127.0.0.1:16255/webhook",
               TRACKER_DB_URL=f"sqlite:///{work / 'tracker.db'}", WALLET_DB_URL=wallet_url)
    servers: List[Server] = []
    try:
        bind_bench_users(wallet_url, [args.users], [("rest", "profile-{n}-")], args.session_turns)
        actions = Server("action server", [*SERVER, "run", "actions", "--actions", "actions",
                                           "--port", "16255"],
                         env, "http://127.0.0.1:16255/health", work / "actions.log")
        servers.append(actions)
        bot = Server("bot rasa", [*SERVER, "run", "--model", str(BOT_MODEL), "--port", "16215",
                                  "--interface", "127.0.0.1", "--endpoints", args.endpoints,
                                  "--credentials", "credentials.yml"],
                     env, "http://127.0.0.1:16215/", work / "bot.log")
        servers.append(bot)
        # Warm-up outside the recording: first turns load lazily built parts.
        asyncio.run(run_load("rest", "http://127.0.0.1:16215", args.users, 5,
                             [FAQ_MESSAGE, LOOKUP_MESSAGE], f"profile-{args.users}-",
                             args.session_turns))
        files = {"rasa": args.out / "rasa.txt", "actions": args.out / "actions.txt"}
        spies = [record(bot.process.pid, files["rasa"], args.duration, args.rate, args.gil),
                 record(actions.process.pid, files["actions"], args.duration, args.rate, args.gil)]
        figures = asyncio.run(run_load("rest", "http://127.0.0.1:16215", args.users,
                                       args.duration, [FAQ_MESSAGE, LOOKUP_MESSAGE],
                                       f"profile-{args.users}-", args.session_turns))
        for spy in spies:
            _, err = spy.communicate(timeout=60)
            if spy.returncode:
                raise SystemExit(f"py-spy failed: {err.decode()[-500:]}")
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.users} users, {args.duration:.0f} s, {figures['per_second']:.1f} msg/s, "
          f"p50 {figures['p50']:.0f} ms, p99 {figures['p99']:.0f} ms, "
          f"{figures['messages']} messages\n")
    for path in files.values():
        print(summarise(path))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
