"""Loading and checking the FAQ knowledge base.

One YAML file per FAQ intent under ``data/faq/``::

    intent: withdraw_how
    title: 如何提现到银行卡
    answer: |-
      ...{{hotline}}...
    questions:
      - 怎么提现

``_placeholders.yml`` in the same folder holds the facts the sources do not
give (a hotline, a fee); answers refer to them as ``{{key}}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import yaml

PLACEHOLDER_FILE = "_placeholders.yml"
PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
# Rasa's inline entity syntax; a question must not contain it by accident.
_ANNOTATION_CHARS = re.compile(r"[\[\]{}]")
_INTENT_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class KnowledgeBaseError(ValueError):
    """The knowledge base has an error a trainer must fix; the message says where."""


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


def load_placeholders(*, kb_dir: Path) -> Dict[str, str]:
    """The placeholder values, keyed by name."""
    path = kb_dir / PLACEHOLDER_FILE
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise KnowledgeBaseError(f"{path}: expected a mapping of name: value")
    return {str(k): str(v) for k, v in data.items()}


def load_entry(path: Path) -> FaqEntry:
    """Reads and checks one knowledge-base file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeBaseError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise KnowledgeBaseError(f"{path}: expected keys intent, title, answer, questions")
    intent = str(data.get("intent") or "")
    if not _INTENT_RE.match(intent):
        raise KnowledgeBaseError(
            f"{path}: 'intent' must be lower_snake_case, got {intent!r}"
        )
    if intent != path.stem:
        raise KnowledgeBaseError(
            f"{path}: intent {intent!r} must match the file name {path.stem!r}"
        )
    answer = str(data.get("answer") or "").strip()
    if not answer:
        raise KnowledgeBaseError(f"{path}: 'answer' is missing or empty")
    raw_questions = data.get("questions") or []
    if not isinstance(raw_questions, list):
        raise KnowledgeBaseError(f"{path}: 'questions' must be a list")
    questions: List[str] = []
    for raw in raw_questions:
        question = " ".join(str(raw).split())
        if not question:
            continue
        if _ANNOTATION_CHARS.search(question):
            raise KnowledgeBaseError(
                f"{path}: question {question!r} contains [ ] {{ }}, which Rasa "
                "reads as an entity annotation; rephrase it"
            )
        if question not in questions:
            questions.append(question)
    if not questions:
        raise KnowledgeBaseError(f"{path}: 'questions' is empty")
    return FaqEntry(
        intent=intent,
        title=str(data.get("title") or intent),
        answer=answer,
        questions=tuple(questions),
        path=path,
    )


def load_knowledge_base(*, kb_dir: Path) -> List[FaqEntry]:
    """All entries, sorted by intent, with cross-entry checks."""
    entries = [
        load_entry(path)
        for path in sorted(kb_dir.glob("*.yml"))
        if not path.name.startswith("_")
    ]
    if not entries:
        raise KnowledgeBaseError(f"{kb_dir}: no FAQ entries (*.yml) found")
    owner: Dict[str, str] = {}
    for entry in entries:
        for question in entry.questions:
            other = owner.setdefault(question, entry.intent)
            if other != entry.intent:
                raise KnowledgeBaseError(
                    f"{entry.path}: question {question!r} is also under {other!r}; "
                    "keep it in one intent only"
                )
    return entries


def render_answer(entry: FaqEntry, placeholders: Dict[str, str]) -> str:
    """The answer with every ``{{key}}`` replaced by its configured value."""

    def substitute(match: "re.Match[str]") -> str:
        key = match.group(1)
        if key not in placeholders:
            raise KnowledgeBaseError(
                f"{entry.path}: placeholder {{{{{key}}}}} is not defined in "
                f"{PLACEHOLDER_FILE}"
            )
        return placeholders[key]

    return PLACEHOLDER_RE.sub(substitute, entry.answer)
