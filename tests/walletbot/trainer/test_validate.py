"""``walletbot validate``: each lint error, with file and line, and the exit status."""

from __future__ import annotations

from pathlib import Path

import pytest

from walletbot.cli import main
from walletbot.settings import PROJECT_ROOT
from walletbot.trainer.lint import lint

from .conftest import EXAMPLES, TinyProject, nlu_text


def _lint(project: TinyProject, **kwargs):
    return lint(kb_dir=project.kb, nlu_dir=project.nlu, faq_nlu=project.faq_nlu,
                domain=project.domain, **kwargs)


def _codes(issues, severity=None):
    return [i.code for i in issues if severity is None or i.severity == severity]


def _validate(project: TinyProject, *extra: str) -> int:
    return main(["validate", "--skip-rasa", *project.data_args(), *extra])


def test_clean_project_passes_with_a_placeholder_warning(project, capsys):
    assert _validate(project) == 0
    out = capsys.readouterr().out
    assert "withdraw_fee.yml:4: warning: answer still shows a placeholder: {{withdraw_fee}}" in out
    assert "0 errors, 1 warning" in out


def test_strict_makes_unfilled_placeholders_errors(project, capsys):
    assert _validate(project, "--strict") == 1
    err = capsys.readouterr().err
    assert "withdraw_fee.yml:4: error: answer still shows a placeholder" in err


def test_example_under_two_intents(project, capsys):
    # "hello" is a greet example; the same message, full width and with punctuation, as an FAQ.
    project.write_faq("register", EXAMPLES["faq/register"] + ["ｈｅｌｌｏ！"])
    project.rebuild()
    assert _validate(project) == 1
    err = capsys.readouterr().err
    assert "register.yml:20: error: example 'ｈｅｌｌｏ！' is also under greet" in err
    assert f"{project.conversation}:13" in err  # where the other one is
    assert "[duplicate-example]" in err


def test_near_duplicates_across_intents_are_warnings(project):
    project.write_faq("register", EXAMPLES["faq/register"] + ["提现手续费多少钱"])
    project.rebuild()
    issues = _lint(project)
    near = [i for i in issues if i.code == "near-duplicate"]
    assert near and near[0].severity == "warning"
    assert "提现手续费多少" in near[0].message or "提现手续费多少钱" in near[0].message
    assert "error" not in _codes(issues)
    strict = [i for i in _lint(project, strict=True) if i.code == "near-duplicate"]
    assert strict[0].severity == "error"


def test_intent_with_too_few_examples(project, capsys):
    examples = dict(EXAMPLES, goodbye=EXAMPLES["goodbye"][:3])
    project.conversation.write_text(
        nlu_text({k: v for k, v in examples.items() if not k.startswith("faq/")}),
        encoding="utf-8",
    )
    assert _validate(project) == 1
    err = capsys.readouterr().err
    assert f"{project.conversation}:19: error: goodbye has 3 examples, fewer than 10" in err
    assert _validate(project, "--min-examples", "3") == 0


def test_domain_intent_without_examples(project):
    project.domain.write_text(
        project.domain.read_text(encoding="utf-8").replace("  - faq\n", "  - faq\n  - thanks\n"),
        encoding="utf-8",
    )
    (issue,) = [i for i in _lint(project) if i.code == "too-few-examples"]
    assert issue.path == project.domain and issue.line == 6
    assert "thanks has 0 examples" in issue.message


@pytest.mark.parametrize(
    "answer, code, line",
    [("", "answer-empty", 4), ("提现收费：{{no_such_fact}}。", "placeholder-undefined", 4)],
)
def test_answer_errors(project, answer, code, line):
    project.write_faq("withdraw_fee", EXAMPLES["faq/withdraw_fee"], answer=answer)
    (issue,) = [i for i in _lint(project) if i.severity == "error"]
    assert (issue.code, issue.path.name, issue.line) == (code, "withdraw_fee.yml", line)


