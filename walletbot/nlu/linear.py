"""A multinomial logistic regression over TF-IDF character n-grams of several views.

This is the whole intent model: one step from a message to a probability for
every full label (``greet``, ``faq/withdraw_fee``, ...). Training takes seconds
and a prediction well under a millisecond, because inference is a dictionary
lookup per n-gram and a small dense product, with no scikit-learn call.

The state is plain arrays and vocabularies (``to_state`` / ``from_state``), so
a model is saved without pickles.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple

import numpy as np

from walletbot.nlu.views import VIEWS


@dataclass(frozen=True)
class ViewSpec:
    """Which view, which n-gram sizes, and how much the block weighs."""

    name: str
    min_n: int
    max_n: int
    weight: float = 1.0


def ngrams(text: str, min_n: int, max_n: int) -> Iterable[str]:
    """Character n-grams of ``text``, sizes ``min_n`` to ``max_n``."""
    length = len(text)
    for n in range(min_n, max_n + 1):
        for start in range(0, length - n + 1):
            yield text[start:start + n]


class ViewVectorizer:
    """TF-IDF of one view's n-grams: sublinear tf, smoothed idf, l2 norm.

    The same formulas as scikit-learn's ``TfidfVectorizer(sublinear_tf=True)``,
    written out so that one message is vectorised without building a matrix.
    """

    def __init__(self, spec: ViewSpec, vocabulary: Dict[str, int], idf: np.ndarray) -> None:
        self.spec = spec
        self.vocabulary = vocabulary
        self.idf = idf
        self._view = VIEWS[spec.name]

    @classmethod
    def fit(cls, spec: ViewSpec, texts: Sequence[str]) -> "ViewVectorizer":
        """Builds the vocabulary and idf from training texts."""
        view = VIEWS[spec.name]
        document_frequency: Counter = Counter()
        for text in texts:
            document_frequency.update(set(ngrams(view(text), spec.min_n, spec.max_n)))
        vocabulary = {gram: i for i, gram in enumerate(sorted(document_frequency))}
        n_docs = len(texts)
        idf = np.empty(len(vocabulary), dtype=np.float64)
        for gram, i in vocabulary.items():
            idf[i] = math.log((1 + n_docs) / (1 + document_frequency[gram])) + 1.0
        return cls(spec, vocabulary, idf)

    def features(self, text: str) -> Tuple[np.ndarray, np.ndarray, int]:
        """``(indices, values, n_unknown)``: the message's weighted TF-IDF entries."""
        counts = Counter(ngrams(self._view(text), self.spec.min_n, self.spec.max_n))
        indices, tfs, unknown = [], [], 0
        for gram, count in counts.items():
            index = self.vocabulary.get(gram)
            if index is None:
                unknown += 1
                continue
            indices.append(index)
            tfs.append(1.0 + math.log(count))
        idx = np.asarray(indices, dtype=np.int64)
        values = np.asarray(tfs, dtype=np.float64) * self.idf[idx] if indices else np.zeros(0)
        norm = float(np.sqrt(values @ values)) if indices else 0.0
        if norm:
            values = values * (self.spec.weight / norm)
        return idx, values, unknown

    def __len__(self) -> int:
        return len(self.vocabulary)


@dataclass(frozen=True)
class Scored:
    """A probability for every label, and how much of the message was known.

    ``top_score`` is the best label's own one-vs-rest probability before the
    scores are normalised to sum to one: low when no label claims the message.
    """

    labels: Tuple[str, ...]
    probabilities: np.ndarray
    known_share: float
    top_score: float

    def as_dict(self) -> Dict[str, float]:
        """``{label: probability}``."""
        return {label: float(p) for label, p in zip(self.labels, self.probabilities)}


