"""Training examples with their file and line: NLU blocks, and the knowledge base
as the trainer sees it through the FAQ builder's own parser."""

from __future__ import annotations

from walletbot.faq.kb import entry_paths, load_entry, read_kb_file
from walletbot.trainer.sources import faq_names, kb_examples, known_labels, nlu_blocks

from .conftest import EXAMPLES, TinyProject


def test_line_numbers_point_at_the_example(project: TinyProject):
    lines = project.conversation.read_text(encoding="utf-8").split("\n")
    for block in nlu_blocks(project.conversation):
        for example in block.examples:
            assert lines[example.line - 1].strip() == f"- {example.raw}"


def test_kb_examples_are_the_questions_the_builder_trains(project: TinyProject):
    # A repeat and odd spacing: the builder drops the one and collapses the other;
    # the trainer keeps the repeat (with its own line) so lint can count it.
    project.write_faq("register", EXAMPLES["faq/register"] + ["怎么注册", " 注册  要钱吗 "])
    for path in entry_paths(project.kb):
        examples = kb_examples(read_kb_file(path))
        entry = load_entry(path)
        assert {e.label for e in examples} == {entry.retrieval_intent}
        assert list(dict.fromkeys(e.text for e in examples)) == list(entry.questions)
        lines = path.read_text(encoding="utf-8").split("\n")
        for example in examples:
            assert " ".join(lines[example.line - 1].strip()[2:].split()) == example.text
    register = kb_examples(read_kb_file(project.kb / "register.yml"))
    assert [e.text for e in register].count("怎么注册") == 2
    assert register[-1].text == "注册 要钱吗"


def test_labels_come_from_the_domain_and_the_knowledge_base_files(project: TinyProject):
    assert faq_names(project.kb) == ["register", "withdraw_fee"]
    assert known_labels(domain=project.domain, kb_dir=project.kb) == [
        "goodbye", "greet", "faq/register", "faq/withdraw_fee",
    ]
