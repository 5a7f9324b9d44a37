"""The declarations behind ``walletbot``: one spelling per option, working examples, glue.

These run no command: the handler functions are replaced, so they check
what the command line passes them, not what they do.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import shlex
from pathlib import Path
from typing import Dict, Iterator, List, Set

import pytest

import walletbot
from walletbot import cli
from walletbot.trainer import cmd_data, cmd_model, cmd_report
from walletbot.trainer.command import options_of, walk
from walletbot.trainer.kb_edit import Paths

PACKAGE = Path(walletbot.__file__).parent
CLI_MODULES = [
    PACKAGE / "cli.py", PACKAGE / "trainer" / "command.py", PACKAGE / "trainer" / "options.py",
    *sorted((PACKAGE / "trainer").glob("cmd_*.py")),
]
# Flags of other programs the package mentions or passes on (rasa's).
FOREIGN_FLAGS = {"--fail-on-warnings", "--auth-token"}
# Builds rasa's own command line; its flags are rasa's, not ours.
FOREIGN_FUNCTIONS = {"run_rasa_validate"}
LONG_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")

DECLARED = list(walk(cli.COMMANDS))


def _declared_flags() -> Set[str]:
    return {flag for _, command in DECLARED for option in options_of(command)
            for flag in option.flags if flag.startswith("--")}


def _epilogs() -> Set[str]:
    return {cli._EPILOG} | {c.epilog for _, c in DECLARED if c.epilog}


def _strings(path: Path) -> Iterator[str]:
    """The string literals of ``path`` that a user can see: no docstrings, no epilog
    (examples, checked by parsing them), nothing that builds another program's command."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and node.body \
                and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant):
            skipped.add(id(node.body[0].value))
        if isinstance(node, ast.FunctionDef) and node.name in FOREIGN_FUNCTIONS:
            skipped |= {id(inner) for inner in ast.walk(node)}
    epilogs = _epilogs()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in skipped and node.value not in epilogs:
            yield node.value


def _examples(text: str) -> Iterator[List[str]]:
    """The ``walletbot …`` lines of a help text, continuations joined, as argv."""
    joined = re.sub(r"\\\n\s*", " ", text)
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith("walletbot "):
            yield shlex.split(line, comments=True)[1:]


# --- the surface --------------------------------------------------------------


GROUPS = [((), cli.COMMANDS)] + [(w, c.subcommands) for w, c in DECLARED if c.subcommands]


@pytest.mark.parametrize("words, subcommands", GROUPS,
                         ids=[" ".join(("walletbot", *w)) for w, _ in GROUPS])
