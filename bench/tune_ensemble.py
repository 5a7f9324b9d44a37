"""Chooses the ensemble weight by k-fold cross-validation on the training data.

The held-out sets stay untouched: each fold trains the NLU (with the ensemble
switched off) on k-1 parts of data/nlu and parses the remaining part; the
linear model is fitted on the same k-1 parts. Then every weight is scored on
the out-of-fold predictions, for both the arithmetic and the geometric mean.

    . scripts/env.sh && .venv/bin/python bench/tune_ensemble.py [--folds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from walletbot.nlu.ensemble import model_distribution  # noqa: E402
from walletbot.nlu.labels import full_label  # noqa: E402
from walletbot.nlu.normalize import normalize_text  # noqa: E402

WEIGHTS = [0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0]


def folds_of(examples, k, seed=1):
    by_label = defaultdict(list)
    for example in examples:
        by_label[full_label(example)].append(example)
    folds = [[] for _ in range(k)]
    rng = random.Random(seed)
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        for i, example in enumerate(group):
            folds[i % k].append(example)
    return folds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--config", type=Path, default=ROOT / "config.yml")
    args = parser.parse_args()

    from rasa.core.agent import Agent
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.training_data import TrainingData
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    import yaml

    data = load_data(str(ROOT / "data/nlu"))
    folds = folds_of(data.intent_examples, args.folds)
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    for component in config["pipeline"]:
        if component["name"].endswith("LexicalEnsembleClassifier"):
            component["weight"] = 0
    rows = []  # (gold, model distribution, linear distribution)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        for i, held in enumerate(folds):
            train = [e for j, f in enumerate(folds) if j != i for e in f]
            nlu = tmp / f"fold{i}.yml"
            RasaYAMLWriter().dump(nlu, TrainingData(training_examples=train, responses=data.responses))
            subprocess.run(
                [str(ROOT / ".venv/bin/rasa"), "train", "nlu", "-c", str(tmp / "config.yml"),
                 "--nlu", str(nlu), "--out", str(tmp), "--fixed-model-name", f"m{i}"],
                cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            agent = Agent.load(str(tmp / f"m{i}.tar.gz"))
            linear = make_pipeline(
                TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True),
                LogisticRegression(C=10.0, max_iter=3000, random_state=1),
            )
            linear.fit([normalize_text(e.get("text")) for e in train], [full_label(e) for e in train])
            probabilities = linear.predict_proba([normalize_text(e.get("text")) for e in held])
            classes = list(linear.classes_)

            async def parse_all():
                return [await agent.parse_message(e.get("text")) for e in held]

            for example, parse, p in zip(held, asyncio.run(parse_all()), probabilities):
                rows.append((full_label(example), model_distribution(parse), dict(zip(classes, p))))
            print(f"fold {i + 1}/{args.folds} done", file=sys.stderr)

    print(f"out-of-fold examples: {len(rows)}")
    print("weight  arithmetic  geometric")
    for w in WEIGHTS:
        right_a = right_g = 0
        for gold, model, linear in rows:
            labels = set(model) | set(linear)
            arith = {l: (1 - w) * model.get(l, 0) + w * linear.get(l, 0) for l in labels}
            geo = {
                l: (1 - w) * math.log(model.get(l, 0) + 1e-6) + w * math.log(linear.get(l, 0) + 1e-6)
                for l in labels
            }
            right_a += max(arith, key=arith.get) == gold
            right_g += max(geo, key=geo.get) == gold
        print(f"{w:>6.1f}{right_a / len(rows):>12.4f}{right_g / len(rows):>11.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
