"""Reading and checking the FAQ knowledge base: the one parser of ``data/faq/``.

One YAML file per FAQ intent under ``data/faq/``::

    intent: withdraw_how
    title: 如何提现到银行卡
    answer: |-
      ...{{hotline}}...
    questions:
      - 怎么提现

``_placeholders.yml`` in the same folder holds the facts the sources do not
give (a hotline, a fee); answers refer to them as ``{{key}}``.

A file is read in two steps, so the builder and the trainer tools see the
same thing: :func:`read_kb_file` gives the file as written, with the line of
each key and question (for lint messages and editors, even when the file
breaks a rule); :func:`check_entry` applies the format rules and gives the
:class:`FaqEntry` the builder turns into training data. Every rule of the
format lives here; errors carry the line they are about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

PLACEHOLDER_FILE = "_placeholders.yml"
PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
# Rasa's inline entity syntax; a question must not contain it by accident.
_ANNOTATION_CHARS = re.compile(r"[\[\]{}]")
_INTENT_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class KnowledgeBaseError(ValueError):
    """The knowledge base has an error a trainer must fix; the message says where.

    ``problem`` is the message without the file name, and ``line`` the line
    it is about (0: the file as a whole), so a report that prints the place
    itself does not repeat it.
    """

    def __init__(self, problem: str, *, path: Optional[Path] = None, line: int = 0) -> None:
        super().__init__(f"{path}: {problem}" if path is not None else problem)
        self.problem = problem
        self.path = path
        self.line = line


class InvalidYamlError(KnowledgeBaseError):
    """A knowledge-base file is not valid YAML.

    The message quotes the parser in full (with its excerpt of the file);
    ``summary`` is the one-line form for reports that give the line themselves.
    """

    def __init__(self, exc: yaml.YAMLError, *, path: Path) -> None:
        mark = getattr(exc, "problem_mark", None)
        super().__init__(f"invalid YAML: {exc}", path=path, line=mark.line + 1 if mark else 0)
        self.summary = f"invalid YAML: {getattr(exc, 'problem', exc)}"


@dataclass(frozen=True)
class FaqEntry:
    """One FAQ topic: its intent, answer template and example questions."""

    intent: str
    title: str
    answer: str
    questions: Tuple[str, ...]
    path: Path

    @property
    def retrieval_intent(self) -> str:
        """The full retrieval intent name, e.g. ``faq/withdraw_how``."""
        return f"faq/{self.intent}"

    @property
    def response_name(self) -> str:
        """The response the ResponseSelector returns, e.g. ``utter_faq/withdraw_how``."""
        return f"utter_faq/{self.intent}"


@dataclass(frozen=True)
class Question:
    """One question of a knowledge-base file, whitespace collapsed, and its line."""

    text: str
    line: int


@dataclass(frozen=True)
class KbFile:
    """A knowledge-base file as written, before the format rules are applied.

    ``data`` is the file's mapping (empty if it is not one), ``lines`` the line
    of each top-level key, and ``questions`` every non-blank question in file
    order, repeats included: the trainer's lint counts what a trainer wrote.
    """

    path: Path
    data: Dict[str, Any]
    is_mapping: bool
    lines: Dict[str, int]
    questions: Tuple[Question, ...]

    @property
    def intent(self) -> str:
        """The intent the file declares (its file name if it declares none), unchecked."""
        return str(self.data.get("intent") or self.path.stem)

    @property
    def label(self) -> str:
        """The retrieval intent the file's questions train, e.g. ``faq/withdraw_how``."""
        return f"faq/{self.intent}"

    @property
    def answer(self) -> str:
        """The answer template, stripped; empty if missing."""
        return str(self.data.get("answer") or "").strip()


def _parse_yaml(path: Path) -> Tuple[Optional[yaml.Node], Any]:
    """The file's node tree (for line numbers) and its data as ``yaml.safe_load`` gives it."""
    text = path.read_text(encoding="utf-8")
    try:
        return yaml.compose(text), yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidYamlError(exc, path=path) from exc


def clean_question(raw: Any) -> str:
    """A question as the model sees it: whitespace collapsed, a YAML null blank."""
    return " ".join(str(raw).split()) if raw is not None else ""


def annotation_problem(text: str) -> Optional[str]:
    """Why ``text`` cannot be a training example as is, or None.

    Rasa reads ``[ ]`` and ``{ }`` as inline entity annotations, so a question
    (or any example a trainer adds) containing them would be silently changed.
    """
    if _ANNOTATION_CHARS.search(text):
        return (f"{text!r} contains [ ] {{ }}, which Rasa reads as an entity annotation; "
                "rephrase it")
    return None


