"""The guides' commands are real: README.md and docs/*.md checked against the project.

Every fenced ``bash`` block of the guides is read here. A block whose info
string is ``bash runnable`` is safe and quick (under about 30 s, no running
server, writes nothing into the repository) and is run, from the project root,
with the development settings (``. scripts/env.sh``) and the virtual
environment's programs first on ``PATH``, under ``set -euo pipefail``. Every
other block must parse (``bash -n``), and whatever it names must exist: ``make``
targets of the Makefile, ``walletbot`` sub-commands of ``walletbot.cli``,
``scripts/…`` and ``python …/x.py`` paths, ``python -m walletbot.…`` modules.
The README stays short, and every relative link points to a file.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

import pytest

from walletbot.settings import PROJECT_ROOT

ROOT = PROJECT_ROOT
README = ROOT / "README.md"
GUIDES = sorted((ROOT / "docs").glob("*.md"))
DOCS = [README, *GUIDES]
IMAGES = ROOT / "docs" / "img"
MAX_README_LINES = 260
RUN_TIMEOUT = 300

# Named by the guides but written by other work under way: each may be missing
# while everything else is checked. Once it exists, it is checked like the rest.
PENDING = {
    "scripts/screenshots.py": "the screenshots script (docs/img/*.png) is not written yet",
    "walletbot.ops.backup": "the backup module is not written yet",
}


# --- reading the guides ---------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One fenced code block of a guide."""

    path: Path
    line: int
    info: Tuple[str, ...]
    text: str

    @property
    def is_bash(self) -> bool:
        return bool(self.info) and self.info[0] == "bash"

    @property
    def runnable(self) -> bool:
        return self.is_bash and "runnable" in self.info[1:]

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def split_markdown(path: Path) -> Tuple[List[Block], List[str]]:
    """The fenced blocks of ``path``, and its other lines (block lines blanked)."""
    blocks: List[Block] = []
    prose: List[str] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    opened: Optional[Tuple[int, str, str, Tuple[str, ...]]] = None
    body: List[str] = []
    for number, line in enumerate(lines, start=1):
        if opened is None:
            match = _FENCE.match(line)
            if match and "`" not in match["info"]:
                opened = (number, match["indent"], match["fence"], tuple(match["info"].split()))
                body = []
                prose.append("")
            else:
                prose.append(line)
            continue
        start, indent, fence, info = opened
        stripped = line.strip()
        if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
            blocks.append(Block(path, start, info, "\n".join(body) + "\n"))
            opened = None
        else:
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
        prose.append("")
    assert opened is None, f"{path.relative_to(ROOT)}:{opened[0]}: code block never closed"
    return blocks, prose


def all_blocks() -> List[Block]:
    return [block for path in DOCS for block in split_markdown(path)[0]]


BASH = [block for block in all_blocks() if block.is_bash]
RUNNABLE = [block for block in BASH if block.runnable]


# --- reading shell commands -----------------------------------------------------------

