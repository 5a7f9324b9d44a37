"""``walletbot evaluate``: a model's scores on the held-out test set, as a report.

The test set's lines that also occur word for word in the training data
(short lines like 在吗) are not scored by default: they measure memory, not
generalisation (the same rule as ``tests/model/test_heldout.py``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, TextIO

from walletbot.trainer import evaluation as ev
from walletbot.trainer.console import fmt, table


@dataclass(frozen=True)
class TestSet:
    """The messages to score and where they came from."""

    examples: List[ev.LabelledExample]
    source: Path
    written: int

    @property
    def excluded(self) -> int:
        """Lines left out because they occur in the training data."""
        return self.written - len(self.examples)

    def describe(self) -> str:
        """One line for reports."""
        text = f"test set {self.source}: {len(self.examples)} messages scored"
        if self.excluded:
            text += f" ({self.excluded} identical to training lines left out)"
        return text


def load_test_set(*, test: Path, train_data: Optional[Path]) -> TestSet:
    """The test set, without lines seen in ``train_data`` (unless it is None)."""
    if not test.exists():
        raise FileNotFoundError(f"test set {test} does not exist (pass --test)")
    written = ev.load_examples(test)
    examples = (
        ev.exclude_seen(written, ev.load_examples(train_data))
        if train_data is not None and train_data.exists() else list(written)
    )
    if not examples:
        raise ValueError(f"test set {test} has no messages to score")
    return TestSet(examples=examples, source=test, written=len(written))


def evaluate(*, model: Path, test_set: TestSet, progress: bool = True) -> ev.Scores:
    """Scores ``model`` on the test set."""
    return ev.evaluate_model(model, test_set.examples, progress=progress)


def report_dir(*, reports: Path, name: str, now: Optional[float] = None) -> Path:
    """``reports/<YYYYmmdd-HHMMSS>-<name>/``."""
    return reports / f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{name}"


def print_summary(
    scores: ev.Scores, *, worst: int = 10, stream: Optional[TextIO] = None
) -> None:
    """Headline figures and the weakest intents, for the console."""
    stream = stream or sys.stdout
    figures = ev.summary(scores)
    print(
        f"accuracy {fmt(figures['accuracy'])}   macro-F1 {fmt(figures['macro_f1'])}   "
        f"after fallback {fmt(figures['accuracy_after_fallback'])}   "
        f"fallback rate {figures['fallback_rate']:.1%}   "
        f"({int(figures['examples'])} messages, {len(scores.errors())} misclassified)",
        file=stream,
    )
    from walletbot.trainer.report import per_label_rows

    rows = [
        [r[0], fmt(r[1]), fmt(r[2]), fmt(r[3]), r[4]]
        for r in per_label_rows(scores)[:worst]
    ]
    print(f"\nweakest intents:\n" + table(
        rows, headers=["intent", "precision", "recall", "F1", "n"], numeric=(1, 2, 3, 4)
    ), file=stream)
    errors = scores.errors()
    if errors:
        shown = [[p.text, p.gold, p.classified, fmt(p.confidence, 2)] for p in errors[:10]]
        print("\nmisclassified (first 10):\n" + table(
            shown, headers=["message", "gold", "classified", "conf"], numeric=(3,)
        ), file=stream)


def write(
    scores: ev.Scores,
    *,
    reports: Path,
    name: str,
    context: Sequence[str],
    formats: Sequence[str],
) -> Dict[str, Path]:
    """Writes the report under ``reports/``; returns the files by kind."""
    from walletbot.trainer.report import write_report

    return write_report(
        scores,
        out_dir=report_dir(reports=reports, name=name),
        title=f"NLU evaluation: {name}",
        context=context,
        formats=formats,
    )
