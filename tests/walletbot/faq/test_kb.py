import pytest

from walletbot.faq.kb import (
    InvalidYamlError,
    KnowledgeBaseError,
    annotation_problem,
    check_entry,
    is_intent_name,
    load_entry,
    load_knowledge_base,
    load_placeholders,
    read_kb_file,
    render_answer,
)

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


def test_read_kb_file_keeps_the_line_of_each_key_and_question(make_kb):
    text = WITHDRAW + "  -\n  - '  提现   收费吗 '\n"
    kb = read_kb_file(make_kb(withdraw_fee=text) / "withdraw_fee.yml")
    assert kb.lines == {"intent": 1, "title": 2, "answer": 3, "questions": 6}
    assert kb.label == "faq/withdraw_fee" and kb.answer.startswith("提现手续费：{{withdraw_fee}}")
    # As written: the repeat kept (lint counts it), the null item skipped, spaces collapsed.
    assert [(q.text, q.line) for q in kb.questions] == [
        ("提现手续费多少", 7), ("提现要扣钱吗", 8), ("提现要扣钱吗", 9), ("提现 收费吗", 11),
    ]
    assert check_entry(kb).questions == ("提现手续费多少", "提现要扣钱吗", "提现 收费吗")


def test_a_null_question_is_blank_not_the_text_none(make_kb):
    kb = make_kb(register=REGISTER + "  - ~\n")
    (entry,) = load_knowledge_base(kb_dir=kb)
    assert entry.questions == ("怎么注册", "如何开户")


@pytest.mark.parametrize(
    "text, line",
    [
        ("title: t\nintent: Broken\nanswer: a\nquestions: [q]\n", 2),
        ("title: t\nintent: other\nanswer: a\nquestions: [q]\n", 0),  # the file name may be wrong
        ("intent: broken\nanswer: ''\nquestions: [q]\n", 2),
        ("intent: broken\nanswer: a\n\nquestions: q\n", 4),
        ("intent: broken\nanswer: a\nquestions:\n  - q\n  - '[提现](tx_type)'\n", 5),
        ("intent: broken\nanswer: a\n", 0),
    ],
)
def test_errors_say_which_line(make_kb, text, line):
    path = make_kb(broken=text) / "broken.yml"
    with pytest.raises(KnowledgeBaseError) as info:
        load_entry(path)
    assert info.value.line == line and info.value.path == path
    assert str(info.value) == f"{path}: {info.value.problem}"


def test_invalid_yaml_gives_the_parser_message_and_its_line(make_kb):
    path = make_kb(broken="intent: broken\nanswer: [unclosed\n") / "broken.yml"
    with pytest.raises(InvalidYamlError) as info:
        read_kb_file(path)
    assert str(info.value).startswith(f"{path}: invalid YAML: while parsing a flow sequence")
    assert info.value.summary == "invalid YAML: expected ',' or ']', but got '<stream end>'"
    assert info.value.line == 3


def test_invalid_placeholder_file_is_a_knowledge_base_error(make_kb):
    kb = make_kb(register=REGISTER, _placeholders="hotline: [\n")
    with pytest.raises(InvalidYamlError, match="_placeholders.yml: invalid YAML"):
        load_placeholders(kb_dir=kb)


def test_rules_shared_with_the_trainer():
    assert annotation_problem("怎么提现") is None
    assert annotation_problem("[提现](tx)") == (
        "'[提现](tx)' contains [ ] { }, which Rasa reads as an entity annotation; rephrase it"
    )
    assert is_intent_name("withdraw_fee") and not is_intent_name("Withdraw-Fee")
