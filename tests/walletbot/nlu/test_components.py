"""The Rasa components, driven the way Rasa's graph drives them."""

from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from walletbot.nlu.extractor import WalletEntityExtractor
from walletbot.nlu.normalizer import ChineseTextNormalizer


def test_normalizer_rewrites_training_and_live_text():
    normalizer = ChineseTextNormalizer.create({}, None, None, None)
    data = TrainingData([Message.build("怎麼提現", intent="faq")])
    normalizer.process_training_data(data)
    assert data.training_examples[0].get("text") == "怎么提现"
    (message,) = normalizer.process([Message(data={"text": "ＷＤ２０２６１１１８０００２"})])
    assert message.get("text") == "WD202611180002"


def test_extractor_adds_entities_with_its_name():
    extractor = WalletEntityExtractor.create(
        WalletEntityExtractor.get_default_config(), None, None, None
    )
    (message,) = extractor.process([Message(data={"text": "我提现1000元的单号wd202611180002"})])
    found = {(e["entity"], e["value"]) for e in message.get("entities")}
    assert found == {
        ("tx_type", "withdraw"),
        ("amount", "1000"),
        ("order_id", "WD202611180002"),
    }
    assert {e["extractor"] for e in message.get("entities")} == {"WalletEntityExtractor"}


def test_extractor_respects_configured_entities():
    extractor = WalletEntityExtractor.create({"entities": ["order_id"]}, None, None, None)
    (message,) = extractor.process([Message(data={"text": "提现1000元 WD202611180002"})])
    assert [e["entity"] for e in message.get("entities")] == ["order_id"]


def test_extractor_names_one_transaction_type_once():
    extractor = WalletEntityExtractor.create(
        WalletEntityExtractor.get_default_config(), None, None, None
    )
    (message,) = extractor.process([Message(data={"text": "刚充钱充了300块 然后又提现"})])
    found = [(e["entity"], e["value"]) for e in message.get("entities")]
    assert sorted(found) == [("amount", "300"), ("tx_type", "topup"), ("tx_type", "withdraw")]