_SEPARATORS = {";", ";;", "&", "&&", "|", "||", "|&", "(", ")", "((", "))"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PREFIXES = {"sudo", "time", "exec", "command", "!", "nohup"}


def commands(text: str) -> Iterator[List[str]]:
    """The simple commands of a shell block: words after assignments and prefixes."""
    for line in re.sub(r"\\\n", " ", text).splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: List[str] = []
        tokens = list(lexer)
        index = 0
        while index <= len(tokens):
            token = tokens[index] if index < len(tokens) else ";"
            index += 1
            if token in _SEPARATORS:
                while words and (_ASSIGNMENT.match(words[0]) or words[0] in _PREFIXES):
                    words.pop(0)
                if words:
                    yield words
                words = []
            elif set(token) <= set("<>&") or re.fullmatch(r"\d*[<>]+&?\d*", token):
                index += 1  # a redirection: its target is no word of the command
            else:
                words.append(token)


def named(program: str) -> Iterator[Tuple[Block, List[str]]]:
    """Every command of every bash block that runs ``program`` (by its base name)."""
    for block in BASH:
        for words in commands(block.text):
            if re.fullmatch(program, os.path.basename(words[0])):
                yield block, words


def make_targets() -> Set[str]:
    targets: Set[str] = set()
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        if line.startswith(".PHONY:"):
            targets.update(line.split(":", 1)[1].split())
            continue
        match = re.match(r"^([A-Za-z0-9_.\-/ ]+?)\s*::?(?!=)", line)
        if match and not line.startswith(("\t", "#")):
            targets.update(match[1].split())
    return targets


def subcommands(parser: argparse.ArgumentParser) -> Dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public accessor for them
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def walletbot_problem(words: Sequence[str]) -> Optional[str]:
    """Why ``walletbot <words>`` would not parse, or None."""
    from walletbot.cli import make_parser

    parser = make_parser()
    level, path = parser, ["walletbot"]
    for word in words:
        choices = subcommands(level)
        if not choices or word.startswith("-"):
            break
        if word not in choices:
            return f"`{' '.join(path)} {word}`: no such sub-command (choose from {', '.join(choices)})"
        level, path = choices[word], [*path, word]
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            parser.parse_known_args(list(words))
    except SystemExit as stop:
        if stop.code not in (0, None):
            return err.getvalue().strip().splitlines()[-1]
    return None


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def named_paths(words: Sequence[str]) -> Iterator[str]:
    """Repository paths a command runs or sources: scripts/…, and python's x.py."""
    program = os.path.basename(words[0])
    if words[0].startswith(("scripts/", "./scripts/", "bench/")):
        yield words[0]
    if program in (".", "source") and len(words) > 1:
        yield words[1]
    if re.fullmatch(r"python(3(\.\d+)?)?", program) and len(words) > 1 and words[1].endswith(".py"):
        yield words[1]
    for word in words[1:]:
        if word.startswith(("scripts/", "./scripts/")):
            yield word


def walletbot_modules(words: Sequence[str]) -> Iterator[str]:
    if re.fullmatch(r"python(3(\.\d+)?)?", os.path.basename(words[0])):
        for flag, value in zip(words[1:], words[2:]):
            if flag == "-m" and value.split(".")[0] == "walletbot":
                yield value


# --- the blocks -----------------------------------------------------------------------


def test_the_guides_exist_and_have_commands():
    assert {p.name for p in GUIDES} >= {"trainers.md", "agents.md", "operators.md",
                                        "developers.md"}
    assert RUNNABLE, "no ```bash runnable``` block in the guides"


def test_the_shell_reader_finds_commands():
    text = ('. scripts/env.sh && X=1 .venv/bin/python -m walletbot.settings  # check\n'
            'walletbot faq add --intent greet \\\n  -q "你好 # 不是注释" > /dev/null; make test\n')
    assert list(commands(text)) == [
        [".", "scripts/env.sh"], [".venv/bin/python", "-m", "walletbot.settings"],
        ["walletbot", "faq", "add", "--intent", "greet", "-q", "你好 # 不是注释"],
        ["make", "test"],
    ]


@pytest.mark.slow
@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.where)
def test_runnable_blocks_exit_0(block, tmp_path):
    script = tmp_path / "block.sh"
    script.write_text(
        "set -euo pipefail\n"
        f"cd {shlex.quote(str(ROOT))}\n"
        ". scripts/env.sh\n"
        # What `. .venv/bin/activate` does for the commands of a block.
        f"export VIRTUAL_ENV={shlex.quote(str(ROOT / '.venv'))}\n"
        'export PATH="$VIRTUAL_ENV/bin:$PATH"\n'
        + block.text,
        encoding="utf-8",
    )
    done = subprocess.run(["bash", str(script)], cwd=ROOT, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)
    assert done.returncode == 0, (
        f"{block.where} exited {done.returncode}:\n{block.text}\n"
        f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    )


@pytest.mark.parametrize("block", BASH, ids=lambda b: b.where)
def test_every_bash_block_parses(block):
    done = subprocess.run(["bash", "-n"], input=block.text, capture_output=True, text=True)
    assert done.returncode == 0, f"{block.where}: {done.stderr}"


def test_make_targets_are_in_the_makefile():
    targets = make_targets()
    missing = [f"{block.where}: make {word}"
               for block, words in named("make")
               for word in words[1:]
               if not word.startswith("-") and "=" not in word and word not in targets]
    assert not missing, f"not Makefile targets: {missing}"
    assert {"run", "test", "test-fast", "deps"} <= {
        word for _, words in named("make") for word in words[1:]}


