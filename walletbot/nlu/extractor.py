"""Rasa component wrapping :class:`walletbot.nlu.entities.WalletEntityRules`."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

from walletbot.nlu.entities import WalletEntityRules


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False
)
class WalletEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Extracts ``order_id``, ``tx_type`` and ``amount`` with spaCy rules.

    Values are canonical: ``WD202611180002``, one of
    ``topup/withdraw/transfer/refund``, and a plain number such as ``500``.
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Which of the three entities to extract."""
        return {"entities": ["order_id", "tx_type", "amount"]}

    @staticmethod
    def supported_languages() -> Optional[List[Text]]:
        """Chinese only."""
        return ["zh"]

    @staticmethod
    def required_packages() -> List[Text]:
        """spaCy with jieba, and cn2an for Chinese numerals."""
        return ["spacy", "jieba", "cn2an"]

    def __init__(self, config: Dict[Text, Any], rules: WalletEntityRules) -> None:
        self._wanted = set(config["entities"])
        self._rules = rules

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "WalletEntityExtractor":
        """Builds the spaCy pipeline once per loaded model."""
        return cls(config, WalletEntityRules())

    def process(self, messages: List[Message]) -> List[Message]:
        """Adds the matched entities to each message."""
        for message in messages:
            text = message.get(TEXT)
            if not text:
                continue
            found, seen = [], set()
            for match in self._rules.extract(text):
                entity = match.as_rasa()
                key = (entity["entity"], entity["value"])
                # "充钱充了300块" names one top-up twice: one entity, as the slot takes one value.
                if match.entity not in self._wanted or (match.entity == "tx_type" and key in seen):
                    continue
                seen.add(key)
                found.append(entity)
            if found:
                found = self.add_extractor_name(found)
                message.set(ENTITIES, message.get(ENTITIES, []) + found, add_to_output=True)
        return messages
