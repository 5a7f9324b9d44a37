"""Cost of a turn against the length of the conversation, side by side with a bare Rasa server.

Starts a bare Rasa server (bench/minimal, in-memory tracker store) and the bot
as `make run` starts it (action server, Rasa with the SQL tracker store and
wallet DB on SQLite, rate limit off), then one sender per target talks for
``--turns`` turns, one message at a time, over REST. Bot messages alternate an
FAQ question and a transaction lookup (action server and wallet DB in the
loop); the sender is bound to 张三 so every lookup runs the whole path.

For every turn it records the reply's latency and the CPU time the Rasa
process (and, for the bot, the action server) spent on it, read from
/proc/<pid>/stat (10 ms ticks, so figures are means over a window of turns).

    . scripts/env.sh && .venv/bin/python bench/turn_cost.py [--turns 500]
        [--max-events 0] [--endpoints-b FILE] [--plot bench/turn_cost.png] [--json F]

--max-events sets TRACKER_MAX_EVENTS for the bot (default 0: no bound, so the
conversation's whole history stays in the session and its cost shows).
--endpoints-b FILE adds a second bot server started with FILE instead of
endpoints.yml (its own tracker database, same action server), measured the
same way: an A/B comparison of a tracker store.

Prints, per target, latency (median of the window) and Rasa CPU per turn
(mean of the window) at turns 5, 50, 200 and 500, and each as a ratio to turn 5.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import (  # noqa: E402  (bench/ is not a package)
    BOT_MODEL, FAQ_MESSAGE, LOOKUP_MESSAGE, SERVER, Server, bind_bench_users, rss_mb, start_bare)

MARKS = (5, 50, 200, 500)
# Turns on either side of a mark that make up its window.
HALF_WINDOW = 10
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def say(base: str, sender: str, text: str) -> list:
    request = urllib.request.Request(
        f"{base}/webhooks/rest/webhook", method="POST",
        data=json.dumps({"sender": sender, "message": text}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def run_conversation(base: str, sender: str, messages: Sequence[str], turns: int,
                     pids: Sequence[int]) -> Dict[str, List[float]]:
    """One sender's ``turns`` turns: latency and CPU of each process per turn (seconds)."""
    latency: List[float] = []
    cpu: List[List[float]] = [[] for _ in pids]
    for turn in range(turns):
        text = messages[turn % len(messages)]
        before = [cpu_seconds(pid) for pid in pids]
        started = time.perf_counter()
        reply = say(base, sender, text)
        latency.append(time.perf_counter() - started)
        for column, pid, was in zip(cpu, pids, before):
            column.append(cpu_seconds(pid) - was)
        if not reply:
            raise SystemExit(f"{base}: no reply to turn {turn + 1} ({text})")
        if text == LOOKUP_MESSAGE and "1000.00" not in json.dumps(reply, ensure_ascii=False):
            raise SystemExit(f"{base}: turn {turn + 1}, the lookup did not run: {reply}")
    return {"latency": latency, **{f"cpu{i}": column for i, column in enumerate(cpu)}}


def window(values: Sequence[float], mark: int) -> Sequence[float]:
    """The values of the turns around turn ``mark`` (1-based), clipped to the run."""
    low = max(0, mark - 1 - HALF_WINDOW)
    return values[low:min(len(values), mark + HALF_WINDOW)]


def summary(figures: Dict[str, List[float]], turns: int) -> Dict[int, Dict[str, float]]:
    marks = [m for m in MARKS if m <= turns]
    out: Dict[int, Dict[str, float]] = {}
    for mark in marks:
        row = {"latency_ms": statistics.median(window(figures["latency"], mark)) * 1000,
               "rasa_cpu_ms": statistics.fmean(window(figures["cpu0"], mark)) * 1000}
        if "cpu1" in figures:
            row["actions_cpu_ms"] = statistics.fmean(window(figures["cpu1"], mark)) * 1000
        out[mark] = row
    return out


def rolling_median(values: Sequence[float], width: int = 2 * HALF_WINDOW) -> List[float]:
    return [statistics.median(values[max(0, i - width + 1):i + 1]) for i in range(len(values))]


