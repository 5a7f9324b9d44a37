"""Side-by-side scores of two models and the verdict: is the candidate not worse?

"Not worse" means: accuracy, macro-F1 and accuracy after fallback drop by at
most ``tolerance`` each, and no intent's F1 drops by more than
``intent_tolerance``. Both models are scored on the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from walletbot.trainer.console import fmt, signed, table
from walletbot.trainer.evaluation import Scores, summary

# One message of ~400 is 0.0025; TensorFlow on CPU moves a retrain by about that.
DEFAULT_TOLERANCE = 0.01
# One message of 12 moves an intent's F1 by 0.04-0.08.
DEFAULT_INTENT_TOLERANCE = 0.10
OVERALL = (
    ("accuracy", "accuracy"),
    ("macro_f1", "macro-F1"),
    ("accuracy_after_fallback", "accuracy after fallback"),
)


@dataclass
class Comparison:
    """The two models' figures and what got worse."""

    current: Dict[str, float]
    candidate: Dict[str, float]
    current_f1: Dict[str, float]
    candidate_f1: Dict[str, float]
    tolerance: float
    intent_tolerance: float
    worse: List[str] = field(default_factory=list)

    @property
    def acceptable(self) -> bool:
        """True if the candidate is not worse beyond the tolerances."""
        return not self.worse


def compare(
    *,
    candidate: Scores,
    current: Scores,
    tolerance: float = DEFAULT_TOLERANCE,
    intent_tolerance: float = DEFAULT_INTENT_TOLERANCE,
) -> Comparison:
    """Compares two models' scores on the same test set."""
    result = Comparison(
        current=summary(current),
        candidate=summary(candidate),
        current_f1={k: v["f1"] for k, v in current.per_label.items()},
        candidate_f1={k: v["f1"] for k, v in candidate.per_label.items()},
        tolerance=tolerance,
        intent_tolerance=intent_tolerance,
    )
    for key, name in OVERALL:
        drop = result.current[key] - result.candidate[key]
        if drop > tolerance + 1e-9:
            result.worse.append(f"{name} {fmt(result.current[key])} → {fmt(result.candidate[key])}")
    for label in sorted(set(result.current_f1) | set(result.candidate_f1)):
        old = result.current_f1.get(label, 0.0)
        new = result.candidate_f1.get(label, 0.0)
        if old - new > intent_tolerance + 1e-9:
            result.worse.append(f"{label} F1 {fmt(old)} → {fmt(new)}")
    return result


def render(result: Comparison, *, all_intents: bool = False) -> str:
    """The side-by-side table; intents only where F1 changed unless ``all_intents``."""
    rows: List[List[str]] = []
    for key, name in OVERALL:
        old, new = result.current[key], result.candidate[key]
        flag = "WORSE" if old - new > result.tolerance + 1e-9 else ""
        rows.append([name, fmt(old), fmt(new), signed(new - old), flag])
    old_fb, new_fb = result.current["fallback_rate"], result.candidate["fallback_rate"]
    rows.append(["fallback rate", fmt(old_fb), fmt(new_fb), signed(new_fb - old_fb), ""])
    intent_rows: List[List[str]] = []
    for label in sorted(set(result.current_f1) | set(result.candidate_f1)):
        old: Optional[float] = result.current_f1.get(label)
        new: Optional[float] = result.candidate_f1.get(label)
        diff = (new or 0.0) - (old or 0.0)
        if not all_intents and abs(diff) < 1e-9:
            continue
        flag = "WORSE" if -diff > result.intent_tolerance + 1e-9 else ""
        intent_rows.append([f"  {label}", fmt(old), fmt(new), signed(diff), flag])
    if intent_rows:
        rows.append(["F1 per intent" + ("" if all_intents else " (changed only)"), "", "", "", ""])
        rows += intent_rows
    else:
        rows.append(["F1 per intent: no change", "", "", "", ""])
    return table(
        rows, headers=["", "current", "candidate", "change", ""], numeric=(1, 2, 3), max_width=60
    )


def verdict(result: Comparison) -> str:
    """One line: accepted, or refused and why."""
    if result.acceptable:
        return (
            f"candidate is not worse (tolerance {result.tolerance} overall, "
            f"{result.intent_tolerance} F1 per intent)"
        )
    return "candidate is WORSE: " + "; ".join(result.worse)
