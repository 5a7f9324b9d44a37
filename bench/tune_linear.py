"""Chooses the intent model's views, C and fallback settings on development data only.

Scores each setting by 5-fold cross-validation on data/nlu/ and on the two
development sets (tests/data/nlu_dev.yml, tests/data/nlu_dev_typing.yml). The
final test sets are never read here.

    . scripts/env.sh && .venv/bin/python bench/tune_linear.py [--grid small|views|fallback]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from walletbot.nlu.linear import LinearIntentModel, ViewSpec  # noqa: E402
from walletbot.nlu.normalize import normalize_text  # noqa: E402
from walletbot.trainer import evaluation as ev  # noqa: E402

DEV_SETS = [ROOT / "tests/data/nlu_dev.yml", ROOT / "tests/data/nlu_dev_typing.yml"]

# Nonsense for tuning the fallback; tests/model has its own, separate list.
DEV_NONSENSE = [
    "sdfghjkl", "jjjjjjjj", "啊啊啊啊啊", "！！！", "000000", "😂😂😂", "呵呵呵呵呵呵",
    "qazwsx", "。。？？", "lkjhg poiuy", "哦哦哦哦", "xyzzy", "……", "8888888",
    "asdfghjkl", "🤔🤔🤔", "呃呃呃呃呃",
]

GRIDS: Dict[str, List[Dict]] = {
    "views": [
        {"views": [("chars", 1, 3, 1.0)]},
        {"views": [("chars", 1, 4, 1.0)]},
        {"views": [("chars", 1, 3, 1.0), ("pinyin", 2, 4, 1.0)]},
        {"views": [("chars", 1, 3, 1.0), ("pinyin", 2, 5, 1.0)]},
        {"views": [("chars", 1, 3, 1.0), ("pinyin", 3, 6, 1.0)]},
        {"views": [("chars", 1, 4, 1.0), ("pinyin", 2, 5, 1.0)]},
        {"views": [("chars", 1, 3, 1.0), ("pinyin", 2, 5, 0.7)]},
        {"views": [("chars", 1, 3, 0.7), ("pinyin", 2, 5, 1.0)]},
    ],
    "C": [
        {"views": [("chars", 1, 3, 1.0), ("pinyin", 2, 5, 1.0)], "C": c}
        for c in (3.0, 10.0, 30.0, 100.0)
    ],
}


def fit(train: Sequence[ev.LabelledExample], setting: Dict) -> LinearIntentModel:
    views = [ViewSpec(*v) for v in setting["views"]]
    return LinearIntentModel.fit(
        [normalize_text(e.text) for e in train], [e.label for e in train],
        views=views, C=setting.get("C", 10.0),
    )


def predictions(model: LinearIntentModel, examples: Sequence[ev.LabelledExample]):
    rows = []
    for e in examples:
        scored = model.score(normalize_text(e.text))
        best = int(scored.probabilities.argmax())
        rows.append((e.label, scored.labels[best], float(scored.probabilities[best]),
                     scored.known_share, e.text, scored.top_score))
    return rows


def cross_validation(train, setting, folds=5) -> float:
    right = 0
    for k in range(folds):
        fold_train = [e for i, e in enumerate(train) if i % folds != k]
        fold_test = [e for i, e in enumerate(train) if i % folds == k]
        model = fit(fold_train, setting)
        right += sum(g == p for g, p, *_ in predictions(model, fold_test))
    return right / len(train)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid", default="views", choices=sorted(GRIDS) + ["fallback"])
    parser.add_argument("--errors", action="store_true")
    args = parser.parse_args()
    ev.quiet_rasa_logs()
    train = ev.load_examples(ROOT / "data/nlu")
    dev = {p.name: ev.exclude_seen(ev.load_examples(p), train) for p in DEV_SETS if p.exists()}
    print(f"train {len(train)}; " + ", ".join(f"{k} {len(v)}" for k, v in dev.items()))
    if args.grid == "fallback":
        return fallback(train, dev)
    for setting in GRIDS[args.grid]:
        start = time.perf_counter()
        model = fit(train, setting)
        seconds = time.perf_counter() - start
        figures = []
        for name, examples in dev.items():
            rows = predictions(model, examples)
            acc = sum(g == p for g, p, *_ in rows) / len(rows)
            figures.append(f"{name} {acc:.3f}")
            if args.errors:
                for g, p, conf, known, text in rows:
                    if g != p:
                        print(f"    {g:<24} -> {p:<24} {conf:.2f} {known:.2f} {text}")
        cv = cross_validation(train, setting)
        print(f"{setting}  fit {seconds:.1f}s  cv {cv:.3f}  " + "  ".join(figures))
    return 0


def fallback(train, dev) -> int:
    """Which confidence, and which threshold, on the dev sets and the dev nonsense.

    ``normalised``: the best label's share of the one-vs-rest scores;
    ``raw``: its own one-vs-rest probability (low when no label claims the text).
    """
    setting = {"views": [("chars", 1, 3, 1.0), ("pinyin", 2, 4, 1.0)]}
    from walletbot.nlu.unclear import UnclearText

    model = fit(train, setting)
    unclear = UnclearText.from_training([normalize_text(e.text) for e in train])
    rows = [r for examples in dev.values() for r in predictions(model, examples)]
    flagged = [e.text for examples in dev.values() for e in examples
               if unclear.reason(normalize_text(e.text))]
    print(f"dev messages flagged unclear: {len(flagged)} {flagged}")
    kept = [t for t in DEV_NONSENSE if not unclear.reason(normalize_text(t))]
    print(f"dev nonsense not flagged: {kept}")
    junk = [model.score(normalize_text(t)) for t in kept]
    modes = {
        "normalised": (lambda r: r[2], lambda s: float(s.probabilities.max())),
        "raw": (lambda r: r[5], lambda s: s.top_score),
    }
    print("confidence   threshold  acc_after_fb  fallback_rate  nonsense_fell_back")
    for mode, (of_row, of_junk) in modes.items():
        for threshold in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5):
            conf = [of_row(r) for r in rows]
            right = sum(r[0] == r[1] and c >= threshold for r, c in zip(rows, conf))
            fell = sum(c < threshold for c in conf)
            junk_fell = sum(of_junk(s) < threshold for s in junk)
            print(f"{mode:<12}{threshold:>10.2f}{right / len(rows):>14.3f}"
                  f"{fell / len(rows):>15.3f}{junk_fell:>12}/{len(junk)}")
    print("\nnonsense:")
    for text, s in zip(kept, junk):
        best = int(s.probabilities.argmax())
        print(f"  {text:<14} {s.labels[best]:<22} norm {s.probabilities[best]:.2f} "
              f"raw {s.top_score:.2f} known {s.known_share:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
