"""Training examples with the file and line they come from.

Reads Rasa NLU YAML files (``data/nlu/*.yml`` other than the generated one)
and domain intents without Rasa, keeping line numbers so lint messages and
editors can point at the exact line. Knowledge-base files are parsed by
:mod:`walletbot.faq.kb`, the builder's own parser; this module only turns
their questions into :class:`Example` rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import yaml

from walletbot.faq.kb import KbFile, entry_paths

# [text](entity) or [text]{"entity": ...}: Rasa's inline annotations.
_ANNOTATION_RE = re.compile(r"\[([^\]]*)\]\s*(?:\([^)]*\)|\{[^}]*\})")
_KEY_STRIP_RE = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Example:
    """One training example: its plain text, full label and position."""

    text: str
    label: str
    path: Path
    line: int
    raw: str = ""


class SourceError(ValueError):
    """A file could not be parsed; ``path`` and ``line`` say where."""

    def __init__(self, message: str, *, path: Path, line: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


def plain_text(raw: str) -> str:
    """An example without Rasa's entity annotations: ``[WD1](order_id)查`` → ``WD1查``."""
    return _ANNOTATION_RE.sub(lambda m: m.group(1), raw).strip()


def example_key(text: str) -> str:
    """The form in which two examples count as the same message.

    Full-width/traditional folded, lower case, punctuation and spaces removed:
    ``在吗？`` and ``在吗`` are one message to the model.
    """
    from walletbot.nlu.normalize import normalize_text

    folded = normalize_text(text).lower()
    return _KEY_STRIP_RE.sub("", folded) or folded.strip()


def _compose(path: Path) -> Optional[yaml.Node]:
    try:
        return yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SourceError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}",
            path=path, line=mark.line + 1 if mark else 0,
        ) from exc


def kb_examples(kb: KbFile) -> List[Example]:
    """The questions of a parsed knowledge-base file as ``faq/<intent>`` examples."""
    return [
        Example(text=q.text, label=kb.label, path=kb.path, line=q.line, raw=q.text)
        for q in kb.questions
    ]


@dataclass(frozen=True)
class IntentBlock:
    """One ``- intent:`` item of an NLU file."""

    intent: str
    path: Path
    line: int
    examples: List[Example]


def nlu_blocks(path: Path) -> List[IntentBlock]:
    """The intent blocks of a Rasa NLU YAML file, with the line of every example."""
    node = _compose(path)
    blocks: List[IntentBlock] = []
    if not isinstance(node, yaml.MappingNode):
        return blocks
    for key, value in node.value:
        if key.value != "nlu" or not isinstance(value, yaml.SequenceNode):
            continue
        for item in value.value:
            if not isinstance(item, yaml.MappingNode):
                continue
            fields = {k.value: v for k, v in item.value}
            intent_node = fields.get("intent")
            examples_node = fields.get("examples")
            if intent_node is None or not isinstance(intent_node, yaml.ScalarNode):
                continue
            intent = str(intent_node.value)
            examples: List[Example] = []
            if isinstance(examples_node, yaml.ScalarNode):
                first = examples_node.start_mark.line + 2 if examples_node.style in ("|", ">") \
                    else examples_node.start_mark.line + 1
                for offset, raw_line in enumerate(str(examples_node.value).split("\n")):
                    stripped = raw_line.strip()
                    if not stripped.startswith("-"):
                        continue
                    raw = stripped[1:].strip()
                    text = plain_text(raw)
                    if text:
                        examples.append(Example(text=text, label=intent, path=path,
                                                line=first + offset, raw=raw))
            blocks.append(IntentBlock(intent=intent, path=path,
                                      line=intent_node.start_mark.line + 1, examples=examples))
    return blocks


def nlu_files(nlu_dir: Path, *, exclude: Sequence[Path] = ()) -> List[Path]:
    """The NLU YAML files of a folder (or the file itself), minus ``exclude``."""
    skip = {p.resolve() for p in exclude}
    files = [nlu_dir] if nlu_dir.is_file() else sorted(nlu_dir.rglob("*.yml"))
    return [p for p in files if p.resolve() not in skip]


def all_nlu_blocks(nlu_dir: Path, *, exclude: Sequence[Path] = ()) -> Iterator[IntentBlock]:
    """Intent blocks of every NLU file in ``nlu_dir``."""
    for path in nlu_files(nlu_dir, exclude=exclude):
        yield from nlu_blocks(path)


def domain_intents(domain: Path) -> Dict[str, int]:
    """Intent names of a domain file (or folder) and the line each is declared on."""
    found: Dict[str, int] = {}
    files = [domain] if domain.is_file() else sorted(domain.rglob("*.yml"))
    for path in files:
        node = _compose(path)
        if not isinstance(node, yaml.MappingNode):
            continue
        for key, value in node.value:
            if key.value != "intents" or not isinstance(value, yaml.SequenceNode):
                continue
            for item in value.value:
                if isinstance(item, yaml.ScalarNode):
                    found.setdefault(str(item.value), item.start_mark.line + 1)
                elif isinstance(item, yaml.MappingNode) and item.value:
                    found.setdefault(str(item.value[0][0].value), item.start_mark.line + 1)
    return found


def faq_names(kb_dir: Path) -> List[str]:
    """The FAQ intents of the knowledge base (file names), without ``faq/``."""
    return [p.stem for p in entry_paths(kb_dir)] if kb_dir.is_dir() else []


def known_labels(*, domain: Path, kb_dir: Path) -> List[str]:
    """Labels a trainer may use: domain intents (``faq`` itself excluded) and ``faq/<name>``."""
    intents = [name for name in domain_intents(domain) if name != "faq"]
    return sorted(intents) + [f"faq/{name}" for name in faq_names(kb_dir)]


__all__ = [
    "Example", "IntentBlock", "SourceError", "all_nlu_blocks", "domain_intents", "example_key",
    "faq_names", "kb_examples", "known_labels", "nlu_blocks", "nlu_files", "plain_text",
]
