"""``walletbot faq add`` and ``walletbot review import``: edits that keep files as written."""

from __future__ import annotations

import yaml

from walletbot.cli import main
from walletbot.faq.kb import load_entry
from walletbot.trainer import cmd_data
from walletbot.trainer.kb_edit import Paths
from walletbot.trainer.sources import nlu_blocks

from .conftest import TinyProject


def _paths(project: TinyProject) -> Paths:
    return Paths(kb_dir=project.kb, nlu_dir=project.nlu, faq_nlu=project.faq_nlu,
                 conversation_nlu=project.conversation, domain=project.domain)


def _questions(project: TinyProject, name: str):
    return list(load_entry(project.kb / f"{name}.yml").questions)


def _examples(project: TinyProject, intent: str):
    return [e.raw for b in nlu_blocks(project.conversation) if b.intent == intent
            for e in b.examples]


def test_add_questions_to_an_faq_keeps_the_file_and_rebuilds(project, capsys):
    before = (project.kb / "withdraw_fee.yml").read_text(encoding="utf-8")
    assert main(["faq", "add", "--intent", "faq/withdraw_fee", "-q", "提现要交钱不",
                 "-q", "500", "-q", "yes", *project.data_args()]) == 0
    after = (project.kb / "withdraw_fee.yml").read_text(encoding="utf-8")
    assert after.startswith(before)  # comment, answer and old questions untouched
    assert after[len(before):] == "  - 提现要交钱不\n  - '500'\n  - 'yes'\n"
    assert _questions(project, "withdraw_fee")[-3:] == ["提现要交钱不", "500", "yes"]
    out = capsys.readouterr().out
    assert "added 3 examples to" in out and f"wrote: {project.faq_nlu}" in out
    assert "- 提现要交钱不" in project.faq_nlu.read_text(encoding="utf-8")


def test_add_examples_to_a_conversation_intent(project):
    assert main(["faq", "add", "--intent", "goodbye", "-q", "今天先这样", *project.data_args()]) == 0
    text = project.conversation.read_text(encoding="utf-8")
    assert "# Conversation intents." in text
    assert _examples(project, "goodbye")[-1] == "今天先这样"
    assert _examples(project, "greet")[-1] == "您好在线吗"


def test_a_new_faq_needs_an_answer(project, capsys):
    args = ["faq", "add", "--intent", "faq/card_unbind", "-q", "怎么解绑银行卡", *project.data_args()]
    assert main(args) == 2
    assert "unknown intent 'faq/card_unbind'" in capsys.readouterr().err
    assert main(args + ["--title", "解绑银行卡", "--answer", "在「我的-银行卡」里解绑。\n解绑后不能提现到该卡。"]) == 0
    entry = load_entry(project.kb / "card_unbind.yml")
    assert entry.title == "解绑银行卡" and entry.questions == ("怎么解绑银行卡",)
    assert entry.answer == "在「我的-银行卡」里解绑。\n解绑后不能提现到该卡。"
    assert "utter_faq/card_unbind" in project.faq_nlu.read_text(encoding="utf-8")


def test_add_from_csv_and_yaml(project, tmp_path):
    csv_file = tmp_path / "new.csv"
    csv_file.write_text("intent,question\nfaq/register,注册要钱吗\ngreet,哈啰啊\n",
                        encoding="utf-8-sig")
    assert main(["faq", "add", "--from", str(csv_file), *project.data_args()]) == 0
    yaml_file = tmp_path / "new.yml"
    yaml_file.write_text(
        yaml.safe_dump([{"intent": "faq/withdraw_fee", "questions": ["提现扣点吗", "提现抽成多少"]}],
                       allow_unicode=True),
        encoding="utf-8",
    )
    assert main(["faq", "add", "--from", str(yaml_file), *project.data_args()]) == 0
    assert "注册要钱吗" in _questions(project, "register")
    assert _examples(project, "greet")[-1] == "哈啰啊"
    assert _questions(project, "withdraw_fee")[-2:] == ["提现扣点吗", "提现抽成多少"]


