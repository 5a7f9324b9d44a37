"""Scoring an NLU model on a held-out set, with labels as the contract names them.

FAQ questions are the retrieval intent ``faq`` plus a ResponseSelector key, so
a prediction's full label is ``faq/<key>`` when the intent is ``faq`` and the
intent name otherwise.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

FALLBACK_INTENT = "nlu_fallback"


@dataclass(frozen=True)
class LabelledExample:
    """A user message and its gold label (``greet``, ``faq/withdraw_fee``, ...)."""

    text: str
    label: str
    # How it was typed (plain, typo, pinyin, english, voice, colloquial), when
    # the held-out file tags its blocks with ``metadata: {kind: ...}``.
    kind: str = ""


@dataclass(frozen=True)
class Prediction:
    """What the model made of one message."""

    text: str
    gold: str
    classified: str
    confidence: float
    fell_back: bool
    entities: Tuple[Tuple[str, str], ...] = ()
    # The two halves of the ensemble, when the pipeline has one.
    model_label: Optional[str] = None
    linear_label: Optional[str] = None

    @property
    def final(self) -> str:
        """The label the bot acts on: ``nlu_fallback`` when the threshold fired."""
        return FALLBACK_INTENT if self.fell_back else self.classified


@dataclass
class Scores:
    """Accuracy figures over a list of predictions."""

    predictions: List[Prediction]
    per_label: Dict[str, Dict[str, float]] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """Share of messages whose classified label is right (fallback ignored)."""
        return _share(p.classified == p.gold for p in self.predictions)

    @property
    def accuracy_after_fallback(self) -> float:
        """Share right after the fallback threshold; a fallback counts as wrong."""
        return _share(p.final == p.gold for p in self.predictions)

    @property
    def fallback_rate(self) -> float:
        """Share of messages that fell back."""
        return _share(p.fell_back for p in self.predictions)

    @property
    def macro_f1(self) -> float:
        """Macro-averaged F1 over the gold labels."""
        return macro_f1([p.gold for p in self.predictions], [p.classified for p in self.predictions])

    def component_accuracy(self, part: str) -> Optional[float]:
        """Accuracy of one half of the ensemble (``model`` or ``linear``), if present."""
        labels = [getattr(p, f"{part}_label") for p in self.predictions]
        if any(label is None for label in labels):
            return None
        return _share(label == p.gold for label, p in zip(labels, self.predictions))

    def errors(self) -> List[Prediction]:
        """The misclassified messages."""
        return [p for p in self.predictions if p.classified != p.gold]


def _share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return sum(values) / len(values) if values else 0.0


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Macro-F1 over the labels that occur in ``gold``."""
    from sklearn.metrics import f1_score

    return float(
        f1_score(gold, predicted, labels=sorted(set(gold)), average="macro", zero_division=0)
    )


