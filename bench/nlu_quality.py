"""NLU candidates side by side: quality on every held-out set, and what they cost.

Run (about 30 minutes with every candidate, most of it training the DIET ones):

    . scripts/env.sh && .venv/bin/python bench/nlu_quality.py [--candidates v2 ...] [--reuse]

For each candidate pipeline (``v2`` is the bot's config.yml; the others are
bench/candidates/<name>.yml) and for the TF-IDF + logistic regression baseline,
all trained on the same data/nlu/ in the same run, it reports:

- accuracy and macro-F1 after fallback (a fallback counts as a miss) per
  held-out set, and per kind of typing on tests/data/nlu_test_typing.yml;
- the fallback rate (every held-out message is answerable);
- the full training time (``rasa train`` from scratch, with an empty cache);
- NLU parse time p50 / p99, in-process, after a warm-up;
- resident memory of a ``rasa run`` server (started as the bot's servers
  are, ``python -m walletbot.server run``) with the model loaded and one
  message parsed (jieba loads its dictionary on first use);
- a paired comparison of the first candidate with the baseline per set
  (messages only one of them gets right, exact McNemar test).

Lines identical to a training line are left out of every set. ``--reuse``
keeps models trained by an earlier run with the same config and data
(bench/.models/), with their recorded training time.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from walletbot.nlu.normalize import normalize_text  # noqa: E402
from walletbot.trainer import evaluation as ev  # noqa: E402

RASA = str(ROOT / ".venv" / "bin" / "rasa")
# The bot's server as every launcher starts it (version check, walletbot's
# patches of Rasa: walletbot/server.py), so its memory is the deployed one.
SERVER = [str(ROOT / ".venv" / "bin" / "python"), "-m", "walletbot.server"]
PYTHON = sys.executable
MODELS = ROOT / "bench" / ".models"
TEST_SETS = [
    ROOT / "tests/data/nlu_test.yml",
    ROOT / "tests/data/nlu_test_blind.yml",
    ROOT / "tests/data/nlu_test_typing.yml",
]
CANDIDATES = ["v2", "linear_chars", "rasa_logreg_rs", "lean_diet_rs_ensemble",
              "diet_rs_ensemble"]
KINDS = ["plain", "typo", "pinyin", "english", "voice", "colloquial"]


def config_of(name: str) -> Path:
    return ROOT / "config.yml" if name == "v2" else ROOT / "bench" / "candidates" / f"{name}.yml"


def fingerprint(config: Path) -> str:
    digest = hashlib.sha256(config.read_bytes())
    inputs = [ROOT / "domain.yml"] + sorted((ROOT / "data").rglob("*.yml")) \
        + sorted((ROOT / "data").rglob("*.txt")) + sorted((ROOT / "walletbot/nlu").glob("*.py"))
    for path in inputs:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def train(name: str, reuse: bool) -> Dict[str, Any]:
    """Trains a candidate from scratch (empty Rasa cache); returns path and seconds."""
    config = config_of(name)
    MODELS.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{fingerprint(config)}"
    model, record = MODELS / f"{stem}.tar.gz", MODELS / f"{stem}.json"
    if reuse and model.exists() and record.exists():
        return json.loads(record.read_text())
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, RASA_CACHE_DIRECTORY=cache)
        start = time.perf_counter()
        subprocess.run(
            [RASA, "train", "--config", str(config), "--domain", "domain.yml",
             "--data", "data", "--out", str(MODELS), "--fixed-model-name", stem],
            cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - start
    result = {"model": str(model), "train_seconds": round(seconds, 1)}
    record.write_text(json.dumps(result))
    return result


def score_one(model: str, texts_file: str) -> None:
    """Child process: parses every text, prints labels and parse times as JSON."""
    from rasa.core.agent import Agent

    ev.quiet_rasa_logs()
    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    agent = Agent.load(model)

    async def run() -> List[Dict[str, Any]]:
        for text in texts[:30]:
            await agent.parse_message(text)
        rows = []
        for text in texts:
            start = time.perf_counter()
            parse = await agent.parse_message(text)
            elapsed = time.perf_counter() - start
            label, confidence, fell_back = ev.full_label_of(parse)
            rows.append({"label": label, "fell_back": fell_back, "ms": elapsed * 1000})
        return rows

    print(json.dumps(asyncio.run(run())))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_memory_mb(model: str) -> float:
    """VmRSS of ``rasa run`` with the model loaded and one message parsed."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        endpoints = Path(tmp) / "endpoints.yml"
        endpoints.write_text("{}\n")
        server = subprocess.Popen(
            [*SERVER, "run", "--model", model, "--port", str(port), "--interface", "127.0.0.1",
             "--enable-api", "--endpoints", str(endpoints)],
            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.time() + 180
            while True:
                try:
                    request = urllib.request.Request(
                        f"http://127.0.0.1:{port}/model/parse",
                        data=json.dumps({"text": "提现多久到账"}).encode(),
                        headers={"Content-Type": "application/json"},
                    )
                    with urllib.request.urlopen(request, timeout=30) as response:
                        if response.status == 200:
                            break
                except OSError:
                    if time.time() > deadline or server.poll() is not None:
                        raise RuntimeError(f"rasa run did not come up for {model}")
                    time.sleep(1)
            for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
            raise RuntimeError("no VmRSS")
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def figures(gold: Sequence[str], final: Sequence[str], fell: Sequence[bool]) -> Dict[str, float]:
    n = len(gold) or 1
    return {
        "examples": len(gold),
        "accuracy": round(sum(g == f for g, f in zip(gold, final)) / n, 4),
        "macro_f1": round(ev.macro_f1(gold, final), 4),
        "fallback_rate": round(sum(fell) / n, 4),
    }


def paired(gold, a, b) -> Dict[str, Any]:
    from scipy.stats import binomtest

    only_a = sum(g == x and g != y for g, x, y in zip(gold, a, b))
    only_b = sum(g == y and g != x for g, x, y in zip(gold, a, b))
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"only_candidate_right": only_a, "only_baseline_right": only_b,
            "mcnemar_p": round(float(p), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", nargs="+", default=CANDIDATES)
    parser.add_argument("--reuse", action="store_true", help="reuse models of an earlier run")
    parser.add_argument("--no-memory", action="store_true", help="skip the server memory figure")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--errors", help="print the misses of this candidate")
    parser.add_argument("--score-one", nargs=2, metavar=("MODEL", "TEXTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.score_one:
        score_one(*args.score_one)
        return 0

    ev.quiet_rasa_logs()
    training = ev.load_examples(ROOT / "data/nlu")
    sets = {p.name: ev.exclude_seen(ev.load_examples(p), training) for p in TEST_SETS}
    test = [e for examples in sets.values() for e in examples]
    gold = [e.label for e in test]
    baseline = ev.baseline_predictions(training, test, normalize=normalize_text)

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump([e.text for e in test], f, ensure_ascii=False)
        texts_file = f.name

    results: Dict[str, Any] = {"train_examples": len(training),
                               "sets": {k: len(v) for k, v in sets.items()}, "candidates": {}}
    finals: Dict[str, List[str]] = {}
    for name in args.candidates:
        print(f"[{name}] training ...", file=sys.stderr, flush=True)
        trained = train(name, args.reuse)
        print(f"[{name}] scoring ...", file=sys.stderr, flush=True)
        out = subprocess.run([PYTHON, __file__, "--score-one", trained["model"], texts_file],
                             cwd=ROOT, check=True, capture_output=True, text=True).stdout
        rows = json.loads(out.strip().splitlines()[-1])
        final = [ev.FALLBACK_INTENT if r["fell_back"] else r["label"] for r in rows]
        finals[name] = final
        times = sorted(r["ms"] for r in rows)
        entry = {
            "train_seconds": trained["train_seconds"],
            "parse_ms_p50": round(statistics.median(times), 2),
            "parse_ms_p99": round(times[int(0.99 * (len(times) - 1))], 2),
            "per_set": {}, "per_kind": {},
        }
        if not args.no_memory:
            print(f"[{name}] server memory ...", file=sys.stderr, flush=True)
            entry["server_rss_mb"] = round(server_memory_mb(trained["model"]))
        results["candidates"][name] = entry
    results["baseline"] = {"per_set": {}, "per_kind": {}}

    def split(values: Sequence[Any], keep) -> List[Any]:
        return [v for v, e in zip(values, test) if keep(e)]

    for set_name, examples in sets.items():
        members = {id(e) for e in examples}
        in_set = lambda e, m=members: id(e) in m  # noqa: E731
        g = split(gold, in_set)
        for name, final in finals.items():
            f = split(final, in_set)
            results["candidates"][name]["per_set"][set_name] = figures(
                g, f, [x == ev.FALLBACK_INTENT for x in f])
        b = split(baseline, in_set)
        results["baseline"]["per_set"][set_name] = figures(g, b, [False] * len(b))
        first = args.candidates[0]
        results["candidates"][first]["per_set"][set_name]["paired_vs_baseline"] = paired(
            g, split(finals[first], in_set), b)
    typing = "nlu_test_typing.yml"
    members = {id(e) for e in sets.get(typing, [])}
    for kind in KINDS:
        keep = lambda e, k=kind: id(e) in members and e.kind == k  # noqa: E731
        g = split(gold, keep)
        if not g:
            continue
        for name, final in finals.items():
            f = split(final, keep)
            results["candidates"][name]["per_kind"][kind] = figures(
                g, f, [x == ev.FALLBACK_INTENT for x in f])
        b = split(baseline, keep)
        results["baseline"]["per_kind"][kind] = figures(g, b, [False] * len(b))

    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    print_tables(results)
    if args.errors in finals:
        print(f"\nmisses of {args.errors}:")
        for e, f in zip(test, finals[args.errors]):
            if f != e.label:
                print(f"  {e.label:<26} -> {f:<26} [{e.kind or '-'}] {e.text}")
    return 0


def print_tables(results: Dict[str, Any]) -> None:
    sets = list(results["sets"])
    print(f"training examples {results['train_examples']}; held-out "
          + ", ".join(f"{k} {v}" for k, v in results["sets"].items()))
    print("\nAccuracy / macro-F1 after fallback, fallback rate, per held-out set:\n")
    print("| system | " + " | ".join(sets) + " | train s | parse p50 / p99 ms | server RSS MB |")
    print("|---|" + "---|" * len(sets) + "---|---|---|")
    for name, c in results["candidates"].items():
        cells = [f"{c['per_set'][s]['accuracy']:.3f} / {c['per_set'][s]['macro_f1']:.3f} / "
                 f"{c['per_set'][s]['fallback_rate']:.1%}" for s in sets]
        print(f"| {name} | " + " | ".join(cells) + f" | {c['train_seconds']:.0f} | "
              f"{c['parse_ms_p50']:.1f} / {c['parse_ms_p99']:.1f} | {c.get('server_rss_mb', '-')} |")
    b = results["baseline"]
    cells = [f"{b['per_set'][s]['accuracy']:.3f} / {b['per_set'][s]['macro_f1']:.3f} / -"
             for s in sets]
    print("| TF-IDF + logreg baseline | " + " | ".join(cells) + " | | | |")
    kinds = [k for k in KINDS if k in b["per_kind"]]
    if kinds:
        print("\nAccuracy after fallback per kind, nlu_test_typing.yml:\n")
        print("| system | " + " | ".join(f"{k} ({b['per_kind'][k]['examples']})" for k in kinds)
              + " |")
        print("|---|" + "---|" * len(kinds))
        for name, c in results["candidates"].items():
            print(f"| {name} | " + " | ".join(f"{c['per_kind'][k]['accuracy']:.3f}"
                                             for k in kinds) + " |")
        print("| TF-IDF + logreg baseline | "
              + " | ".join(f"{b['per_kind'][k]['accuracy']:.3f}" for k in kinds) + " |")
    first = next(iter(results["candidates"]))
    print(f"\nPaired, {first} vs baseline:")
    for s in sets:
        p = results["candidates"][first]["per_set"][s]["paired_vs_baseline"]
        delta = results["candidates"][first]["per_set"][s]["accuracy"] - b["per_set"][s]["accuracy"]
        print(f"  {s}: {delta * 100:+.1f} points; only {first} right {p['only_candidate_right']}, "
              f"only baseline right {p['only_baseline_right']}, exact McNemar p = {p['mcnemar_p']}")


if __name__ == "__main__":
    sys.exit(main())