def test_add_interactively(project):
    answers = iter(["faq/card_lost", "银行卡丢了", "请先在APP里解绑该卡。", "", "银行卡丢了怎么办",
                    "卡掉了", ""])
    code = cmd_data.faq_add(paths=_paths(project), input_fn=lambda prompt: next(answers))
    assert code == 0
    entry = load_entry(project.kb / "card_lost.yml")
    assert entry.questions == ("银行卡丢了怎么办", "卡掉了")
    assert entry.answer == "请先在APP里解绑该卡。"


def test_an_example_of_another_intent_is_refused(project, capsys):
    before = (project.kb / "register.yml").read_text(encoding="utf-8")
    assert main(["faq", "add", "--intent", "faq/register", "-q", "新手注册", "-q", "你好！",
                 *project.data_args()]) == 2
    err = capsys.readouterr().err
    assert "'你好！' is already an example of greet, not faq/register" in err
    assert "nothing was changed" in err
    assert (project.kb / "register.yml").read_text(encoding="utf-8") == before


def test_already_present_examples_are_skipped(project, capsys):
    assert main(["faq", "add", "--intent", "greet", "-q", "您好", *project.data_args()]) == 0
    assert "1 already present, skipped" in capsys.readouterr().out
    assert _examples(project, "greet").count("您好") == 1


def test_entity_brackets_are_refused(project, capsys):
    assert main(["faq", "add", "--intent", "greet", "-q", "[你好](name)", *project.data_args()]) == 2
    assert "entity annotation" in capsys.readouterr().err


def _labelled(tmp_path, rows):
    path = tmp_path / "review.csv"
    lines = ["group,count,text,predicted,confidence,reasons,senders,last_seen,intent"]
    lines += [f"1,1,{text},greet,0.2,fallback,1,,{intent}" for text, intent in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    return path


def test_review_import_rejects_an_unknown_intent(project, tmp_path, capsys):
    before = {p: p.read_text(encoding="utf-8") for p in project.data.rglob("*.yml")}
    path = _labelled(tmp_path, [("提现到账要多久", "faq/withdraw_time"), ("哈喽呀", "greet"),
                                ("注册", "register")])
    assert main(["review", "import", str(path), *project.data_args()]) == 2
    err = capsys.readouterr().err
    assert "review.csv:2: unknown intent 'faq/withdraw_time'" in err
    assert "review.csv:4: unknown intent 'register' (did you mean faq/register?)" in err
    assert "known intents: faq/register, faq/withdraw_fee, goodbye, greet" in err
    assert {p: p.read_text(encoding="utf-8") for p in project.data.rglob("*.yml")} == before


def test_review_import_merges_labelled_lines(project, tmp_path, capsys):
    path = _labelled(tmp_path, [("提现要手续费么亲", "faq/withdraw_fee"), ("哈喽呀", "greet"),
                                ("随便说说", ""), ("跳过这行", "-"), ("开个户要多久", " FAQ/register ")])
    assert main(["review", "import", str(path), *project.data_args()]) == 0
    out = capsys.readouterr().out
    assert "5 lines, 3 labelled" in out
    assert _questions(project, "withdraw_fee")[-1] == "提现要手续费么亲"
    assert _questions(project, "register")[-1] == "开个户要多久"
    assert _examples(project, "greet")[-1] == "哈喽呀"
    assert "随便说说" not in project.conversation.read_text(encoding="utf-8")
    assert main(["faq", "build", "--check", "--kb", str(project.kb), "--out", str(project.faq_nlu)]) == 0


def test_review_import_adds_a_block_for_a_domain_intent_without_examples(project, tmp_path):
    project.domain.write_text(
        project.domain.read_text(encoding="utf-8").replace("  - faq\n", "  - faq\n  - thanks\n"),
        encoding="utf-8",
    )
    path = _labelled(tmp_path, [("多谢多谢", "thanks")])
    assert main(["review", "import", str(path), *project.data_args()]) == 0
    assert _examples(project, "thanks") == ["多谢多谢"]
    assert _examples(project, "goodbye")[-1] == "回见"
