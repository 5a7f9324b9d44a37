"""Lint of the knowledge base and NLU data, beyond what ``rasa data validate`` checks.

Errors (``walletbot validate`` exits non-zero):
  * a file that does not parse or breaks the knowledge-base format;
  * an example under two intents (compared after folding width, script,
    case and punctuation);
  * an intent with fewer than ``min_examples`` examples (domain intents
    without any example included);
  * an answer that is missing or empty, or names an undefined ``{{placeholder}}``;
  * ``data/nlu/faq.yml`` out of date with the knowledge base.

Warnings (errors with ``strict``):
  * near-duplicate examples under different intents (TF-IDF cosine similarity
    of character 1-3-grams, digits collapsed, at least ``near_duplicate``):
    often a deliberate contrast (交易密码忘了 / 密码忘了), so only a warning;
  * answers that still show a placeholder (``【待配置：…】``): the project ships
    with them on purpose until the real facts are known.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from walletbot.faq.kb import (
    PLACEHOLDER_FILE,
    PLACEHOLDER_RE,
    InvalidYamlError,
    KbFile,
    KnowledgeBaseError,
    check_entry,
    entry_paths,
    load_placeholders,
    read_kb_file,
)
from walletbot.trainer import sources as src

ERROR = "error"
WARNING = "warning"
PLACEHOLDER_MARK = "待配置"
DEFAULT_MIN_EXAMPLES = 10
DEFAULT_NEAR_DUPLICATE = 0.85
_DIGITS_RE = re.compile(r"\d{4,}")


@dataclass(frozen=True)
class Issue:
    """One finding, with where to fix it."""

    severity: str
    path: Path
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.severity}: {self.message} [{self.code}]"


def _where(example: src.Example) -> str:
    return f"{example.path}:{example.line}"


def _check_kb_file(
    kb: KbFile, placeholders: Dict[str, str], *, strict: bool
) -> List[Issue]:
    issues: List[Issue] = []
    path = kb.path

    def add(severity: str, line: int, code: str, message: str) -> None:
        issues.append(Issue(severity, path, line, code, message))

    # The answer is checked here, ahead of the format rules, to tell a missing
    # answer from an empty one and to check its placeholders.
    answer = kb.answer
    if "answer" not in kb.data:
        add(ERROR, 1, "answer-missing", "no 'answer': add the text the bot replies with")
    elif not answer:
        add(ERROR, kb.lines.get("answer", 1), "answer-empty",
            "'answer' is empty: write the text the bot replies with")
    else:
        line = kb.lines.get("answer", 1)
        unfilled = []
        for key in sorted(set(PLACEHOLDER_RE.findall(answer))):
            if key not in placeholders:
                add(ERROR, line, "placeholder-undefined",
                    f"answer uses {{{{{key}}}}}, which {PLACEHOLDER_FILE} does not define")
            elif PLACEHOLDER_MARK in placeholders[key]:
                unfilled.append(f"{{{{{key}}}}}")
        if PLACEHOLDER_MARK in PLACEHOLDER_RE.sub("", answer):
            unfilled.append("【待配置】 in the text")
        if unfilled:
            add(ERROR if strict else WARNING, line, "placeholder-unfilled",
                f"answer still shows a placeholder: {', '.join(unfilled)}; set the real value "
                f"in {PLACEHOLDER_FILE} before going live")
    if not issues or all(i.severity == WARNING for i in issues):
        try:
            check_entry(kb)
        except KnowledgeBaseError as exc:
            add(ERROR, exc.line or 1, "kb-format", exc.problem)
    return issues


def _yaml_issue(exc: InvalidYamlError) -> Issue:
    """A knowledge-base file that does not parse, reported like an NLU file that does not."""
    return Issue(ERROR, exc.path, exc.line, "yaml", exc.summary)


def _duplicates(examples: Sequence[src.Example]) -> List[Issue]:
    by_key: Dict[str, List[src.Example]] = defaultdict(list)
    for example in examples:
        by_key[src.example_key(example.text)].append(example)
    issues = []
    for group in by_key.values():
        labels = sorted({e.label for e in group})
        if len(labels) < 2:
            continue
        first = {}
        for example in group:
            first.setdefault(example.label, example)
        for example in first.values():
            others = ", ".join(
                f"{o.label} ({_where(o)})" for o in first.values() if o.label != example.label
            )
            issues.append(Issue(
                ERROR, example.path, example.line, "duplicate-example",
                f"example {example.text!r} is also under {others}; keep it under one intent",
            ))
    return issues


def near_duplicate_pairs(
    examples: Sequence[src.Example], *, threshold: float
) -> List[Tuple[src.Example, src.Example, float]]:
    """Pairs of examples under different intents with cosine similarity ≥ ``threshold``."""
    if len(examples) < 2:
        return []
    from sklearn.feature_extraction.text import TfidfVectorizer

    keys = [src.example_key(e.text) for e in examples]
    # Order numbers (12 digits) differ in digits only; collapse long digit runs.
    # Bare numbers (a rating, an amount) are only compared exactly.
    shapes = [_DIGITS_RE.sub("0", key) for key in keys]
    vectors = TfidfVectorizer(analyzer="char", ngram_range=(1, 3)).fit_transform(shapes)
    similarity = (vectors @ vectors.T).tocoo()
    pairs = []
    for i, j, value in zip(similarity.row, similarity.col, similarity.data):
        if i < j and value >= threshold - 1e-9 and examples[i].label != examples[j].label \
                and keys[i] != keys[j] and not (keys[i].isdigit() or keys[j].isdigit()):
            pairs.append((examples[i], examples[j], float(value)))
    return sorted(pairs, key=lambda t: (str(t[0].path), t[0].line, t[1].line))


def _near_duplicates(
    examples: Sequence[src.Example], *, threshold: float, strict: bool
) -> List[Issue]:
    return [
        Issue(
            ERROR if strict else WARNING, a.path, a.line, "near-duplicate",
            f"{a.text!r} ({a.label}) is nearly the same as {b.text!r} ({b.label}, {_where(b)}, "
            f"similarity {value:.2f}); make them distinct or move one",
        )
        for a, b, value in near_duplicate_pairs(examples, threshold=threshold)
    ]


def _too_few(
    examples: Sequence[src.Example],
    *,
    min_examples: int,
    anchors: Dict[str, Tuple[Path, int]],
) -> List[Issue]:
    counts = Counter(e.label for e in examples)
    issues = []
    for label in sorted(anchors):
        count = counts.get(label, 0)
        if count < min_examples:
            path, line = anchors[label]
            issues.append(Issue(
                ERROR, path, line, "too-few-examples",
                f"{label} has {count} example{'s' if count != 1 else ''}, fewer than "
                f"{min_examples}: add more varied ones (the model cannot learn it otherwise)",
            ))
    return issues


def lint(
    *,
    kb_dir: Path,
    nlu_dir: Path,
    faq_nlu: Path,
    domain: Optional[Path] = None,
    min_examples: int = DEFAULT_MIN_EXAMPLES,
    near_duplicate: float = DEFAULT_NEAR_DUPLICATE,
    strict: bool = False,
) -> List[Issue]:
    """Every finding in the knowledge base and NLU data, sorted by file and line.

    Args:
        kb_dir: FAQ knowledge base folder (``data/faq``).
        nlu_dir: NLU data folder (``data/nlu``); the generated ``faq_nlu`` is skipped.
        faq_nlu: the file ``walletbot faq build`` generates.
        domain: the domain, whose intents must all have examples (optional).
        min_examples: fewest examples an intent may have.
        near_duplicate: similarity from which examples of two intents are reported.
        strict: report near-duplicates and unfilled placeholders as errors.
    """
    from walletbot.faq.build import is_up_to_date

    issues: List[Issue] = []
    examples: List[src.Example] = []
    anchors: Dict[str, Tuple[Path, int]] = {}
    kb_ok = True
    try:
        placeholders = load_placeholders(kb_dir=kb_dir)
    except InvalidYamlError as exc:
        issues.append(_yaml_issue(exc))
        placeholders, kb_ok = {}, False
    except KnowledgeBaseError as exc:
        issues.append(Issue(ERROR, kb_dir / PLACEHOLDER_FILE, 1, "kb-format", str(exc)))
        placeholders, kb_ok = {}, False
    kb_paths = entry_paths(kb_dir) if kb_dir.is_dir() else []
    if kb_dir.is_dir() and not kb_paths:
        issues.append(Issue(ERROR, kb_dir, 0, "kb-format", "no FAQ entries (*.yml)"))
    for path in kb_paths:
        try:
            kb = read_kb_file(path)
        except InvalidYamlError as exc:
            issues.append(_yaml_issue(exc))
            kb_ok = False
            continue
        found = _check_kb_file(kb, placeholders, strict=strict)
        kb_ok = kb_ok and not any(i.severity == ERROR and i.code != "placeholder-unfilled"
                                  for i in found)
        issues += found
        anchors[kb.label] = (path, kb.lines.get("questions", 1))
        examples += src.kb_examples(kb)
    nlu_paths = src.nlu_files(nlu_dir, exclude=[faq_nlu]) if nlu_dir.exists() else []
    for path in nlu_paths:
        try:
            blocks = src.nlu_blocks(path)
        except src.SourceError as exc:
            issues.append(Issue(ERROR, exc.path, exc.line, "yaml", str(exc)))
            continue
        for block in blocks:
            anchors.setdefault(block.intent, (block.path, block.line))
            examples += block.examples
    if domain is not None and domain.exists():
        for name, line in src.domain_intents(domain).items():
            if name != "faq":
                anchors.setdefault(name, (domain, line))
    issues += _duplicates(examples)
    issues += _near_duplicates(examples, threshold=near_duplicate, strict=strict)
    issues += _too_few(examples, min_examples=min_examples, anchors=anchors)
    if kb_ok and kb_paths:
        try:
            if not is_up_to_date(kb_dir=kb_dir, out_path=faq_nlu):
                issues.append(Issue(
                    ERROR, faq_nlu, 0, "generated-stale",
                    f"out of date with {kb_dir}/: run `walletbot faq build`",
                ))
        except KnowledgeBaseError as exc:
            issues.append(Issue(ERROR, kb_dir, 0, "kb-format", str(exc)))
    return sorted(issues, key=lambda i: (str(i.path), i.line, i.code))


def count(issues: Iterable[Issue], severity: str) -> int:
    """How many issues have ``severity``."""
    return sum(1 for i in issues if i.severity == severity)
