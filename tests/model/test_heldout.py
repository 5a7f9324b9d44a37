"""Model quality on a held-out set written separately from the training data."""

import asyncio
import json

import pytest

from walletbot.nlu.normalize import normalize_text
from walletbot.settings import PROJECT_ROOT
from walletbot.trainer import evaluation as ev

from tests.conftest import BLIND_PATH, HELDOUT_PATH

pytestmark = pytest.mark.slow

TRAIN_PATH = PROJECT_ROOT / "data" / "nlu"
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"

# Things a user may type that no FAQ answer fits.
NONSENSE = [
    "asdkjhqwe", "哈哈哈哈哈哈", "。。。", "？？？", "1234567", "🍎🍌🍇",
    "的的的的的", "zxcvbnm", "嗯嗯啊啊哦哦", "qwerty uiop",
]


@pytest.fixture(scope="module")
def written():
    """The test set as written."""
    return ev.load_examples(HELDOUT_PATH)


@pytest.fixture(scope="module")
def heldout(written):
    """The test set without lines that also occur verbatim in the training data."""
    return ev.exclude_seen(written, ev.load_examples(TRAIN_PATH))


@pytest.fixture(scope="module")
def scores(agent, heldout):
    result = ev.score(asyncio.run(ev.predict_all(agent, heldout)))
    ARTIFACTS.mkdir(exist_ok=True)
    report = {
        "accuracy": result.accuracy,
        "accuracy_after_fallback": result.accuracy_after_fallback,
        "macro_f1": result.macro_f1,
        "fallback_rate": result.fallback_rate,
        "errors": [[p.gold, p.classified, round(p.confidence, 3), p.text] for p in result.errors()],
    }
    (ARTIFACTS / "heldout_report.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return result


@pytest.fixture(scope="module")
def blind():
    """The blind set without lines that also occur verbatim in the training data."""
    return ev.exclude_seen(ev.load_examples(BLIND_PATH), ev.load_examples(TRAIN_PATH))


@pytest.fixture(scope="module")
def blind_scores(agent, blind):
    return ev.score(asyncio.run(ev.predict_all(agent, blind)))


def test_scored_set_has_no_training_lines(heldout, written):
    train = {normalize_text(e.text).lower() for e in ev.load_examples(TRAIN_PATH)}
    assert not [e.text for e in heldout if normalize_text(e.text).lower() in train]
    # Only a few short, common lines may coincide with training data.
    assert len(written) - len(heldout) <= 0.1 * len(written)


def test_heldout_covers_every_contract_label(heldout):
    from tests.test_contract import CONVERSATION_INTENTS, FAQ_INTENTS

    counts = {}
    for example in heldout:
        counts[example.label] = counts.get(example.label, 0) + 1
    expected = set(CONVERSATION_INTENTS) | {f"faq/{name}" for name in FAQ_INTENTS}
    assert set(counts) == expected
    assert min(counts.values()) >= 8


def test_intent_accuracy_on_heldout(scores):
    assert scores.accuracy >= 0.92, [(p.gold, p.classified, p.text) for p in scores.errors()]
    # The fallback threshold must not throw away many right answers.
    assert scores.accuracy_after_fallback >= 0.90


def test_intent_accuracy_on_the_blind_set(blind, blind_scores):
    labels = {e.label for e in blind}
    assert len(labels) == 37 and len(blind) >= 300
    assert blind_scores.accuracy >= 0.92, [
        (p.gold, p.classified, p.text) for p in blind_scores.errors()]
    assert blind_scores.accuracy_after_fallback >= 0.90


def test_model_is_no_worse_than_the_tfidf_baseline(heldout, blind, scores, blind_scores):
    """On both final sets together, against TF-IDF + logistic regression on the same data.

    bench/nlu_quality.py reports the margin (README "Model quality"); it is small,
    so this checks the direction only: a regression below the baseline fails.
    """
    from walletbot.nlu.normalize import normalize_text

    test = list(heldout) + list(blind)
    baseline = ev.baseline_predictions(
        ev.load_examples(TRAIN_PATH), test, normalize=normalize_text)
    baseline_right = sum(e.label == label for e, label in zip(test, baseline))
    model_right = sum(p.classified == p.gold
                      for p in list(scores.predictions) + list(blind_scores.predictions))
    assert model_right >= baseline_right, (model_right, baseline_right, len(test))


def test_ensemble_is_no_worse_than_diet_alone(scores):
    # The lexical ensemble exists to fix DIET + ResponseSelector's mistakes.
    diet_alone = scores.component_accuracy("model")
    assert diet_alone is not None, "the pipeline should report the ensemble's parts"
    assert scores.accuracy >= diet_alone


def test_out_of_scope_never_gets_an_faq_answer(scores):
    wrong = [
        (p.final, p.text)
        for p in scores.predictions
        if p.gold == "out_of_scope" and p.final.startswith("faq/")
    ]
    assert wrong == []


@pytest.mark.parametrize("text", NONSENSE)
def test_nonsense_never_gets_an_faq_answer(parse, text):
    label, _, fell_back = ev.full_label_of(parse(text))
    assert fell_back or not label.startswith("faq/"), label


def test_entities_on_heldout_messages(agent):
    # Every annotated order number, transaction type and amount in both final
    # sets is extracted with its canonical value, and nothing else of those kinds.
    from rasa.shared.nlu.training_data.loading import load_data

    messages = load_data(str(HELDOUT_PATH)).intent_examples + \
        load_data(str(BLIND_PATH)).intent_examples
    annotated = [m for m in messages if m.get("entities")]
    assert len(annotated) >= 30, "the held-out sets should contain entities"
    wrong = []
    for message in annotated:
        gold = sorted((e["entity"], str(e["value"])) for e in message.get("entities"))
        parsed = asyncio.run(agent.parse_message(message.get("text")))
        found = sorted((e["entity"], str(e["value"])) for e in parsed["entities"]
                       if e["entity"] in ("order_id", "tx_type", "amount"))
        if found != gold:
            wrong.append((message.get("text"), gold, found))
    assert wrong == []
