import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from walletbot.nlu.ensemble import LexicalEnsembleClassifier, model_distribution


def _faq(text, key):
    return Message(
        data={"text": text, "intent": "faq", "intent_response_key": f"faq/{key}"}
    )


TRAINING = [
    Message.build("你好", intent="greet"),
    Message.build("您好在吗", intent="greet"),
    Message.build("谢谢你", intent="thanks"),
    Message.build("多谢帮忙", intent="thanks"),
    _faq("提现手续费多少", "withdraw_fee"),
    _faq("提现收费吗", "withdraw_fee"),
    _faq("提现多久到账", "withdraw_time"),
    _faq("提现几天到", "withdraw_time"),
]


def _parse_like(diet, faq_ranking):
    """A message as DIET and the ResponseSelector leave it."""
    return Message(
        data={
            "text": "提现手续费",
            "intent": {"name": max(diet, key=diet.get), "confidence": max(diet.values())},
            "intent_ranking": [{"name": n, "confidence": p} for n, p in diet.items()],
            "response_selector": {
                "faq": {
                    "response": {"intent_response_key": faq_ranking[0][0]},
                    "ranking": [
                        {"id": 1, "confidence": p, "intent_response_key": k}
                        for k, p in faq_ranking
                    ],
                }
            },
        }
    )


def test_model_distribution_multiplies_intent_and_selector():
    message = _parse_like(
        {"faq": 0.8, "greet": 0.2},
        [("faq/withdraw_fee", 0.75), ("faq/withdraw_time", 0.25)],
    )
    distribution = model_distribution(message.as_dict())
    assert distribution == pytest.approx(
        {"greet": 0.2, "faq/withdraw_fee": 0.6, "faq/withdraw_time": 0.2}
    )


@pytest.fixture
def trained(tmp_path):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("ensemble")
    config = LexicalEnsembleClassifier.get_default_config()
    component = LexicalEnsembleClassifier.create(config, storage, resource, None)
    data = TrainingData(
        TRAINING, responses={"utter_faq/withdraw_fee": [{"text": "手续费以页面为准"}]}
    )
    component.train(data)
    return config, storage, resource, component


def test_linear_model_can_overturn_a_wrong_faq_selection(trained):
    config, storage, resource, component = trained
    # DIET is sure it is an FAQ but the selector is unsure and slightly wrong.
    message = _parse_like(
        {"faq": 0.9, "greet": 0.1},
        [("faq/withdraw_time", 0.52), ("faq/withdraw_fee", 0.48)],
    )
    (message,) = component.process([message])
    selected = message.get("response_selector")["faq"]["response"]
    assert message.get("intent")["name"] == "faq"
    assert selected["intent_response_key"] == "faq/withdraw_fee"
    assert selected["utter_action"] == "utter_faq/withdraw_fee"
    assert selected["responses"] == [{"text": "手续费以页面为准"}]
    assert message.get("ensemble")["model"][0] == "faq/withdraw_time"
    confidences = [r["confidence"] for r in message.get("intent_ranking")]
    assert confidences == sorted(confidences, reverse=True)
    assert message.get("intent")["confidence"] == confidences[0] < 1.0


def test_many_small_faq_scores_do_not_outvote_one_clear_intent(trained):
    _, storage, resource, component = trained
    combined = {"out_of_scope": 0.30}
    combined.update({f"faq/topic{i}": 0.7 / 24 for i in range(24)})
    message = _parse_like({"out_of_scope": 1.0}, [("faq/topic0", 1.0)])
    component._apply(message, combined)
    assert message.get("intent") == {"name": "out_of_scope", "confidence": 0.30}
    assert message.get("intent_ranking")[1]["name"] == "faq"


def test_persisted_model_gives_the_same_answer(trained):
    config, storage, resource, component = trained
    loaded = LexicalEnsembleClassifier.load(config, storage, resource, None)
    make = lambda: _parse_like({"faq": 0.5, "thanks": 0.5}, [("faq/withdraw_time", 1.0)])
    (a,) = component.process([make()])
    (b,) = loaded.process([make()])
    assert a.get("intent")["name"] == b.get("intent")["name"]
    assert a.get("intent")["confidence"] == pytest.approx(b.get("intent")["confidence"])
    assert (
        a.get("response_selector")["faq"]["response"]["intent_response_key"]
        == b.get("response_selector")["faq"]["response"]["intent_response_key"]
    )


def test_weight_zero_leaves_diet_untouched(trained):
    _, storage, resource, component = trained
    off = LexicalEnsembleClassifier({**component._config, "weight": 0}, storage, resource,
                                    component._vectorizer, component._classifier)
    message = _parse_like({"greet": 0.7, "faq": 0.3}, [("faq/withdraw_fee", 1.0)])
    (message,) = off.process([message])
    assert message.get("intent")["name"] == "greet"
    assert message.get("ensemble") is None
