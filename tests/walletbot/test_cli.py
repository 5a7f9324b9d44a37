"""The ``walletbot`` command line: faq build, help texts, lazy imports."""

import io
import subprocess
import sys

import pytest

from walletbot.cli import COMMANDS, main
from walletbot.trainer.command import walk


def test_faq_build_and_check(tmp_path, capsys):
    kb = tmp_path / "faq"
    kb.mkdir()
    (kb / "register.yml").write_text(
        "intent: register\nanswer: 下载APP注册\nquestions: [怎么注册]\n", encoding="utf-8"
    )
    out = tmp_path / "faq.yml"
    assert main(["faq", "build", "--kb", str(kb), "--out", str(out), "--check"]) == 1
    assert main(["faq", "build", "--kb", str(kb), "--out", str(out)]) == 0
    assert main(["faq", "build", "--kb", str(kb), "--out", str(out), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_faq_build_reports_kb_errors_with_the_file(tmp_path, capsys):
    kb = tmp_path / "faq"
    kb.mkdir()
    (kb / "register.yml").write_text("intent: register\nanswer: ''\n", encoding="utf-8")
    assert main(["faq", "build", "--kb", str(kb), "--out", str(tmp_path / "o.yml")]) == 2
    assert "register.yml" in capsys.readouterr().err


SUBCOMMANDS = [
    ["faq", "build"], ["faq", "add"], ["validate"], ["train"], ["evaluate"], ["compare"],
    ["promote"], ["rollback"], ["review"], ["review", "import"], ["report"],
]


def test_the_list_above_is_every_declared_command():
    assert sorted(list(words) for words, command in walk(COMMANDS) if command.run) \
        == sorted(SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_english_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: walletbot {' '.join(command)}")
    assert "(default: None)" not in out


def test_the_cli_does_not_import_rasa_until_a_command_needs_it():
    code = (
        "import sys, walletbot.cli as c; c.make_parser(); "
        "print(any(m == 'rasa' or m.startswith(('rasa.', 'tensorflow')) for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_faq_add_without_input_in_a_pipe_says_what_to_give(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["faq", "add", "--kb", str(tmp_path)]) == 2
    assert "give --intent and --question, or --from FILE" in capsys.readouterr().err
