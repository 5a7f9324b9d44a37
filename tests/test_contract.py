"""The intent/entity contract (../shared/spec/intents.md) holds in domain and data."""

import subprocess

import pytest
import yaml
from rasa.shared.nlu.training_data.loading import load_data

from walletbot.faq.kb import load_knowledge_base
from walletbot.settings import PROJECT_ROOT

from tests.conftest import RASA

CONVERSATION_INTENTS = [
    "greet", "goodbye", "thanks", "affirm", "deny", "bot_challenge", "request_human",
    "check_transaction", "account_compromised", "complain", "suggest", "out_of_scope", "inform",
]
FAQ_INTENTS = [
    "register", "download_app", "sms_code", "reset_password", "login_problem",
    "payment_password", "bind_bank_card", "topup_methods", "topup_bank_transfer",
    "topup_cash", "topup_limit", "withdraw_how", "withdraw_fee", "withdraw_limit",
    "withdraw_time", "password_tips", "two_factor", "public_wifi", "anti_fraud", "privacy",
    "contact_channels", "response_time", "refund", "transaction_records",
]
ENTITIES = ["order_id", "tx_type", "amount"]


@pytest.fixture(scope="module")
def domain():
    return yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def training_data():
    return load_data(str(PROJECT_ROOT / "data" / "nlu"))


def test_domain_declares_contract_intents_and_entities(domain):
    assert set(CONVERSATION_INTENTS) | {"faq"} <= set(domain["intents"])
    assert set(ENTITIES) <= set(domain["entities"])


def test_every_faq_intent_has_an_entry_with_15_questions():
    entries = {e.intent: e for e in load_knowledge_base(kb_dir=PROJECT_ROOT / "data" / "faq")}
    assert set(FAQ_INTENTS) <= set(entries)
    short = {name: len(entries[name].questions) for name in FAQ_INTENTS if len(entries[name].questions) < 15}
    assert short == {}


def test_conversation_intents_have_15_examples(training_data):
    counts = {}
    for message in training_data.intent_examples:
        counts[message.get("intent")] = counts.get(message.get("intent"), 0) + 1
    short = {i: counts.get(i, 0) for i in CONVERSATION_INTENTS if counts.get(i, 0) < 15}
    assert short == {}


def test_entity_examples_exist(training_data):
    seen = {e["entity"] for m in training_data.intent_examples for e in m.get("entities") or []}
    assert set(ENTITIES) <= seen


def test_faq_answers_have_no_unresolved_templates(training_data):
    for name in FAQ_INTENTS:
        (response,) = training_data.responses[f"utter_faq/{name}"]
        assert response["text"].strip() and "{{" not in response["text"], name


def test_generated_faq_file_is_up_to_date():
    result = subprocess.run(
        [str(PROJECT_ROOT / ".venv/bin/walletbot"), "faq", "build", "--check"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr


def test_rasa_data_validate_is_clean(project_env):
    result = subprocess.run(
        [RASA, "data", "validate", "--fail-on-warnings"],
        cwd=PROJECT_ROOT, env=project_env, capture_output=True, text=True,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "No story structure conflicts found" in output
    warnings = [
        line for line in output.splitlines()
        if "UserWarning" in line
        # Rasa 3.6 itself adds the retrieval intent `faq` a second time when it
        # merges FAQ responses from NLU data into the domain; not our data.
        and "duplicated intents have been found across multiple domain files: faq" not in line
    ]
    assert warnings == []
