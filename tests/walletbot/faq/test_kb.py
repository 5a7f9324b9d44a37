import pytest

from walletbot.faq.kb import KnowledgeBaseError, load_knowledge_base, load_placeholders, render_answer

from .conftest import PLACEHOLDERS, REGISTER, WITHDRAW


def test_loads_entries_sorted_and_deduplicated(make_kb):
    kb = make_kb(withdraw_fee=WITHDRAW, register=REGISTER, _placeholders=PLACEHOLDERS)
    entries = load_knowledge_base(kb_dir=kb)
    assert [e.intent for e in entries] == ["register", "withdraw_fee"]
    assert entries[1].questions == ("提现手续费多少", "提现要扣钱吗")
    assert entries[1].retrieval_intent == "faq/withdraw_fee"
    assert entries[1].response_name == "utter_faq/withdraw_fee"


def test_placeholders_are_substituted(make_kb):
    kb = make_kb(withdraw_fee=WITHDRAW, _placeholders=PLACEHOLDERS)
    (entry,) = load_knowledge_base(kb_dir=kb)
    answer = render_answer(entry, load_placeholders(kb_dir=kb))
    assert "【待配置：提现手续费标准】" in answer and "{{" not in answer


def test_undefined_placeholder_is_an_error(make_kb):
    kb = make_kb(withdraw_fee=WITHDRAW)
    (entry,) = load_knowledge_base(kb_dir=kb)
    with pytest.raises(KnowledgeBaseError, match="withdraw_fee"):
        render_answer(entry, {})


@pytest.mark.parametrize(
    "text, message",
    [
        ("intent: other\nanswer: a\nquestions: [q]\n", "must match the file name"),
        ("intent: broken\nanswer: ''\nquestions: [q]\n", "answer"),
        ("intent: broken\nanswer: a\nquestions: []\n", "questions"),
        ("intent: broken\nanswer: a\nquestions: ['[提现](tx_type)怎么弄']\n", "annotation"),
        ("intent: broken\nanswer: a\nquestions: [q\n", "invalid YAML"),
        ("intent: Broken-Name\nanswer: a\nquestions: [q]\n", "lower_snake_case"),
    ],
)
def test_bad_entries_say_what_is_wrong(make_kb, text, message):
    kb = make_kb(broken=text)
    with pytest.raises(KnowledgeBaseError, match=message):
        load_knowledge_base(kb_dir=kb)


def test_question_under_two_intents_is_an_error(make_kb):
    other = REGISTER.replace("intent: register", "intent: other").replace("如何开户", "提现要扣钱吗")
    kb = make_kb(withdraw_fee=WITHDRAW, other=other, _placeholders=PLACEHOLDERS)
    with pytest.raises(KnowledgeBaseError, match="also under"):
        load_knowledge_base(kb_dir=kb)


def test_empty_kb_is_an_error(tmp_path):
    with pytest.raises(KnowledgeBaseError, match="no FAQ entries"):
        load_knowledge_base(kb_dir=tmp_path)
