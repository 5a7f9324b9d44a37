"""Rasa intent classifier: one linear model over full labels, FAQ keys included.

It replaces DIET + ResponseSelector (bench/RESULTS.md, "NLU v2" has the
measurements that chose it). From the normalised text it scores every full
label (``greet`` ... ``faq/withdraw_fee``) with
:class:`walletbot.nlu.linear.LinearIntentModel` and writes the intent, the
intent ranking and the ``faq`` response selection that ``utter_faq`` reads, so
FAQs stay retrieval intents as the contract asks.

It must come after the normaliser and before the FallbackClassifier.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

import numpy as np

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from walletbot.nlu.labels import labelled_texts, write_prediction
from walletbot.nlu.linear import LinearIntentModel, ViewSpec
from walletbot.nlu.unclear import UnclearText

logger = logging.getLogger(__name__)

_ARRAYS_FILE = "linear.npz"
_META_FILE = "linear.json"
_RESPONSES_FILE = "responses.json"
_UNCLEAR_FILE = "unclear.json"


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)
class WalletIntentClassifier(GraphComponent, IntentClassifier):
    """Logistic regression over TF-IDF n-grams of the characters and their pinyin."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Views and regularisation (chosen in bench/tune_linear.py)."""
        return {
            # [view, min n, max n, weight]; views are in walletbot/nlu/views.py.
            "views": [["chars", 1, 3, 1.0], ["pinyin", 2, 4, 1.0]],
            "C": 10.0,
            "random_seed": 1,
        }

    @staticmethod
    def required_packages() -> List[Text]:
        """scikit-learn to fit, pypinyin for the pinyin view."""
        return ["sklearn", "pypinyin"]

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[LinearIntentModel] = None,
        responses: Optional[Dict[str, List[Dict[str, Any]]]] = None,
        unclear: Optional[UnclearText] = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._model = model
        self._responses = responses or {}
        self._unclear = unclear

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "WalletIntentClassifier":
        """An untrained classifier."""
        return cls(config, model_storage, resource)

    def _views(self) -> List[ViewSpec]:
        return [ViewSpec(str(v[0]), int(v[1]), int(v[2]), float(v[3]))
                for v in self._config["views"]]

    def train(self, training_data: TrainingData) -> Resource:
        """Fits the model on the (already normalised) training examples."""
        pairs = labelled_texts(training_data)
        if len({label for _, label in pairs}) < 2:
            logger.warning("WalletIntentClassifier needs two labels; staying inactive")
            return self._resource
        texts, labels = zip(*pairs)
        self._model = LinearIntentModel.fit(
            texts, labels, views=self._views(), C=float(self._config["C"]),
            random_seed=int(self._config["random_seed"]),
        )
        self._responses = dict(training_data.responses)
        self._unclear = UnclearText.from_training(texts)
        self.persist()
        return self._resource

    def process(self, messages: List[Message]) -> List[Message]:
        """Writes intent, ranking and FAQ selection into each message."""
        if self._model is None:
            return messages
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            scored = self._model.score(text)
            scale = 1.0
            if self._unclear is not None and self._unclear.reason(text):
                # Says nothing: keep the ranking for debugging, but with no
                # confidence, so the FallbackClassifier asks to rephrase.
                scale = 0.0
            distribution = {
                label: float(p) * scale for label, p in zip(scored.labels, scored.probabilities)
            }
            write_prediction(message, distribution, self._responses)
        return messages

    def persist(self) -> None:
        """Arrays as .npz, vocabularies and responses as JSON (no pickles)."""
        import rasa.shared.utils.io

        if self._model is None:
            return
        arrays, meta = self._model.to_state()
        with self._model_storage.write_to(self._resource) as path:
            np.savez(path / _ARRAYS_FILE, **arrays)
            rasa.shared.utils.io.dump_obj_as_json_to_file(path / _META_FILE, meta)
            rasa.shared.utils.io.dump_obj_as_json_to_file(
                path / _RESPONSES_FILE, self._responses
            )
            rasa.shared.utils.io.dump_obj_as_json_to_file(
                path / _UNCLEAR_FILE,
                {"words": sorted(self._unclear.known_words) if self._unclear else [],
                 "messages": sorted(self._unclear.known_messages) if self._unclear else []},
            )

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "WalletIntentClassifier":
        """Restores a trained classifier."""
        import rasa.shared.utils.io

        try:
            with model_storage.read_from(resource) as path:
                with np.load(path / _ARRAYS_FILE) as npz:
                    arrays = {key: npz[key] for key in npz.files}
                meta = rasa.shared.utils.io.read_json_file(path / _META_FILE)
                responses = rasa.shared.utils.io.read_json_file(path / _RESPONSES_FILE)
                known = rasa.shared.utils.io.read_json_file(path / _UNCLEAR_FILE)
        except (ValueError, FileNotFoundError):
            logger.warning("WalletIntentClassifier: no trained state; staying inactive")
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource,
                   LinearIntentModel.from_state(arrays, meta), responses,
                   UnclearText(known["words"], known["messages"]))
