"""Full labels and how a distribution over them is written into a Rasa message.

The contract names FAQ answers as the retrieval intent ``faq`` plus a response
key (``faq/withdraw_fee``). The classifiers here score full labels in one step;
this module writes such a distribution back in Rasa's shape: ``intent`` and
``intent_ranking`` over intents (``faq`` among them), and a
``response_selector`` entry for ``faq`` that Rasa's ``utter_faq`` action reads.
"""

from __future__ import annotations

import zlib
from typing import Any, Dict, List, Mapping, Optional, Tuple

from rasa.shared.nlu.constants import INTENT, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

RETRIEVAL_INTENT = "faq"
RANKING_LENGTH = 10


def full_label(message: Message) -> Optional[str]:
    """``faq/<key>`` for FAQ examples, the intent name otherwise."""
    return message.get(INTENT_RESPONSE_KEY) or message.get(INTENT)


def labelled_texts(training_data: TrainingData) -> List[Tuple[str, str]]:
    """``(text, full label)`` of every intent example that has both."""
    return [
        (m.get(TEXT), full_label(m))
        for m in training_data.intent_examples
        if m.get(TEXT) and full_label(m)
    ]


def write_prediction(
    message: Message,
    distribution: Mapping[str, float],
    responses: Mapping[str, List[Dict[str, Any]]],
) -> None:
    """Sets intent, intent ranking and the ``faq`` selection from full-label scores."""
    # Decide on full labels: summing the FAQ labels into one "faq" score would
    # let many small FAQ probabilities outvote one confident out_of_scope. An
    # intent's score is its best full label's.
    intents: Dict[str, float] = {}
    faq: Dict[str, float] = {}
    for label, p in distribution.items():
        name = label
        if label.startswith(RETRIEVAL_INTENT + "/"):
            faq[label] = p
            name = RETRIEVAL_INTENT
        intents[name] = max(intents.get(name, 0.0), p)
    if not intents:
        return
    ranking = sorted(intents.items(), key=lambda kv: (-kv[1], kv[0]))[:RANKING_LENGTH]
    top_name, top_p = ranking[0]
    message.set(INTENT, {"name": top_name, "confidence": top_p}, add_to_output=True)
    message.set(
        "intent_ranking",
        [{"name": n, "confidence": p} for n, p in ranking],
        add_to_output=True,
    )
    if not faq:
        return
    total = sum(faq.values()) or 1.0
    faq_ranking = sorted(((k, p / total) for k, p in faq.items()), key=lambda kv: (-kv[1], kv[0]))
    best_key, best_p = faq_ranking[0]
    template = "utter_" + best_key
    selectors = dict(message.get("response_selector") or {})
    selectors[RETRIEVAL_INTENT] = {
        "response": {
            "responses": list(responses.get(template, [])),
            "confidence": best_p,
            INTENT_RESPONSE_KEY: best_key,
            "utter_action": template,
        },
        "ranking": [
            {"id": zlib.crc32(k.encode("utf-8")), "confidence": p, INTENT_RESPONSE_KEY: k}
            for k, p in faq_ranking[:RANKING_LENGTH]
        ],
    }
    message.set("response_selector", selectors, add_to_output=True)