def test_the_help_lists_every_subcommand(words, subcommands, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*words, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "{" + ",".join(c.name for c in subcommands) + "}" in out
    for command in subcommands:
        assert re.search(rf"^    {command.name} ", out, re.M), command.name


def test_a_command_without_a_handler_needs_a_subcommand(capsys):
    for words, command in DECLARED:
        assert command.run or command.subcommands, words
        if command.run is None:
            with pytest.raises(SystemExit) as exit_info:
                cli.main(list(words))
            assert exit_info.value.code == 2
            assert "the following arguments are required" in capsys.readouterr().err


def test_every_example_in_the_help_parses():
    texts = [((), cli._EPILOG)] + [(w, c.epilog) for w, c in DECLARED if c.epilog]
    found = 0
    for words, text in texts:
        for argv in _examples(text):
            found += 1
            args = cli.make_parser().parse_args(argv)
            assert argv[:len(words)] == list(words), argv
            assert callable(args.handler), argv
    assert found >= 9


# --- one declaration per option -----------------------------------------------


def test_each_option_is_spelled_in_one_place_only():
    counts: Dict[str, List[str]] = {}
    for path in CLI_MODULES:
        for text in _strings(path):
            for flag in LONG_FLAG.findall(text):
                counts.setdefault(flag, []).append(path.name)
    declared = _declared_flags()
    assert declared <= set(counts), "the scan misses some declarations"
    repeated = {flag: counts[flag] for flag in declared if len(counts[flag]) > 1}
    assert not repeated, f"spelled more than once (refer to the Option instead): {repeated}"


# The operators' backup tool (`python -m walletbot.ops.backup`) has its own command line.
OWN_COMMAND_LINES = ("ops",)


def _walletbot_cli_sources():
    return [path for path in sorted(PACKAGE.rglob("*.py"))
            if path.relative_to(PACKAGE).parts[0] not in OWN_COMMAND_LINES]


def test_messages_and_help_only_mention_options_that_exist():
    """A renamed option must not leave hints such as "pass --model" behind."""
    known = _declared_flags() | FOREIGN_FLAGS
    texts = [("epilog", text) for text in _epilogs()]
    texts += [(str(path.relative_to(PACKAGE)), text)
              for path in _walletbot_cli_sources() for text in _strings(path)]
    unknown = [(where, flag) for where, text in texts for flag in LONG_FLAG.findall(text)
               if flag not in known]
    assert not unknown


def test_arguments_are_only_declared_through_options():
    offenders = [
        path.relative_to(PACKAGE) for path in _walletbot_cli_sources()
        if path.name != "command.py" and "add_argument(" in path.read_text(encoding="utf-8")
    ]
    assert not offenders


def test_no_command_declares_a_flag_twice():
    for words, command in DECLARED:
        flags = [flag for option in options_of(command) for flag in option.flags]
        assert len(flags) == len(set(flags)), words


# --- glue: what each command passes its handler -------------------------------

DATA_DEFAULTS = Paths(
    kb_dir=Path("data/faq"), nlu_dir=Path("data/nlu"), faq_nlu=Path("data/nlu/faq.yml"),
    conversation_nlu=Path("data/nlu/conversation.yml"), domain=Path("domain.yml"),
)
TEST_DEFAULTS = {"test": Path("tests/data/nlu_test.yml"), "train_data": Path("data/nlu"),
                 "progress": True}
SERVER_DEFAULTS = {"reload": False, "url": None, "token": None, "timeout": 300.0}
TOLERANCE_DEFAULTS = {"tolerance": 0.01, "intent_tolerance": 0.1}

CALLS = [
    ("faq build", cmd_data, "faq_build",
     {"kb_dir": Path("data/faq"), "out": Path("data/nlu/faq.yml"), "check": False}),
    ("faq add --intent greet -q 你好 -q 您好 --no-build", cmd_data, "faq_add",
     {"paths": DATA_DEFAULTS, "intent": "greet", "questions": ["你好", "您好"], "answer": None,
      "title": None, "from_file": None, "build": False}),
    ("faq add --from x.csv --kb kb", cmd_data, "faq_add",
     {"paths": dataclasses.replace(DATA_DEFAULTS, kb_dir=Path("kb")), "intent": None,
      "questions": [], "answer": None, "title": None, "from_file": Path("x.csv"),
      "build": True}),
    ("validate --skip-rasa", cmd_data, "validate",
     {"config": Path("config.yml"), "domain": Path("domain.yml"), "data": Path("data"),
      "paths": DATA_DEFAULTS, "skip_rasa": True, "strict": False, "min_examples": 10,
      "near_duplicate": 0.85}),
    ("review --no-progress --days 7", cmd_data, "review_export",
     {"url": None, "out": None, "reports": Path("reports"), "since_days": 7.0,
      "min_confidence": 0.5, "similarity": 0.35, "progress": False}),
    ("review import f.csv", cmd_data, "review_import",
     {"file": Path("f.csv"), "paths": DATA_DEFAULTS, "build": True}),
    ("train", cmd_model, "train",
     {"config": Path("config.yml"), "domain": Path("domain.yml"), "data": Path("data"),
      "models_dir": Path("models"), "kb_dir": Path("data/faq"),
      "faq_nlu": Path("data/nlu/faq.yml"), "finetune": None, "epoch_fraction": 1.0,
      "force": False, "verbose": False}),
    ("train --no-build --finetune", cmd_model, "train",
     {"config": Path("config.yml"), "domain": Path("domain.yml"), "data": Path("data"),
      "models_dir": Path("models"), "kb_dir": None, "faq_nlu": Path("data/nlu/faq.yml"),
      "finetune": "latest", "epoch_fraction": 1.0, "force": False, "verbose": False}),
    ("evaluate", cmd_model, "evaluate",
     {"model": None, "models_dir": Path("models"), "reports": Path("reports"),
      "formats": ["md", "html"], "cv": None, "config": Path("config.yml"), **TEST_DEFAULTS}),
    ("evaluate --keep-seen --no-progress --format md", cmd_model, "evaluate",
     {"model": None, "models_dir": Path("models"), "reports": Path("reports"),
      "formats": ["md"], "cv": None, "config": Path("config.yml"),
      **TEST_DEFAULTS, "train_data": None, "progress": False}),
    ("compare --all", cmd_model, "compare",
     {"candidate": None, "current": None, "models_dir": Path("models"), "all_intents": True,
      **TEST_DEFAULTS, **TOLERANCE_DEFAULTS}),
    ("promote m.tar.gz --reload", cmd_model, "promote",
     {"candidate": Path("m.tar.gz"), "models_dir": Path("models"), "served": None,
      **TEST_DEFAULTS, **TOLERANCE_DEFAULTS, **SERVER_DEFAULTS, "reload": True}),
    ("rollback --token ''", cmd_model, "rollback",
     {"models_dir": Path("models"), "served": None, **SERVER_DEFAULTS, "token": ""}),
    ("report", cmd_report, "report",
     {"days": 7, "fmt": "text", "out": None, "tracker_url": None, "wallet_url": None,
      "agents_file": None}),
    ("report --days 1 --format csv --out r.csv --db-url t --wallet-url w --agents a.yml",
     cmd_report, "report",
     {"days": 1, "fmt": "csv", "out": Path("r.csv"), "tracker_url": "t", "wallet_url": "w",
      "agents_file": "a.yml"}),
]


@pytest.mark.parametrize("argv, module, function, expected", CALLS, ids=[c[0] for c in CALLS])
def test_each_command_passes_its_options_to_its_handler(argv, module, function, expected,
                                                         monkeypatch):
    calls = []

    def handler(**kwargs):
        calls.append(kwargs)
        return 7

    monkeypatch.setattr(module, function, handler)
    assert cli.main(shlex.split(argv)) == 7  # the exit status is the handler's
    assert calls == [expected]


def test_every_command_with_a_handler_is_covered_above():
    runnable = {words for words, command in DECLARED if command.run}
    covered = {max((w for w in runnable if tuple(argv.split()[:len(w)]) == w), key=len)
               for argv, *_ in CALLS}
    assert covered == runnable
