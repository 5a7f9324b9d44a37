"""The linear intent model: the same answers as scikit-learn, saved without pickles."""

import json

import numpy as np
import pytest

from walletbot.nlu.linear import LinearIntentModel, ViewSpec

TEXTS = ["你好", "您好在吗", "谢谢你", "多谢帮忙", "提现手续费多少", "提现收费吗",
         "提现多久到账", "提现几天到", "充值方式有哪些", "怎么充值"]
LABELS = ["greet", "greet", "thanks", "thanks", "faq/withdraw_fee", "faq/withdraw_fee",
          "faq/withdraw_time", "faq/withdraw_time", "faq/topup_methods", "faq/topup_methods"]
VIEWS = [ViewSpec("chars", 1, 3, 1.0), ViewSpec("pinyin", 2, 4, 0.8)]


@pytest.fixture(scope="module")
def model():
    return LinearIntentModel.fit(TEXTS, LABELS, views=VIEWS, C=10.0)


def test_scores_match_scikit_learn(model):
    from sklearn.linear_model import LogisticRegression

    matrix = model.matrix(TEXTS)
    reference = LogisticRegression(C=10.0, solver="liblinear", random_state=1).fit(matrix, LABELS)
    queries = ["提现要收费吗", "chongzhi fangshi", "您好", "完全无关的话"]
    expected = reference.predict_proba(model.matrix(queries))
    for query, row in zip(queries, expected):
        scored = model.score(query)
        assert scored.labels == tuple(reference.classes_)
        assert scored.probabilities == pytest.approx(row, abs=1e-9)


def test_vectors_match_scikit_learn_tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    model = LinearIntentModel.fit(TEXTS, LABELS, views=[ViewSpec("chars", 1, 3, 1.0)])
    reference = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    reference.fit(TEXTS)
    ours = model.matrix(["提现提现手续费", "谢谢"]).toarray()
    theirs = reference.transform(["提现提现手续费", "谢谢"]).toarray()
    order = [model.vectorizers[0].vocabulary[g] for g in reference.get_feature_names_out()]
    assert ours[:, order] == pytest.approx(theirs)


def test_pinyin_typed_and_typos_are_understood(model):
    for text, label in [("tixian shouxufei", "faq/withdraw_fee"), ("充植方式", "faq/topup_methods"),
                        ("ti xian duo jiu dao", "faq/withdraw_time")]:
        scored = model.score(text)
        assert scored.labels[int(scored.probabilities.argmax())] == label, text


def test_known_share_is_low_for_unseen_text(model):
    assert model.score("提现手续费").known_share == 1.0
    assert model.score("量子力学基础").known_share < 0.2


def test_state_round_trip_is_json_and_arrays(model, tmp_path):
    arrays, meta = model.to_state()
    np.savez(tmp_path / "m.npz", **arrays)
    (tmp_path / "m.json").write_text(json.dumps(meta, ensure_ascii=False))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        loaded = LinearIntentModel.from_state(
            {k: npz[k] for k in npz.files}, json.loads((tmp_path / "m.json").read_text()))
    for text in ["提现多久", "xiexie", "hello"]:
        assert loaded.score(text).probabilities == pytest.approx(model.score(text).probabilities)


def test_two_labels_give_two_probabilities():
    model = LinearIntentModel.fit(TEXTS[:4], LABELS[:4], views=VIEWS)
    scored = model.score("谢谢")
    assert scored.labels == ("greet", "thanks")
    assert scored.probabilities.sum() == pytest.approx(1.0)
    assert scored.probabilities[1] > 0.5