def plot(results: Dict[str, Dict[str, List[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for name, figures in results.items():
        turns = range(1, len(figures["latency"]) + 1)
        top.plot(turns, [v * 1000 for v in rolling_median(figures["latency"])], label=name)
        cpu = figures["cpu0"]
        means = [statistics.fmean(cpu[max(0, i - 2 * HALF_WINDOW + 1):i + 1]) * 1000
                 for i in range(len(cpu))]
        bottom.plot(turns, means, label=name)
    top.set_ylabel("latency, ms (rolling median of 20)")
    bottom.set_ylabel("Rasa CPU per turn, ms (rolling mean of 20)")
    bottom.set_xlabel("turn of the conversation")
    top.legend()
    top.set_ylim(bottom=0)
    bottom.set_ylim(bottom=0)
    top.set_title("Cost of a turn vs conversation length (bench/turn_cost.py)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--max-events", type=int, default=0,
                        help="TRACKER_MAX_EVENTS of the bot (0: no bound)")
    parser.add_argument("--endpoints-b", type=Path,
                        help="also measure a bot started with this endpoints file")
    parser.add_argument("--plot", type=Path, help="write the plot (PNG) here")
    parser.add_argument("--json", type=Path, help="write every turn's figures here")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="walletbot-turncost-"))
    env = dict(os.environ, RATE_LIMIT_PER_MINUTE="0", WECHAT_AES_KEY="",
               TRACKER_MAX_EVENTS=str(args.max_events))
    env.pop("REDIS_URL", None)
    servers: List[Server] = []
    results: Dict[str, Dict[str, List[float]]] = {}
    try:
        bare = start_bare(work, 16105, env)
        servers.append(bare)
        wallet_url = f"sqlite:///{work / 'wallet.db'}"
        bot_env = dict(env, ACTION_ENDPOINT_URL="http://127.0.0.1:16155/webhook",
                       TRACKER_DB_URL=f"sqlite:///{work / 'tracker.db'}", WALLET_DB_URL=wallet_url)
        bind_bench_users(wallet_url, [1], [("rest", "turncost-a-"), ("rest", "turncost-b-")], 0)
        actions = Server("action server", [*SERVER, "run", "actions", "--actions", "actions",
                                           "--port", "16155"],
                         bot_env, "http://127.0.0.1:16155/health", work / "actions.log")
        servers.append(actions)
        targets = [("bare Rasa", "http://127.0.0.1:16105", ["hello", "bye"], "bare-0",
                    [bare.process.pid])]
        variants = [("bot", "endpoints.yml", 16115, "turncost-a-0", "tracker.db")]
        if args.endpoints_b:
            variants.append((f"bot B ({args.endpoints_b.name})", str(args.endpoints_b), 16125,
                             "turncost-b-0", "tracker-b.db"))
        for name, endpoints, port, sender, db in variants:
            server = Server(name, [*SERVER, "run", "--model", str(BOT_MODEL), "--port", str(port),
                                   "--interface", "127.0.0.1", "--endpoints", endpoints,
                                   "--credentials", "credentials.yml"],
                            dict(bot_env, TRACKER_DB_URL=f"sqlite:///{work / db}"),
                            f"http://127.0.0.1:{port}/", work / f"{port}.log")
            servers.append(server)
            targets.append((name, f"http://127.0.0.1:{port}", [FAQ_MESSAGE, LOOKUP_MESSAGE],
                            sender, [server.process.pid, actions.process.pid]))
        for name, base, messages, sender, pids in targets:
            results[name] = run_conversation(base, sender, messages, args.turns, pids)
            print(f"{name}: done", file=sys.stderr, flush=True)
        memory = {s.name: rss_mb(s.process.pid) for s in servers}
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.turns} turns per conversation, one message at a time; bot messages alternate "
          f"an FAQ and a transaction lookup; TRACKER_MAX_EVENTS={args.max_events}.\n")
    print("| target | turn | latency ms | vs turn 5 | Rasa CPU ms/turn | vs turn 5 "
          "| action server CPU ms/turn |")
    print("|---|---|---|---|---|---|---|")
    tables = {name: summary(figures, args.turns) for name, figures in results.items()}
    for name, table in tables.items():
        first = table[min(table)]
        for mark, row in table.items():
            actions_cpu = f"{row['actions_cpu_ms']:.1f}" if "actions_cpu_ms" in row else "-"
            print(f"| {name} | {mark} | {row['latency_ms']:.1f} | "
                  f"{row['latency_ms'] / first['latency_ms']:.2f} | {row['rasa_cpu_ms']:.1f} | "
                  f"{row['rasa_cpu_ms'] / max(first['rasa_cpu_ms'], 1e-9):.2f} | {actions_cpu} |")
    print("\n| process | resident memory after the run (MB) |")
    print("|---|---|")
    for name, mb in memory.items():
        print(f"| {name} | {mb:.0f} |")
    if args.plot:
        plot(results, args.plot)
        print(f"\nplot: {args.plot}")
    if args.json:
        args.json.write_text(json.dumps({"turns": results, "summary": tables,
                                         "memory_mb": memory}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
