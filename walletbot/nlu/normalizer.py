"""Rasa component that normalises user text before tokenisation."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from walletbot.nlu.normalize import normalize_text


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False
)
class ChineseTextNormalizer(GraphComponent):
    """Folds full-width characters and traditional Chinese into one form.

    Users type ``ＷＤ２０２６…`` from Chinese input methods and ``怎麼提現`` from
    Hong Kong or Taiwan keyboards; mapping both to one form lets the tokenizer,
    the featurizers and the entity rules see the same text as in training. It
    must come first in the pipeline. Offsets stay valid because the mapping is
    length-preserving.
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """No options: the normalisation is fixed."""
        return {}

    @staticmethod
    def supported_languages() -> Optional[List[Text]]:
        """Chinese only."""
        return ["zh"]

    @staticmethod
    def required_packages() -> List[Text]:
        """OpenCC provides the traditional-to-simplified tables."""
        return ["opencc"]

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "ChineseTextNormalizer":
        """Creates the component."""
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Normalises the training examples the same way as live messages."""
        self.process(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Normalises the text of each message in place."""
        for message in messages:
            text = message.get(TEXT)
            if text:
                message.set(TEXT, normalize_text(text))
        return messages