def test_walletbot_commands_are_real_subcommands():
    found = list(named("walletbot"))
    assert found
    problems = [f"{block.where}: {' '.join(words)}: {problem}"
                for block, words in found
                for problem in [walletbot_problem(words[1:])] if problem]
    assert not problems, "\n".join(problems)


def test_the_subcommand_check_catches_mistakes():
    assert walletbot_problem(["faq", "build", "--out", "/tmp/x.yml"]) is None
    assert walletbot_problem(["review", "import", "reports/review.csv"]) is None
    assert walletbot_problem(["--help"]) is None
    assert "no such sub-command" in walletbot_problem(["faq", "remove"])
    assert "no such sub-command" in walletbot_problem(["deploy"])
    assert walletbot_problem(["review", "import"]) is not None  # FILE missing


def test_scripts_and_python_files_exist():
    missing = []
    for block in BASH:
        for words in commands(block.text):
            for name in named_paths(words):
                relative = name[2:] if name.startswith("./") else name
                # Another engineer's work under way (see PENDING): may be missing for now.
                if relative in PENDING and not (ROOT / relative).exists():
                    continue
                if not (ROOT / relative).exists():
                    missing.append(f"{block.where}: {name}")
    assert not missing, f"no such file: {missing}"


def test_walletbot_modules_exist():
    missing = []
    for block in BASH:
        for words in commands(block.text):
            for module in walletbot_modules(words):
                # Another engineer's work under way (see PENDING): may be missing for now.
                if module in PENDING and not module_exists(module):
                    continue
                if not module_exists(module):
                    missing.append(f"{block.where}: python -m {module}")
    assert not missing, f"no such module: {missing}"


@pytest.mark.parametrize("name", PENDING)
def test_pending_pieces(name):
    """Reports (as a skip) a piece the guides name that is not written yet."""
    exists = module_exists(name) if "/" not in name else (ROOT / name).exists()
    if not exists:
        pytest.skip(PENDING[name])
    text = "\n".join(path.read_text(encoding="utf-8") for path in DOCS)
    assert name in text or name.replace(".", "/") in text


# --- the README and the links ---------------------------------------------------------


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"


def test_readme_shows_both_screenshots_and_links_every_guide():
    text = README.read_text(encoding="utf-8")
    for target in ("docs/img/chat.png", "docs/img/desk.png", "python scripts/screenshots.py",
                   *(f"docs/{p.name}" for p in GUIDES)):
        assert target in text, target


_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*~]|<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> Set[str]:
    found: Set[str] = set()
    counts: Dict[str, int] = {}
    for line in split_markdown(path)[1]:
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match[1])
            found.add(base if base not in counts else f"{base}-{counts[base]}")
            counts[base] = counts.get(base, 0) + 1
    return found


def links(path: Path) -> Iterator[Tuple[int, str]]:
    for number, line in enumerate(split_markdown(path)[1], start=1):
        for match in _LINK.finditer(_CODE_SPAN.sub("", line)):
            yield number, match[1]


def link_problem(path: Path, target: str) -> Optional[str]:
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
        return None  # http:, https:, mailto: …
    file_part, _, fragment = target.partition("#")
    resolved = (path.parent / file_part).resolve() if file_part else path
    if ROOT.resolve() not in resolved.parents and resolved != ROOT.resolve():
        return "points outside the repository"
    if resolved.parent == IMAGES.resolve() and resolved.suffix == ".png":
        return None  # generated by scripts/screenshots.py; may not be there yet
    if not resolved.exists():
        return "no such file"
    if fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
        return f"no heading #{fragment} in {resolved.relative_to(ROOT.resolve())}"
    return None


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_files(path):
    problems = [f"{path.relative_to(ROOT)}:{number}: {target}: {problem}"
                for number, target in links(path)
                for problem in [link_problem(path, target)] if problem]
    assert not problems, "\n".join(problems)


def test_the_link_check_catches_mistakes():
    guide = ROOT / "docs" / "operators.md"
    assert link_problem(guide, "img/chat.png") is None
    assert link_problem(guide, "../README.md") is None
    assert link_problem(guide, "#configuration") is None
    assert link_problem(guide, "missing.md") == "no such file"
    assert link_problem(guide, "#no-such-heading").startswith("no heading")
    assert link_problem(guide, "../../elsewhere.md") == "points outside the repository"
    assert slug("On one machine: `scripts/prod.sh`") == "on-one-machine-scriptsprodsh"
