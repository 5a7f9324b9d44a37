"""The intent classifier as Rasa's graph drives it: train, persist, load, process."""

import pytest
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from walletbot.nlu.classifier import WalletIntentClassifier
from walletbot.nlu.labels import write_prediction


def _faq(text, key):
    return Message(data={"text": text, "intent": "faq", "intent_response_key": f"faq/{key}"})


TRAINING = [
    Message.build("你好", intent="greet"),
    Message.build("您好在吗", intent="greet"),
    Message.build("谢谢你", intent="thanks"),
    Message.build("多谢帮忙", intent="thanks"),
    Message.build("嗯嗯", intent="affirm"),
    Message.build("好的没问题", intent="affirm"),
    _faq("提现手续费多少", "withdraw_fee"),
    _faq("提现收费吗", "withdraw_fee"),
    _faq("提现多久到账", "withdraw_time"),
    _faq("提现几天到", "withdraw_time"),
]
RESPONSES = {"utter_faq/withdraw_fee": [{"text": "手续费以页面为准"}],
             "utter_faq/withdraw_time": [{"text": "1-3个工作日"}]}


@pytest.fixture
def trained(tmp_path):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("classifier")
    config = WalletIntentClassifier.get_default_config()
    component = WalletIntentClassifier.create(config, storage, resource, None)
    component.train(TrainingData(TRAINING, responses=RESPONSES))
    return config, storage, resource, component


def _process(component, text):
    (message,) = component.process([Message(data={"text": text})])
    return message


def test_faq_answers_are_retrieval_intents_with_their_response(trained):
    *_, component = trained
    message = _process(component, "tixian shouxufei")
    assert message.get("intent")["name"] == "faq"
    selected = message.get("response_selector")["faq"]["response"]
    assert selected["intent_response_key"] == "faq/withdraw_fee"
    assert selected["utter_action"] == "utter_faq/withdraw_fee"
    assert selected["responses"] == [{"text": "手续费以页面为准"}]
    ranking = message.get("response_selector")["faq"]["ranking"]
    assert [r["intent_response_key"] for r in ranking][:1] == ["faq/withdraw_fee"]
    assert sum(r["confidence"] for r in ranking) == pytest.approx(1.0)


def test_a_plain_intent_is_ranked_first(trained):
    *_, component = trained
    message = _process(component, "多谢多谢")
    assert message.get("intent")["name"] == "thanks"
    confidences = [r["confidence"] for r in message.get("intent_ranking")]
    assert confidences == sorted(confidences, reverse=True)
    assert message.get("intent")["confidence"] == confidences[0]


def test_text_that_says_nothing_gets_no_confidence(trained):
    *_, component = trained
    for text in ("sdfghjkl", "？？？", "哈哈哈哈"):
        assert _process(component, text).get("intent")["confidence"] == 0.0, text
    # An interjection the training data uses as an answer is kept.
    assert _process(component, "嗯嗯嗯").get("intent")["confidence"] > 0.2


def test_persisted_classifier_gives_the_same_answers(trained):
    config, storage, resource, component = trained
    loaded = WalletIntentClassifier.load(config, storage, resource, None)
    for text in ("提现要几天", "xiexie", "qwerty", "您好"):
        a, b = _process(component, text), _process(loaded, text)
        assert a.get("intent")["name"] == b.get("intent")["name"]
        assert a.get("intent")["confidence"] == pytest.approx(b.get("intent")["confidence"])


def test_untrained_classifier_leaves_messages_alone(tmp_path):
    storage = LocalModelStorage(tmp_path)
    config = WalletIntentClassifier.get_default_config()
    empty = WalletIntentClassifier.load(config, storage, Resource("nothing"), None)
    assert _process(empty, "你好").get("intent") is None


def test_many_small_faq_scores_do_not_outvote_one_clear_intent():
    message = Message(data={"text": "x"})
    distribution = {"out_of_scope": 0.30}
    distribution.update({f"faq/topic{i}": 0.7 / 24 for i in range(24)})
    write_prediction(message, distribution, {})
    assert message.get("intent") == {"name": "out_of_scope", "confidence": 0.30}
    assert message.get("intent_ranking")[1]["name"] == "faq"
