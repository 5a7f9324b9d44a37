"""Character n-gram TF-IDF features for Chinese text.

Rasa's ``CountVectorsFeaturizer`` gives raw counts: in short Chinese messages
a frequent character such as 的 or 吗 weighs as much as 提 or 冲. TF-IDF with
sublinear term frequency and L2 normalisation down-weights the characters
that occur everywhere, which is what lets a plain linear model do well on this
data; giving DIET the same view closes most of its gap to such a model.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

import numpy as np
import scipy.sparse

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.sparse_featurizer.sparse_featurizer import SparseFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
import rasa.shared.utils.io

logger = logging.getLogger(__name__)

_STATE_FILE = "tfidf.json"


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True
)
class CharTfidfFeaturizer(SparseFeaturizer, GraphComponent):
    """Sparse TF-IDF features over character n-grams of the message text."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """n-gram range and vocabulary pruning."""
        return {
            **SparseFeaturizer.get_default_config(),
            "min_ngram": 1,
            "max_ngram": 3,
            "min_df": 1,
            "max_features": None,
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Checks the n-gram range."""
        if not 1 <= config["min_ngram"] <= config["max_ngram"]:
            raise ValueError("CharTfidfFeaturizer needs 1 <= min_ngram <= max_ngram")

    @staticmethod
    def required_packages() -> List[Text]:
        """scikit-learn provides the vectoriser."""
        return ["sklearn"]

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        vectorizer: Optional[Any] = None,
    ) -> None:
        super().__init__(execution_context.node_name, config)
        self._model_storage = model_storage
        self._resource = resource
        self._vectorizer = vectorizer

    def _new_vectorizer(self, vocabulary: Optional[Dict[str, int]] = None) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            analyzer="char",
            ngram_range=(self._config["min_ngram"], self._config["max_ngram"]),
            sublinear_tf=True,
            min_df=self._config["min_df"],
            max_features=self._config["max_features"],
            lowercase=True,
            vocabulary=vocabulary,
            dtype=np.float32,
        )

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "CharTfidfFeaturizer":
        """Creates an untrained featurizer."""
        return cls(config, model_storage, resource, execution_context)

    def train(self, training_data: TrainingData) -> Resource:
        """Fits the vocabulary and IDF weights on the training texts."""
        texts = [m.get(TEXT) for m in training_data.training_examples if m.get(TEXT)]
        self._vectorizer = self._new_vectorizer()
        self._vectorizer.fit(texts)
        self.persist()
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Featurizes the training examples."""
        self.process(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Adds sentence and per-token sequence features for the text."""
        if self._vectorizer is None:
            return messages
        for message in messages:
            text = message.get(TEXT)
            tokens = message.get(TOKENS_NAMES[TEXT])
            if not text or not tokens:
                continue
            sentence = self._vectorizer.transform([text])
            sequence = self._vectorizer.transform([t.text for t in tokens])
            self.add_features_to_message(
                sequence=scipy.sparse.coo_matrix(sequence),
                sentence=scipy.sparse.coo_matrix(sentence),
                attribute=TEXT,
                message=message,
            )
        return messages

    def persist(self) -> None:
        """Stores vocabulary and IDF weights as JSON (no pickles in the model)."""
        if self._vectorizer is None:
            return
        state = {
            "vocabulary": {k: int(v) for k, v in self._vectorizer.vocabulary_.items()},
            "idf": [float(x) for x in self._vectorizer.idf_],
        }
        with self._model_storage.write_to(self._resource) as path:
            rasa.shared.utils.io.dump_obj_as_json_to_file(path / _STATE_FILE, state)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "CharTfidfFeaturizer":
        """Restores the fitted vectoriser."""
        featurizer = cls(config, model_storage, resource, execution_context)
        try:
            with model_storage.read_from(resource) as path:
                state = rasa.shared.utils.io.read_json_file(path / _STATE_FILE)
        except (ValueError, FileNotFoundError):
            logger.warning("CharTfidfFeaturizer: no trained state found; adding no features")
            return featurizer
        vectorizer = featurizer._new_vectorizer(vocabulary=state["vocabulary"])
        vectorizer.idf_ = np.asarray(state["idf"], dtype=np.float32)
        featurizer._vectorizer = vectorizer
        return featurizer