class LinearIntentModel:
    """One-vs-rest logistic regression over the concatenated TF-IDF blocks of all views.

    One-vs-rest (liblinear) trains in a few seconds where the multinomial
    lbfgs fit took 40, with the same development-set accuracy
    (bench/tune_linear.py), and its per-label probabilities say when no label
    fits at all.
    """

    def __init__(
        self,
        vectorizers: List[ViewVectorizer],
        labels: Sequence[str],
        coef: np.ndarray,
        intercept: np.ndarray,
    ) -> None:
        self.vectorizers = vectorizers
        self.labels = tuple(labels)
        offsets, start = [], 0
        for vectorizer in vectorizers:
            offsets.append(start)
            start += len(vectorizer)
        self._offsets = offsets
        # Row per feature: a message's score is the sum of a few rows.
        self._weights = np.ascontiguousarray(coef.T)
        self._intercept = intercept

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        views: Sequence[ViewSpec],
        C: float = 10.0,
        class_weight: object = None,
        random_seed: int = 1,
    ) -> "LinearIntentModel":
        """Trains on ``texts`` (already normalised) and their full labels."""
        from sklearn.linear_model import LogisticRegression

        vectorizers = [ViewVectorizer.fit(spec, texts) for spec in views]
        model = cls(vectorizers, [], np.zeros((0, sum(map(len, vectorizers)))), np.zeros(0))
        matrix = model.matrix(texts)
        classifier = LogisticRegression(
            C=C, solver="liblinear", random_state=random_seed, class_weight=class_weight
        )
        classifier.fit(matrix, list(labels))
        coef, intercept = classifier.coef_, classifier.intercept_
        if coef.shape[0] == 1:
            # Two labels: one weight vector, for the second label.
            coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
        return cls(
            vectorizers, [str(label) for label in classifier.classes_], coef, intercept
        )

    def _row(self, text: str) -> Tuple[np.ndarray, np.ndarray, int, int]:
        parts_idx, parts_val, unknown, total = [], [], 0, 0
        for vectorizer, offset in zip(self.vectorizers, self._offsets):
            idx, values, missing = vectorizer.features(text)
            parts_idx.append(idx + offset)
            parts_val.append(values)
            unknown += missing
            total += missing + len(idx)
        return np.concatenate(parts_idx), np.concatenate(parts_val), unknown, total

    def matrix(self, texts: Sequence[str]):
        """The sparse feature matrix of ``texts`` (for training and evaluation)."""
        from scipy.sparse import csr_matrix

        indptr, indices, data = [0], [], []
        for text in texts:
            idx, values, _, _ = self._row(text)
            indices.append(idx)
            data.append(values)
            indptr.append(indptr[-1] + len(idx))
        width = sum(len(v) for v in self.vectorizers)
        return csr_matrix(
            (np.concatenate(data) if data else np.zeros(0),
             np.concatenate(indices) if indices else np.zeros(0, dtype=np.int64),
             np.asarray(indptr)),
            shape=(len(texts), width),
        )

    def score(self, text: str) -> Scored:
        """Probabilities of every label for one message."""
        idx, values, unknown, total = self._row(text)
        logits = self._intercept + values @ self._weights[idx]
        # As scikit-learn's one-vs-rest predict_proba: sigmoids, normalised.
        sigmoids = 1.0 / (1.0 + np.exp(-logits))
        known = 1.0 - unknown / total if total else 0.0
        return Scored(self.labels, sigmoids / sigmoids.sum(), known, float(sigmoids.max()))

    def to_state(self) -> Tuple[Dict[str, np.ndarray], Dict[str, object]]:
        """``(arrays, json_able)``: everything needed to rebuild the model."""
        arrays: Dict[str, np.ndarray] = {
            "weights": self._weights,
            "intercept": self._intercept,
        }
        views = []
        for i, vectorizer in enumerate(self.vectorizers):
            arrays[f"idf_{i}"] = vectorizer.idf
            spec = vectorizer.spec
            views.append({
                "name": spec.name, "min_n": spec.min_n, "max_n": spec.max_n,
                "weight": spec.weight, "vocabulary": vectorizer.vocabulary,
            })
        return arrays, {"labels": list(self.labels), "views": views}

    @classmethod
    def from_state(
        cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, object]
    ) -> "LinearIntentModel":
        """Inverse of :meth:`to_state`."""
        vectorizers = []
        for i, view in enumerate(meta["views"]):  # type: ignore[union-attr]
            spec = ViewSpec(view["name"], int(view["min_n"]), int(view["max_n"]),
                            float(view["weight"]))
            vocabulary = {str(k): int(v) for k, v in view["vocabulary"].items()}
            vectorizers.append(ViewVectorizer(spec, vocabulary, np.asarray(arrays[f"idf_{i}"])))
        weights = np.asarray(arrays["weights"])
        return cls(vectorizers, list(meta["labels"]), weights.T,  # type: ignore[arg-type]
                   np.asarray(arrays["intercept"]))
