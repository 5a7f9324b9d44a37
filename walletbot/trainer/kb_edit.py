"""Adding examples to the knowledge base and the NLU data, keeping files as written.

``faq/<name>`` examples go to ``data/faq/<name>.yml`` (its ``questions``), other
intents to the NLU file that already holds them (``data/nlu/conversation.yml``
for a new one). Files are edited as text, so comments and layout stay; every
edit is re-parsed and checked before it replaces the file. A batch is checked
in full before anything is written: an unknown intent or an example already
under another intent stops it with nothing changed.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import yaml

from walletbot.faq.kb import annotation_problem, entry_paths, is_intent_name, read_kb_file
from walletbot.trainer import sources as src


class EditError(ValueError):
    """The batch cannot be applied; the message lists every problem."""


@dataclass(frozen=True)
class Addition:
    """One example to add: its label, text and where the request came from."""

    label: str
    text: str
    origin: str = ""


@dataclass(frozen=True)
class NewFaq:
    """A new FAQ entry to create."""

    name: str
    title: str
    answer: str


@dataclass
class Plan:
    """What a batch will do once checked."""

    add: Dict[str, List[str]] = field(default_factory=dict)
    present: List[Addition] = field(default_factory=list)
    create: Dict[str, NewFaq] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Examples that will be written."""
        return sum(len(v) for v in self.add.values())


@dataclass(frozen=True)
class Paths:
    """The files a batch may touch."""

    kb_dir: Path
    nlu_dir: Path
    faq_nlu: Path
    conversation_nlu: Path
    domain: Path


def normalize_label(label: str) -> str:
    """``faq/x`` stays, `` FAQ / x `` → ``faq/x``."""
    if "/" not in label:
        return label.strip()
    head, tail = label.split("/", 1)
    return f"{head.strip().lower()}/{tail.strip()}"


def _existing(paths: Paths) -> Tuple[Dict[str, str], Dict[str, List[src.Example]]]:
    """``(key → label, label → examples)`` of everything already in the data."""
    owner: Dict[str, str] = {}
    by_label: Dict[str, List[src.Example]] = defaultdict(list)
    examples: List[src.Example] = []
    for path in entry_paths(paths.kb_dir) if paths.kb_dir.is_dir() else []:
        examples += src.kb_examples(read_kb_file(path))
    if paths.nlu_dir.exists():
        for block in src.all_nlu_blocks(paths.nlu_dir, exclude=[paths.faq_nlu]):
            examples += block.examples
    for example in examples:
        owner.setdefault(src.example_key(example.text), example.label)
        by_label[example.label].append(example)
    return owner, by_label


def plan(
    additions: Sequence[Addition],
    *,
    paths: Paths,
    new_faqs: Optional[Dict[str, NewFaq]] = None,
) -> Plan:
    """Checks a batch against the data and says what it will change.

    Raises:
        EditError: unknown intents, texts Rasa would misread, or examples
            that already belong to another intent (all listed at once).
    """
    new_faqs = dict(new_faqs or {})
    known = set(src.known_labels(domain=paths.domain, kb_dir=paths.kb_dir))
    known |= {f"faq/{name}" for name in new_faqs}
    owner, _ = _existing(paths)
    problems: List[str] = []
    result = Plan(create=new_faqs)
    seen_in_batch: Dict[str, str] = {}
    for item in additions:
        where = f"{item.origin}: " if item.origin else ""
        text = " ".join(item.text.split())
        label = normalize_label(item.label)
        if not text:
            continue
        if label == "faq":
            problems.append(f"{where}'faq' alone is not an intent; use faq/<name> (e.g. faq/withdraw_fee)")
            continue
        if label not in known:
            hint = "" if label.startswith("faq/") else f" (did you mean faq/{label}?)" \
                if f"faq/{label}" in known else ""
            problems.append(f"{where}unknown intent {label!r}{hint}")
            continue
        problem = annotation_problem(text)
        if problem:
            problems.append(f"{where}{problem}")
            continue
        key = src.example_key(text)
        current = owner.get(key) or seen_in_batch.get(key)
        if current == label:
            result.present.append(Addition(label=label, text=text, origin=item.origin))
            continue
        if current is not None:
            problems.append(f"{where}{text!r} is already an example of {current}, not {label}")
            continue
        seen_in_batch[key] = label
        result.add.setdefault(label, []).append(text)
    if problems:
        known_text = ", ".join(sorted(known))
        raise EditError(
            "nothing was changed:\n  " + "\n  ".join(problems) + f"\nknown intents: {known_text}"
        )
    return result


def yaml_scalar(text: str) -> str:
    """``text`` as a one-line YAML scalar, quoted only when YAML needs it (``'88'``)."""
    dumped = yaml.safe_dump([text], allow_unicode=True, width=10_000)
    return dumped[2:].rstrip("\n")