def load_examples(path: Path) -> List[LabelledExample]:
    """Examples of a Rasa NLU YAML file (or folder) with their full labels."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    examples = []
    for message in data.intent_examples:
        label = message.get("intent_response_key") or message.get("intent")
        metadata = message.get("metadata") or {}
        kind = str(((metadata.get("intent") or {}).get("kind"))
                   or ((metadata.get("example") or {}).get("kind")) or "")
        examples.append(LabelledExample(text=message.get("text"), label=label, kind=kind))
    return examples


def exclude_seen(
    examples: Sequence[LabelledExample], training: Sequence[LabelledExample]
) -> List[LabelledExample]:
    """The examples whose text does not occur in the training data.

    Very short messages (在吗, 谢谢) are written identically by anyone; a test
    set scored on them would measure memory, not generalisation. Texts are
    compared after normalisation and lower-casing.
    """
    from walletbot.nlu.normalize import normalize_text

    seen = {normalize_text(e.text).lower() for e in training}
    return [e for e in examples if normalize_text(e.text).lower() not in seen]


def full_label_of(parse: Dict[str, Any]) -> Tuple[str, float, bool]:
    """``(classified label, confidence, fell_back)`` from a Rasa parse result."""
    intent = parse.get("intent") or {}
    fell_back = intent.get("name") == FALLBACK_INTENT
    ranking = [r for r in parse.get("intent_ranking") or [] if r.get("name") != FALLBACK_INTENT]
    top = ranking[0] if ranking else intent
    name = top.get("name") or ""
    confidence = float(top.get("confidence") or 0.0)
    if name == "faq":
        selected = (parse.get("response_selector") or {}).get("faq", {}).get("response", {})
        key = selected.get("intent_response_key")
        if key:
            name = key
    return name, confidence, fell_back


async def predict_all(
    agent: Any, examples: Sequence[LabelledExample], *, progress: bool = False
) -> List[Prediction]:
    """Parses every example with a loaded Rasa ``Agent`` (a progress bar if asked)."""
    from walletbot.trainer.console import progress as progress_bar

    predictions = []
    for example in progress_bar(examples, desc="parsing", enabled=progress):
        parse = await agent.parse_message(example.text)
        label, confidence, fell_back = full_label_of(parse)
        entities = tuple((e["entity"], str(e.get("value"))) for e in parse.get("entities") or [])
        parts = parse.get("ensemble") or {}
        predictions.append(
            Prediction(
                example.text, example.label, label, confidence, fell_back, entities,
                model_label=(parts.get("model") or [None])[0],
                linear_label=(parts.get("linear") or [None])[0],
            )
        )
    return predictions


def score(predictions: List[Prediction]) -> Scores:
    """Scores with per-label precision, recall and F1."""
    scores = Scores(predictions)
    gold = Counter(p.gold for p in predictions)
    predicted = Counter(p.classified for p in predictions)
    right = Counter(p.gold for p in predictions if p.gold == p.classified)
    for label in sorted(gold):
        precision = right[label] / predicted[label] if predicted[label] else 0.0
        recall = right[label] / gold[label]
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.per_label[label] = {
            "precision": precision, "recall": recall, "f1": f1, "support": gold[label],
        }
    return scores


def quiet_rasa_logs() -> None:
    """Rasa's structlog prints one debug line per parsed message; keep warnings only."""
    import logging

    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)


def evaluate_model(
    model_path: Path, examples: Sequence[LabelledExample], *, progress: bool = False
) -> Scores:
    """Loads the model and scores it on ``examples`` (blocking)."""
    from rasa.core.agent import Agent

    quiet_rasa_logs()

    agent = Agent.load(str(model_path))
    return score(asyncio.run(predict_all(agent, examples, progress=progress)))


def confusion(predictions: Sequence[Prediction]) -> Tuple[List[str], List[List[int]]]:
    """``(labels, matrix)``: ``matrix[i][j]`` counts gold ``labels[i]`` classified ``labels[j]``.

    The labels are every gold and predicted label, sorted.
    """
    labels = sorted({p.gold for p in predictions} | {p.classified for p in predictions})
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for p in predictions:
        matrix[index[p.gold]][index[p.classified]] += 1
    return labels, matrix


def summary(scores: Scores) -> Dict[str, float]:
    """The headline figures of ``scores``."""
    return {
        "examples": len(scores.predictions),
        "accuracy": scores.accuracy,
        "macro_f1": scores.macro_f1,
        "accuracy_after_fallback": scores.accuracy_after_fallback,
        "fallback_rate": scores.fallback_rate,
    }


def fallback_sweep(
    predictions: Sequence[Prediction], thresholds: Sequence[float]
) -> List[Tuple[float, float, float]]:
    """``(threshold, accuracy after fallback, fallback rate)`` for each threshold.

    Used to tune the FallbackClassifier: the classified label and its
    confidence do not depend on the threshold, so one parse run is enough.
    """
    rows = []
    for threshold in thresholds:
        right = sum(1 for p in predictions if p.confidence >= threshold and p.classified == p.gold)
        fell = sum(1 for p in predictions if p.confidence < threshold)
        n = len(predictions) or 1
        rows.append((threshold, right / n, fell / n))
    return rows


def baseline_predictions(
    train: Sequence[LabelledExample],
    test: Sequence[LabelledExample],
    *,
    normalize: Optional[Any] = None,
) -> List[str]:
    """TF-IDF character n-grams + logistic regression, on the same data."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    prep = normalize or (lambda text: text)
    model = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True),
        LogisticRegression(C=10.0, max_iter=3000),
    )
    model.fit([prep(e.text) for e in train], [e.label for e in train])
    return list(model.predict([prep(e.text) for e in test]))
