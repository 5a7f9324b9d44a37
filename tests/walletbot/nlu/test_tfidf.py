import numpy as np
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from walletbot.nlu.tfidf import CharTfidfFeaturizer


def _tokenized(texts):
    """Messages tokenised on spaces (as jieba would split these words)."""
    messages = []
    for text in texts:
        tokens, offset = [], 0
        for word in text.split(" "):
            tokens.append(Token(word, offset))
            offset += len(word) + 1
        messages.append(Message(data={"text": text, "text_tokens": tokens}))
    return messages


def _sentence_vector(message):
    _, sentence = message.get_sparse_features("text")
    return sentence.features.toarray()[0]


def test_trains_persists_and_loads_the_same_features(tmp_path):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("tfidf")
    context = ExecutionContext(graph_schema=None, node_name="tfidf")
    config = CharTfidfFeaturizer.get_default_config()
    featurizer = CharTfidfFeaturizer.create(config, storage, resource, context)
    featurizer.train(TrainingData(_tokenized(["提现 多久 到账", "充值 方式", "提现 手续费"])))

    (fresh,) = featurizer.process(_tokenized(["提现 方式"]))
    loaded = CharTfidfFeaturizer.load(config, storage, resource, context)
    (again,) = loaded.process(_tokenized(["提现 方式"]))

    first, second = _sentence_vector(fresh), _sentence_vector(again)
    assert np.allclose(first, second)
    assert np.isclose(np.linalg.norm(first), 1.0)
    sequence, _ = again.get_sparse_features("text")
    assert sequence.features.shape[0] == 2  # one row per token


def test_common_characters_weigh_less_than_rare_ones(tmp_path):
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(graph_schema=None, node_name="tfidf")
    config = {**CharTfidfFeaturizer.get_default_config(), "max_ngram": 1}
    featurizer = CharTfidfFeaturizer.create(config, storage, Resource("t"), context)
    featurizer.train(TrainingData(_tokenized(["提现 吗", "充值 吗", "转账 吗", "退款 吗"])))
    (message,) = featurizer.process(_tokenized(["提现 吗"]))
    vector = _sentence_vector(message)
    vocab = featurizer._vectorizer.vocabulary_
    assert vector[vocab["提"]] > vector[vocab["吗"]]
