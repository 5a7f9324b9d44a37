"""Combines DIET + ResponseSelector with a linear character n-gram model.

The bot's pipeline before NLU v2; bench/candidates/ keeps it to be measured
against the current one.

DIET picks one of the conversation intents or ``faq``, and the ResponseSelector
then picks the FAQ topic; an error in either stage is final. A multinomial
logistic regression over TF-IDF character n-grams scores all full labels
(``greet`` ... ``faq/withdraw_fee``) in one step and makes different mistakes:
it keys on surface characters (typos, rare words) where DIET generalises over
phrasing. This component averages the two probability distributions over full
labels and rewrites the intent, the intent ranking and the ``faq`` response
selection accordingly. It must come after the ResponseSelector and before the
FallbackClassifier, so that the fallback threshold applies to the combined
confidence.

Both inputs stay visible in the parse result under ``ensemble`` for
evaluation and debugging.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text, Tuple

import numpy as np

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from walletbot.nlu.labels import RETRIEVAL_INTENT, labelled_texts, write_prediction

logger = logging.getLogger(__name__)

_ARRAYS_FILE = "ensemble.npz"


def model_distribution(parse: Dict[str, Any]) -> Dict[str, float]:
    """DIET x ResponseSelector probabilities over full labels."""
    intents = {r["name"]: float(r["confidence"]) for r in parse.get("intent_ranking") or []}
    selector = (parse.get("response_selector") or {}).get(RETRIEVAL_INTENT) or {}
    faq_ranking = selector.get("ranking") or []
    distribution = {name: p for name, p in intents.items() if name != RETRIEVAL_INTENT}
    p_faq = intents.get(RETRIEVAL_INTENT, 0.0)
    for entry in faq_ranking:
        key = entry.get(INTENT_RESPONSE_KEY)
        if key:
            distribution[key] = p_faq * float(entry["confidence"])
    return distribution


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class LexicalEnsembleClassifier(GraphComponent, IntentClassifier):
    """Averages DIET + ResponseSelector with a char n-gram logistic regression."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Weight of the linear model and its features."""
        return {
            # Share of the linear model in the average; 0 turns it off.
            "weight": 0.5,
            "min_ngram": 1,
            "max_ngram": 3,
            # Inverse regularisation strength of the logistic regression.
            "C": 10.0,
            "random_seed": 1,
        }

    @staticmethod
    def required_packages() -> List[Text]:
        """scikit-learn."""
        return ["sklearn"]

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vectorizer: Optional[Any] = None,
        classifier: Optional[Any] = None,
        responses: Optional[Dict[str, List[Dict[str, Any]]]] = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._vectorizer = vectorizer
        self._classifier = classifier
        self._responses = responses or {}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "LexicalEnsembleClassifier":
        """Creates an untrained component."""
        return cls(config, model_storage, resource)

    def _new_vectorizer(self, vocabulary: Optional[Dict[str, int]] = None) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            analyzer="char",
            ngram_range=(self._config["min_ngram"], self._config["max_ngram"]),
            sublinear_tf=True,
            lowercase=True,
            vocabulary=vocabulary,
        )

    def train(self, training_data: TrainingData) -> Resource:
        """Fits the linear model on the (already normalised) training texts."""
        from sklearn.linear_model import LogisticRegression

        pairs = labelled_texts(training_data)
        if len({label for _, label in pairs}) < 2:
            logger.warning("LexicalEnsembleClassifier needs two labels; staying inactive")
            return self._resource
        texts, labels = zip(*pairs)
        self._vectorizer = self._new_vectorizer()
        features = self._vectorizer.fit_transform(texts)
        self._classifier = LogisticRegression(
            C=self._config["C"], max_iter=3000, random_state=self._config["random_seed"]
        )
        self._classifier.fit(features, labels)
        self._responses = dict(training_data.responses)
        self.persist()
        return self._resource

    def _linear_distribution(self, text: str) -> Dict[str, float]:
        probabilities = self._classifier.predict_proba(self._vectorizer.transform([text]))[0]
        return {str(label): float(p) for label, p in zip(self._classifier.classes_, probabilities)}

    def process(self, messages: List[Message]) -> List[Message]:
        """Rewrites intent, ranking and FAQ selection with the combined scores."""
        if self._classifier is None or not self._config["weight"]:
            return messages
        weight = float(self._config["weight"])
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            parse = message.as_dict()
            model = model_distribution(parse)
            linear = self._linear_distribution(text)
            combined = {
                label: (1 - weight) * model.get(label, 0.0) + weight * linear.get(label, 0.0)
                for label in set(model) | set(linear)
            }
            self._apply(message, combined)
            message.set(
                "ensemble",
                {"model": _top(model), "linear": _top(linear)},
                add_to_output=True,
            )
        return messages

    def _apply(self, message: Message, combined: Dict[str, float]) -> None:
        write_prediction(message, combined, self._responses)

    def persist(self) -> None:
        """Saves arrays as .npz and the vocabulary/responses as JSON (no pickles)."""
        import rasa.shared.utils.io

        if self._classifier is None:
            return
        with self._model_storage.write_to(self._resource) as path:
            np.savez_compressed(
                path / _ARRAYS_FILE,
                coef=self._classifier.coef_,
                intercept=self._classifier.intercept_,
                classes=np.asarray(self._classifier.classes_, dtype=str),
                idf=self._vectorizer.idf_,
            )
            rasa.shared.utils.io.dump_obj_as_json_to_file(
                path / "vocabulary.json",
                {k: int(v) for k, v in self._vectorizer.vocabulary_.items()},
            )
            rasa.shared.utils.io.dump_obj_as_json_to_file(
                path / "responses.json", self._responses
            )

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "LexicalEnsembleClassifier":
        """Restores the linear model."""
        import rasa.shared.utils.io
        from sklearn.linear_model import LogisticRegression

        component = cls(config, model_storage, resource)
        try:
            with model_storage.read_from(resource) as path:
                arrays = np.load(path / _ARRAYS_FILE)
                vocabulary = rasa.shared.utils.io.read_json_file(path / "vocabulary.json")
                responses = rasa.shared.utils.io.read_json_file(path / "responses.json")
                coef, intercept = arrays["coef"], arrays["intercept"]
                classes, idf = arrays["classes"], arrays["idf"]
        except (ValueError, FileNotFoundError):
            logger.warning("LexicalEnsembleClassifier: no trained state; staying inactive")
            return component
        classifier = LogisticRegression()
        classifier.coef_, classifier.intercept_, classifier.classes_ = coef, intercept, classes
        vectorizer = component._new_vectorizer(vocabulary=vocabulary)
        vectorizer.idf_ = idf
        component._vectorizer, component._classifier = vectorizer, classifier
        component._responses = responses
        return component


def _top(distribution: Dict[str, float]) -> Tuple[str, float]:
    if not distribution:
        return ("", 0.0)
    label = max(distribution, key=distribution.get)
    return (label, round(distribution[label], 4))
