"""NLU quality on the held-out set: the bot's model beside a TF-IDF baseline.

Run (after `make train`):

    . scripts/env.sh && .venv/bin/python bench/nlu_quality.py [--model models/walletbot.tar.gz]

Both systems learn from the same files (data/nlu/) and are scored on two
held-out sets: tests/data/nlu_test.yml (written separately from the training
data) and tests/data/nlu_test_blind.yml (written from the spec and the sources
only, by someone who never saw the training data). Lines identical to a
training line are left out. Besides accuracy and macro-F1, the paired
comparison counts the messages only one system gets right, with an exact
McNemar test (is the difference more than chance?).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from walletbot.nlu.normalize import normalize_text  # noqa: E402
from walletbot.trainer import evaluation as ev  # noqa: E402


def paired_comparison(gold, model, baseline) -> dict:
    """Messages only one system classifies right, and the exact McNemar p-value."""
    from scipy.stats import binomtest

    only_model = sum(g == m and g != b for g, m, b in zip(gold, model, baseline))
    only_base = sum(g == b and g != m for g, m, b in zip(gold, model, baseline))
    discordant = only_model + only_base
    p = binomtest(only_model, discordant, 0.5).pvalue if discordant else 1.0
    return {"only_model_right": only_model, "only_baseline_right": only_base,
            "mcnemar_p": round(float(p), 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models/walletbot.tar.gz")
    parser.add_argument("--train", type=Path, default=ROOT / "data/nlu")
    parser.add_argument("--test", type=Path, nargs="+",
                        default=[ROOT / "tests/data/nlu_test.yml",
                                 ROOT / "tests/data/nlu_test_blind.yml"])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--sweep", action="store_true", help="also sweep the fallback threshold")
    args = parser.parse_args()

    train = ev.load_examples(args.train)
    sets = {path.name: ev.exclude_seen(ev.load_examples(path), train) for path in args.test}
    written = [e for path in args.test for e in ev.load_examples(path)]
    test = [e for examples in sets.values() for e in examples]
    scores = ev.evaluate_model(args.model, test)
    baseline = ev.baseline_predictions(train, test, normalize=normalize_text)
    gold = [e.label for e in test]
    base_acc = sum(g == p for g, p in zip(gold, baseline)) / len(gold)
    base_f1 = ev.macro_f1(gold, baseline)
    model_labels = [p.classified for p in scores.predictions]
    paired = paired_comparison(gold, model_labels, baseline)
    per_set, start = {}, 0
    for name, examples in sets.items():
        end = start + len(examples)
        g, m, b = gold[start:end], model_labels[start:end], baseline[start:end]
        per_set[name] = {
            "examples": len(examples),
            "model_accuracy": round(sum(x == y for x, y in zip(g, m)) / len(g), 4),
            "baseline_accuracy": round(sum(x == y for x, y in zip(g, b)) / len(g), 4),
        }
        start = end

    result = {
        "test_examples": len(test),
        "test_examples_excluded_as_seen_in_training": len(written) - len(test),
        "train_examples": len(train),
        "model": {
            "accuracy": round(scores.accuracy, 4),
            "accuracy_after_fallback": round(scores.accuracy_after_fallback, 4),
            "macro_f1": round(scores.macro_f1, 4),
            "fallback_rate": round(scores.fallback_rate, 4),
        },
        "baseline_tfidf_logreg": {"accuracy": round(base_acc, 4), "macro_f1": round(base_f1, 4)},
        "per_set": per_set,
        "paired": paired,
        "ensemble_parts": {
            "diet_rs_alone": scores.component_accuracy("model"),
            "linear_alone": scores.component_accuracy("linear"),
        },
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    print(
        f"held-out examples: {len(test)} ({len(written) - len(test)} identical to training "
        f"lines excluded), training examples: {len(train)}"
    )
    print(f"{'system':<28}{'accuracy':>10}{'macro-F1':>10}")
    print(f"{'walletbot NLU pipeline':<28}{scores.accuracy:>10.3f}{scores.macro_f1:>10.3f}")
    print(f"{'TF-IDF char + logreg':<28}{base_acc:>10.3f}{base_f1:>10.3f}")
    for part, name in (("model", "  of which DIET+RS alone"), ("linear", "  of which linear alone")):
        acc = scores.component_accuracy(part)
        if acc is not None:
            print(f"{name:<28}{acc:>10.3f}")
    print(f"ratio model/baseline accuracy: {scores.accuracy / base_acc:.3f}")
    for name, figures in per_set.items():
        print(f"  {name} ({figures['examples']}): model {figures['model_accuracy']:.3f}, "
              f"baseline {figures['baseline_accuracy']:.3f}")
    print(f"paired: only the model right {paired['only_model_right']}, only the baseline "
          f"right {paired['only_baseline_right']}, exact McNemar p = {paired['mcnemar_p']:.3f}")
    print(
        f"after fallback: accuracy {scores.accuracy_after_fallback:.3f}, "
        f"fallback rate {scores.fallback_rate:.3f}"
    )
    if args.sweep:
        print("\nthreshold  acc_after_fallback  fallback_rate")
        thresholds = [round(0.05 * i, 2) for i in range(2, 17)]
        for t, acc, rate in ev.fallback_sweep(scores.predictions, thresholds):
            print(f"{t:>9.2f}{acc:>20.3f}{rate:>15.3f}")
    print("\nmisclassified:")
    for p in scores.errors():
        print(f"  {p.gold:<26} -> {p.classified:<26} {p.confidence:.2f}  {p.text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