def test_missing_answer(project, capsys):
    path = project.kb / "register.yml"
    path.write_text(
        "intent: register\nquestions:\n" + "".join(f"  - {q}\n" for q in EXAMPLES["faq/register"]),
        encoding="utf-8",
    )
    assert _validate(project) == 1
    assert "register.yml:1: error: no 'answer'" in capsys.readouterr().err


def test_generated_file_out_of_date(project, capsys):
    project.write_faq("register", EXAMPLES["faq/register"] + ["注册送红包吗"])
    assert _validate(project) == 1
    err = capsys.readouterr().err
    assert f"{project.faq_nlu}: error: out of date with {project.kb}/: run `walletbot faq build`" in err
    project.rebuild()
    assert _validate(project) == 0


def test_broken_yaml_is_reported_with_its_line(project, capsys):
    (project.kb / "register.yml").write_text("intent: register\nanswer: [unclosed\n",
                                             encoding="utf-8")
    assert _validate(project) == 1
    assert "register.yml:3: error: invalid YAML" in capsys.readouterr().err


def test_rasa_data_validate_runs_first(project, capsys):
    assert main(["validate", "--config", str(project.config), "--data", str(project.data),
                 *project.data_args()]) == 0
    assert "rasa data validate: ok" in capsys.readouterr().out
    # A rule for an intent the domain does not declare fails Rasa's own validation.
    rules = project.data / "rules.yml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("intent: goodbye", "intent: byebye"),
                     encoding="utf-8")
    assert main(["validate", "--config", str(project.config), "--data", str(project.data),
                 *project.data_args()]) == 1
    captured = capsys.readouterr()
    assert "rasa data validate: failed" in captured.out
    assert "byebye" in captured.err


def test_the_project_data_passes(capsys, monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)
    assert main(["validate", "--skip-rasa"]) == 0
    assert " 0 errors" in capsys.readouterr().out


def test_kb_format_errors_are_reported(project):
    path: Path = project.kb / "register.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("intent: register", "intent: Register"),
                    encoding="utf-8")
    (issue,) = [i for i in _lint(project) if i.severity == "error"]
    assert issue.code == "kb-format" and issue.line == 2
    assert "lower_snake_case" in issue.message


@pytest.mark.parametrize(
    "text, line",
    [
        ("intent: Register\nanswer: 答案\nquestions: [怎么注册]\n", 1),
        ("intent: other\nanswer: 答案\nquestions: [怎么注册]\n", 1),
        ("intent: register\nanswer: 答案\nquestions: 怎么注册\n", 3),
        ("intent: register\nanswer: 答案\nquestions: []\n", 3),
        ("intent: register\nanswer: 答案\nquestions:\n  - 怎么注册\n  - '[注册](x)怎么弄'\n", 5),
    ],
)
def test_lint_and_the_builder_report_a_bad_entry_alike(project, capsys, text, line):
    path = project.kb / "register.yml"
    path.write_text(text, encoding="utf-8")
    (issue,) = [i for i in _lint(project) if i.code == "kb-format"]
    assert (issue.path, issue.line) == (path, line)
    assert main(["faq", "build", "--kb", str(project.kb), "--out", str(project.faq_nlu)]) == 2
    assert f"{path}: {issue.message}" in capsys.readouterr().err


def test_lint_and_the_builder_agree_on_broken_yaml(project, capsys):
    path = project.kb / "register.yml"
    path.write_text("intent: register\nanswer: [unclosed\n", encoding="utf-8")
    (issue,) = [i for i in _lint(project) if i.code == "yaml"]
    assert (issue.path, issue.line) == (path, 3)
    assert main(["faq", "build", "--kb", str(project.kb), "--out", str(project.faq_nlu)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: invalid YAML:" in err and "line 3" in err


def test_broken_placeholder_file_is_reported_not_raised(project):
    (project.kb / "_placeholders.yml").write_text("hotline: [\n", encoding="utf-8")
    issues = [i for i in _lint(project) if i.code == "yaml"]
    assert [(i.path.name, i.line) for i in issues] == [("_placeholders.yml", 2)]