def is_intent_name(name: str) -> bool:
    """Whether ``name`` may name an FAQ intent (and so its file): lower_snake_case."""
    return bool(_INTENT_RE.match(name))


def entry_paths(kb_dir: Path) -> List[Path]:
    """The knowledge base's entry files, sorted (``_placeholders.yml`` and co. excluded)."""
    return sorted(p for p in kb_dir.glob("*.yml") if not p.name.startswith("_"))


def read_kb_file(path: Path) -> KbFile:
    """Parses one knowledge-base file, keeping the line of each key and question.

    Raises:
        InvalidYamlError: the file is not valid YAML (with the line it fails on).
    """
    node, data = _parse_yaml(path)
    lines: Dict[str, int] = {}
    question_lines: List[int] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[str(key.value)] = key.start_mark.line + 1
            if key.value == "questions" and isinstance(value, yaml.SequenceNode):
                question_lines = [item.start_mark.line + 1 for item in value.value]
    mapping = data if isinstance(data, dict) else {}
    raw_questions = mapping.get("questions")
    questions: List[Question] = []
    if isinstance(raw_questions, list):
        for n, raw in enumerate(raw_questions):
            text = clean_question(raw)
            if text:
                line = question_lines[n] if n < len(question_lines) else lines.get("questions", 0)
                questions.append(Question(text=text, line=line))
    return KbFile(
        path=path, data=mapping, is_mapping=isinstance(data, dict),
        lines=lines, questions=tuple(questions),
    )


def check_entry(kb: KbFile) -> FaqEntry:
    """Applies the format rules to a parsed file; the entry the builder uses.

    Raises:
        KnowledgeBaseError: the first rule the file breaks, with its line.
    """
    path = kb.path

    def fail(problem: str, line: int = 0) -> KnowledgeBaseError:
        return KnowledgeBaseError(problem, path=path, line=line)

    if not kb.is_mapping:
        raise fail("expected keys intent, title, answer, questions")
    intent = str(kb.data.get("intent") or "")
    if not is_intent_name(intent):
        raise fail(f"'intent' must be lower_snake_case, got {intent!r}", kb.lines.get("intent", 0))
    if intent != path.stem:
        # About the file name as much as the key: either may be the one to fix.
        raise fail(f"intent {intent!r} must match the file name {path.stem!r}")
    if not kb.answer:
        raise fail("'answer' is missing or empty", kb.lines.get("answer", 0))
    if not isinstance(kb.data.get("questions") or [], list):
        raise fail("'questions' must be a list", kb.lines.get("questions", 0))
    questions: List[str] = []
    for question in kb.questions:
        problem = annotation_problem(question.text)
        if problem:
            raise fail(f"question {problem}", question.line)
        if question.text not in questions:
            questions.append(question.text)
    if not questions:
        raise fail("'questions' is empty", kb.lines.get("questions", 0))
    return FaqEntry(
        intent=intent,
        title=str(kb.data.get("title") or intent),
        answer=kb.answer,
        questions=tuple(questions),
        path=path,
    )


def load_entry(path: Path) -> FaqEntry:
    """Reads and checks one knowledge-base file."""
    return check_entry(read_kb_file(path))


def load_placeholders(*, kb_dir: Path) -> Dict[str, str]:
    """The placeholder values, keyed by name."""
    path = kb_dir / PLACEHOLDER_FILE
    if not path.exists():
        return {}
    data = _parse_yaml(path)[1] or {}
    if not isinstance(data, dict):
        raise KnowledgeBaseError("expected a mapping of name: value", path=path)
    return {str(k): str(v) for k, v in data.items()}


def load_knowledge_base(*, kb_dir: Path) -> List[FaqEntry]:
    """All entries, sorted by intent, with cross-entry checks."""
    entries = [load_entry(path) for path in entry_paths(kb_dir)]
    if not entries:
        raise KnowledgeBaseError("no FAQ entries (*.yml) found", path=kb_dir)
    owner: Dict[str, str] = {}
    for entry in entries:
        for question in entry.questions:
            other = owner.setdefault(question, entry.intent)
            if other != entry.intent:
                raise KnowledgeBaseError(
                    f"question {question!r} is also under {other!r}; keep it in one intent only",
                    path=entry.path,
                )
    return entries


def render_answer(entry: FaqEntry, placeholders: Dict[str, str]) -> str:
    """The answer with every ``{{key}}`` replaced by its configured value."""

    def substitute(match: "re.Match[str]") -> str:
        key = match.group(1)
        if key not in placeholders:
            raise KnowledgeBaseError(
                f"placeholder {{{{{key}}}}} is not defined in {PLACEHOLDER_FILE}",
                path=entry.path,
            )
        return placeholders[key]

    return PLACEHOLDER_RE.sub(substitute, entry.answer)