def _replace_verified(path: Path, text: str, check: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        check(tmp)
    except Exception:
        tmp.unlink()
        raise
    os.replace(tmp, path)


def add_faq_questions(*, path: Path, questions: Sequence[str]) -> None:
    """Appends ``questions`` to a knowledge-base file's ``questions`` list.

    The file is edited as text at the positions its YAML nodes give; the
    result is read back with the knowledge base's parser and must hold the
    same data plus the new questions.
    """
    text = path.read_text(encoding="utf-8")
    before = read_kb_file(path).data
    node = yaml.compose(text)
    pair = next(((k, v) for k, v in node.value if k.value == "questions"), None) \
        if isinstance(node, yaml.MappingNode) else None
    items = "".join(f"\n  - {yaml_scalar(q)}" for q in questions)
    if pair is None:
        new_text = text.rstrip("\n") + "\nquestions:" + items + "\n"
    else:
        key, value = pair
        block = isinstance(value, yaml.SequenceNode) and not value.flow_style and value.value
        if block:
            last = value.value[-1]
            line_start = text.rfind("\n", 0, last.start_mark.index) + 1
            indent = text[line_start:last.start_mark.index]
            indent = indent[: indent.index("-")] if "-" in indent else "  "
            items = "".join(f"\n{indent}- {yaml_scalar(q)}" for q in questions)
            new_text = text[: last.end_mark.index] + items + text[last.end_mark.index:]
        else:
            old = [str(q) for q in (before.get("questions") or [])]
            listed = "".join(f"\n  - {yaml_scalar(q)}" for q in old + list(questions))
            new_text = text[: key.start_mark.index] + "questions:" + listed \
                + text[value.end_mark.index:]

    def check(tmp: Path) -> None:
        after = read_kb_file(tmp).data
        expected = [str(q) for q in (before.get("questions") or [])] + list(questions)
        if [str(q) for q in after.get("questions") or []] != expected or \
                {k: v for k, v in after.items() if k != "questions"} != \
                {k: v for k, v in before.items() if k != "questions"}:
            raise EditError(f"{path}: could not add the questions safely; add them by hand")

    _replace_verified(path, new_text, check)


def create_faq(*, path: Path, entry: NewFaq, questions: Sequence[str]) -> None:
    """Writes a new knowledge-base file."""
    answer = "\n".join("  " + line if line else "" for line in entry.answer.strip().split("\n"))
    text = (
        f"# FAQ knowledge base entry: the source of truth for faq/{entry.name}.\n"
        f"intent: {entry.name}\n"
        f"title: {yaml_scalar(entry.title)}\n"
        f"answer: |-\n{answer}\n"
        "questions:\n" + "".join(f"  - {yaml_scalar(q)}\n" for q in questions)
    )

    def check(tmp: Path) -> None:
        data = read_kb_file(tmp).data
        if data.get("answer") != entry.answer.strip() or \
                [str(q) for q in data.get("questions") or []] != list(questions):
            raise EditError(f"{path}: could not write the entry safely")

    if path.exists():
        raise EditError(f"{path} already exists")
    _replace_verified(path, text, check)


def _nlu_examples(path: Path) -> Dict[str, List[str]]:
    return {b.intent: [e.raw for e in b.examples] for b in src.nlu_blocks(path)}


def add_nlu_examples(*, path: Path, intent: str, examples: Sequence[str]) -> None:
    """Appends examples to ``intent``'s block in an NLU file (a new block if it has none)."""
    text = path.read_text(encoding="utf-8") if path.exists() else 'version: "3.1"\nnlu:\n'
    lines = text.split("\n")
    block = next((b for b in src.nlu_blocks(path) if b.intent == intent), None) \
        if path.exists() else None
    if block is not None and block.examples:
        last = block.examples[-1].line  # 1-based
        indent = lines[last - 1][: len(lines[last - 1]) - len(lines[last - 1].lstrip())]
        lines[last:last] = [f"{indent}- {e}" for e in examples]
        new_text = "\n".join(lines)
    else:
        if block is not None:
            raise EditError(f"{path}:{block.line}: {intent} has an examples block I cannot "
                            "extend; add the examples by hand")
        new_block = (
            f"- intent: {intent}\n  examples: |\n" + "".join(f"    - {e}\n" for e in examples)
        )
        new_text = _insert_nlu_block(text, new_block)
    before = _nlu_examples(path) if path.exists() else {}

    def check(tmp: Path) -> None:
        after = _nlu_examples(tmp)
        expected = dict(before)
        expected[intent] = before.get(intent, []) + list(examples)
        if after != expected:
            raise EditError(f"{path}: could not add the examples safely; add them by hand")

    _replace_verified(path, new_text, check)


def _insert_nlu_block(text: str, new_block: str) -> str:
    """``text`` with ``new_block`` appended to its ``nlu:`` list."""
    node = yaml.compose(text)
    nlu = next((v for k, v in node.value if k.value == "nlu"), None) \
        if isinstance(node, yaml.MappingNode) else None
    if nlu is None:
        return text.rstrip("\n") + "\nnlu:\n" + new_block
    if not isinstance(nlu, yaml.SequenceNode) or nlu.flow_style:
        raise EditError("the nlu: section is not a block list; add the examples by hand")
    if not nlu.value:
        return text.rstrip("\n") + "\n" + new_block
    end = nlu.end_mark.index
    head = text[:end].rstrip("\n") + "\n\n"
    return head + new_block + ("\n" + text[end:] if text[end:].strip() else "")


def apply(result: Plan, *, paths: Paths) -> Dict[Path, int]:
    """Writes a checked plan; returns how many examples went to each file."""
    written: Dict[Path, int] = {}
    for label, texts in sorted(result.add.items()):
        if label.startswith("faq/"):
            name = label.split("/", 1)[1]
            path = paths.kb_dir / f"{name}.yml"
            if name in result.create and not path.exists():
                create_faq(path=path, entry=result.create[name], questions=texts)
            else:
                add_faq_questions(path=path, questions=texts)
        else:
            path = next(
                (b.path for b in src.all_nlu_blocks(paths.nlu_dir, exclude=[paths.faq_nlu])
                 if b.intent == label),
                paths.conversation_nlu,
            ) if paths.nlu_dir.exists() else paths.conversation_nlu
            add_nlu_examples(path=path, intent=label, examples=texts)
        written[path] = written.get(path, 0) + len(texts)
    return written


def check_new_faq(name: str, *, kb_dir: Path, answer: str) -> None:
    """Raises EditError unless ``faq/<name>`` can be created with ``answer``."""
    if not is_intent_name(name):
        raise EditError(f"faq/{name}: the name must be lower_snake_case (e.g. faq/card_unbind)")
    if (kb_dir / f"{name}.yml").exists():
        raise EditError(f"faq/{name} already exists in {kb_dir}/")
    if not answer.strip():
        raise EditError(f"faq/{name} is new: give its answer (--answer)")


def read_rows(path: Path) -> List[Dict[str, str]]:
    """Rows of a CSV or YAML file as dicts of strings, with ``_origin`` = file:line.

    CSV: a header row (``intent`` and ``text`` or ``question``; optional
    ``answer``, ``title``). YAML: a list of mappings with the same keys;
    ``questions`` may be a list.
    """
    if path.suffix.lower() in (".yml", ".yaml"):
        return _read_yaml_rows(path)
    import csv

    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        rows = []
        for row in reader:
            clean = {str(k).strip().lower(): _unneutralise((v or "").strip())
                     for k, v in row.items() if k}
            clean["_origin"] = f"{path.name}:{reader.line_num}"
            rows.append(clean)
        return rows


def _unneutralise(value: str) -> str:
    """Undoes the export's formula guard: ``'=…`` back to ``=…`` (see review_file.neutralise)."""
    from walletbot.trainer.review_file import FORMULA_STARTS

    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_STARTS:
        return value[1:]
    return value


def _read_yaml_rows(path: Path) -> List[Dict[str, str]]:
    node = yaml.compose(path.read_text(encoding="utf-8"))
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if isinstance(data, dict):
        data = data.get("items") or data.get("examples") or []
    if not isinstance(data, list):
        raise EditError(f"{path}: expected a list of entries")
    item_nodes = node.value if isinstance(node, yaml.SequenceNode) else []
    rows: List[Dict[str, str]] = []
    for n, item in enumerate(data):
        if not isinstance(item, dict):
            continue
        line = item_nodes[n].start_mark.line + 1 if n < len(item_nodes) else 0
        origin = f"{path.name}:{line}"
        base = {str(k).lower(): "" if v is None else str(v).strip()
                for k, v in item.items() if not isinstance(v, list)}
        questions = item.get("questions")
        if isinstance(questions, list):
            for q in questions:
                rows.append({**base, "text": str(q), "_origin": origin})
        else:
            rows.append({**base, "_origin": origin})
    return rows


def row_text(row: Dict[str, str]) -> str:
    """The example of a row (``text`` or ``question`` column)."""
    return row.get("text") or row.get("question") or row.get("example") or ""


def additions_from_rows(rows: Iterable[Dict[str, str]]) -> List[Addition]:
    """Labelled rows as additions; rows without an intent (or ``-``) are skipped."""
    out = []
    for row in rows:
        label = (row.get("intent") or "").strip()
        if not label or label == "-":
            continue
        out.append(Addition(label=label, text=row_text(row), origin=row.get("_origin", "")))
    return out
