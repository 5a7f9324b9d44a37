"""The agents' canned replies (快捷回复): the file format, its lint, and filling one in.

Trainers keep them in one YAML file (``DESK_CANNED_FILE``, default
``data/desk/canned.yml``), reviewed like the FAQ knowledge base::

    replies:
      - id: ask_order_number
        shortcut: order            # typed after "/" in the reply box
        title: 请提供订单号
        text: |-
          {greeting}，为了帮您核实这笔交易，请提供订单号。
        tags: [订单, 交易]           # optional, also matched by the picker

``text`` may use the variables of :data:`VARIABLES` (``{user_name}``,
``{ticket}``…), filled in for the ticket the agent works on, and the facts
the sources do not give as ``{{key}}`` from the placeholder file
(``DESK_CANNED_PLACEHOLDERS``, by default the knowledge base's
``data/faq/_placeholders.yml``, so a hotline set once reaches both).

:func:`lint` finds every problem with its file, line and reply;
``walletbot validate`` prints them (:func:`report`), and the desk refuses to
start on an error (:func:`load`). Filling is one pass over the template: what
a variable brings in (a user's name) is never expanded again.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, TextIO, Tuple

import yaml

from walletbot.faq.kb import PLACEHOLDER_RE
from walletbot.privacy import contains_pii
from walletbot.trainer.lint import Issue

ERROR = "error"
WARNING = "warning"
PLACEHOLDER_MARK = "待配置"
MAX_TEXT_CHARS = 500
MAX_TITLE_CHARS = 20
MAX_TAG_CHARS = 10
# What a template may name, and what each one is filled with.
VARIABLES: Mapping[str, str] = {
    "user_name": "the user's name; 用户 when the conversation is not bound to an account",
    "greeting": "张三您好 for a known user, else 您好",
    "ticket": "the ticket number, e.g. T000012",
    "agent_name": "the agent's display name, e.g. 小王",
}
NEUTRAL_USER_NAME = "用户"
NEUTRAL_GREETING = "您好"
KEYS = ("id", "shortcut", "title", "text", "tags")
REQUIRED = ("id", "shortcut", "title", "text")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SHORTCUT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,15}$")
_VARIABLE_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# One pass over both kinds of token: {{fact}} first, so its braces are not read as {var}.
_TOKEN_RE = re.compile(PLACEHOLDER_RE.pattern + r"|" + _VARIABLE_RE.pattern)
_BARE_PLACEHOLDER_RE = re.compile(r"【[^】]*" + PLACEHOLDER_MARK + r"[^】]*】")


# Findings print like the knowledge-base lint's (``path:line: severity: … [code]``).
Finding = Issue


@dataclass(frozen=True)
class CannedReply:
    """One canned reply as written (the template, not yet filled)."""

    reply_id: str
    shortcut: str
    title: str
    text: str
    tags: Tuple[str, ...] = ()


class CannedRepliesError(ValueError):
    """The canned replies file has errors; the message lists each with its line."""


def fill(template: str, variables: Mapping[str, str], facts: Mapping[str, str]) -> str:
    """The template with its variables and ``{{facts}}`` replaced, in one pass.

    Inserted values are never scanned again, so a user named ``{ticket}`` stays
    ``{ticket}``. A token the lint would have refused is left as it is.
    """
    def value(match: "re.Match[str]") -> str:
        fact, variable = match.group(1), match.group(2)
        if fact is not None:
            return facts.get(fact, match.group(0))
        return variables.get(variable, match.group(0))

    return _TOKEN_RE.sub(value, template)


def ticket_variables(*, user_name: Optional[str], ticket_number: str,
                     agent_name: str) -> Dict[str, str]:
    """The values of :data:`VARIABLES` for one ticket (neutral forms for an unknown user)."""
    name = " ".join(str(user_name or "").split())
    return {
        "user_name": name or NEUTRAL_USER_NAME,
        "greeting": f"{name}您好" if name else NEUTRAL_GREETING,
        "ticket": ticket_number,
        "agent_name": " ".join(str(agent_name).split()),
    }


def is_unfilled(text: str) -> bool:
    """Whether a (filled) text still shows a placeholder the agent must replace."""
    return PLACEHOLDER_MARK in text


@dataclass(frozen=True)
class CannedLibrary:
    """The replies of a file that passed the lint, and the facts they refer to."""

    replies: Tuple[CannedReply, ...]
    facts: Mapping[str, str] = field(default_factory=dict)
    warnings: Tuple[Finding, ...] = ()

    def filled(self, variables: Mapping[str, str]) -> List[Dict[str, Any]]:
        """Every reply, its text filled, as the desk API returns them."""
        result = []
        for reply in self.replies:
            text = fill(reply.text, variables, self.facts)
            result.append({
                "id": reply.reply_id, "shortcut": reply.shortcut, "title": reply.title,
                "text": text, "tags": list(reply.tags), "unfilled": is_unfilled(text),
            })
        return result


# --- reading ---------------------------------------------------------------------


def read_facts(path: Path) -> Dict[str, str]:
    """The placeholder file: ``key: value`` facts (values marked 【待配置：…】 until known).

    Raises:
        CannedRepliesError: The file is missing, not YAML, or not a mapping.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise CannedRepliesError(
            f"placeholder file {path} not found: set DESK_CANNED_PLACEHOLDERS") from None
    except yaml.YAMLError as exc:
        raise CannedRepliesError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CannedRepliesError(f"{path}: expected a mapping of name: value")
    return {str(k): str(v) for k, v in data.items()}


@dataclass
class _Entry:
    """An entry of the file with the line of the entry and of each key."""

    data: Dict[str, Any]
    line: int
    lines: Dict[str, int]

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)

    @property
    def label(self) -> str:
        raw = self.data.get("id")
        return f"reply {raw!r}" if isinstance(raw, str) and raw else f"the reply at line {self.line}"


def _entries(path: Path, findings: List[Finding]) -> List[_Entry]:
    """The file's entries (with lines); file-level problems go to ``findings``."""
    def fail(line: int, code: str, message: str) -> List[_Entry]:
        findings.append(Finding(ERROR, path, line, code, message))
        return []

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return fail(0, "file-missing", "canned replies file not found: set DESK_CANNED_FILE")
    try:
        node, data = yaml.compose(text), yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return fail(mark.line + 1 if mark else 0, "yaml",
                    f"invalid YAML: {getattr(exc, 'problem', None) or exc}")
    replies_node = None
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "replies":
                replies_node = value
    if not isinstance(data, dict) or "replies" not in data:
        return fail(1, "format", "expected a mapping with a 'replies:' list")
    extra = sorted(str(k) for k in data if k != "replies")
    if extra:
        fail(1, "format", f"unknown top-level key(s) {', '.join(extra)}: only 'replies' is read")
    if not isinstance(data["replies"], list) or not isinstance(replies_node, yaml.SequenceNode):
        return fail(replies_node.start_mark.line + 1 if replies_node else 1, "format",
                    "'replies' must be a list of replies")
    if not data["replies"]:
        return fail(replies_node.start_mark.line + 1, "format", "'replies' is empty")
    entries = []
    for raw, item in zip(data["replies"], replies_node.value):
        lines = {}
        if isinstance(item, yaml.MappingNode):
            lines = {str(k.value): k.start_mark.line + 1 for k, _ in item.value}
        entry = _Entry(raw if isinstance(raw, dict) else {}, item.start_mark.line + 1, lines)
        if not isinstance(raw, dict):
            fail(entry.line, "format", f"{entry.label}: expected keys {', '.join(REQUIRED)}")
            continue
        entries.append(entry)
    return entries


# --- the lint ----------------------------------------------------------------------


def _check_text(entry: _Entry, text: str, facts: Mapping[str, str], *, strict: bool,
                facts_file: str, add: Any) -> None:
    line = entry.line_of("text")
    if len(text) > MAX_TEXT_CHARS:
        add(ERROR, line, "too-long", f"text has {len(text)} characters, more than "
            f"{MAX_TEXT_CHARS}: keep a canned reply short (split it in two)")
    unfilled = []
    for key in sorted(set(PLACEHOLDER_RE.findall(text))):
        if key not in facts:
            add(ERROR, line, "placeholder-undefined",
                f"text uses {{{{{key}}}}}, which {facts_file} does not define "
                f"(known: {', '.join(sorted(facts)) or 'none'})")
        elif PLACEHOLDER_MARK in facts[key]:
            unfilled.append(f"{{{{{key}}}}}")
    without_facts = PLACEHOLDER_RE.sub("", text)
    for name in sorted(set(_VARIABLE_RE.findall(without_facts))):
        if name not in VARIABLES:
            add(ERROR, line, "unknown-variable",
                f"text uses {{{name}}}, which is not a variable "
                f"(variables: {', '.join('{' + v + '}' for v in VARIABLES)})")
    bare = _VARIABLE_RE.sub("", without_facts)
    if "{" in bare or "}" in bare:
        add(ERROR, line, "stray-brace",
            "text has a { or } that is not part of a {variable} or {{placeholder}}")
    if _BARE_PLACEHOLDER_RE.search(without_facts):
        add(ERROR, line, "placeholder-inline",
            f"text writes a 【{PLACEHOLDER_MARK}…】 placeholder itself: add it to "
            f"{facts_file} and refer to it as {{{{key}}}}")
    if contains_pii(_TOKEN_RE.sub("", text)):
        add(ERROR, line, "pii", "text contains what looks like personal data (a card, ID or "
            "phone number, a password or code): a canned reply goes to every user, leave it out")
    if unfilled:
        add(ERROR if strict else WARNING, line, "placeholder-unfilled",
            f"text still shows a placeholder: {', '.join(unfilled)}; set the real value in "
            f"{facts_file} before going live")


def _check_entry(entry: _Entry, facts: Mapping[str, str], *, strict: bool, facts_file: str,
                 add: Any) -> Optional[CannedReply]:
    """Adds the entry's own problems; the reply when it has no error."""
    errors_before = add.errors
    data, label = entry.data, entry.label

    def problem(key: str, code: str, message: str) -> None:
        add(ERROR, entry.line_of(key), code, f"{label}: {message}")

    unknown = sorted(str(k) for k in data if k not in KEYS)
    if unknown:
        problem(unknown[0], "unknown-key", f"unknown key(s) {', '.join(unknown)} "
                f"(keys: {', '.join(KEYS)})")
    for key in REQUIRED:
        if key not in data:
            problem(key, "missing", f"no '{key}'")
    reply_id, shortcut = data.get("id"), data.get("shortcut")
    if "id" in data and not (isinstance(reply_id, str) and _ID_RE.match(reply_id)):
        problem("id", "bad-id", f"'id' must be lower_snake_case, got {reply_id!r}")
    if "shortcut" in data and not (isinstance(shortcut, str) and _SHORTCUT_RE.match(shortcut)):
        problem("shortcut", "bad-shortcut", "'shortcut' must be 1-16 lower-case ASCII letters, "
                f"digits, - or _ (typed after /), got {shortcut!r}")
    title = data.get("title")
    if "title" in data:
        if not isinstance(title, str) or not title.strip():
            problem("title", "empty-title", "'title' is empty: name the reply for the picker")
        elif len(title.strip()) > MAX_TITLE_CHARS:
            problem("title", "too-long", f"'title' is longer than {MAX_TITLE_CHARS} characters")
        elif contains_pii(title):
            problem("title", "pii", "'title' contains what looks like personal data")
    text = data.get("text")
    if "text" in data:
        if not isinstance(text, str) or not text.strip():
            problem("text", "empty-text", "'text' is empty: write what the agent sends")
        else:
            _check_text(entry, text.strip(), facts, strict=strict, facts_file=facts_file,
                        add=lambda severity, line, code, message: add(
                            severity, line, code, f"{label}: {message}"))
    tags = data.get("tags") or []
    if not isinstance(tags, list) or not all(
            isinstance(t, str) and t.strip() and len(t.strip()) <= MAX_TAG_CHARS for t in tags):
        problem("tags", "bad-tags", f"'tags' must be a list of words (1-{MAX_TAG_CHARS} "
                "characters each)")
    if add.errors > errors_before:
        return None
    return CannedReply(reply_id=reply_id, shortcut=shortcut, title=title.strip(),
                       text=text.strip(), tags=tuple(t.strip() for t in tags))


class _Collector:
    """``add(severity, line, code, message)`` into a list, counting errors."""

    def __init__(self, path: Path, findings: List[Finding]) -> None:
        self.path, self.findings, self.errors = path, findings, 0

    def __call__(self, severity: str, line: int, code: str, message: str) -> None:
        self.findings.append(Finding(severity, self.path, line, code, message))
        self.errors += severity == ERROR


def check(path: Path, facts: Mapping[str, str], *, strict: bool = False,
          facts_file: str = "the placeholder file") -> Tuple[List[CannedReply], List[Finding]]:
    """The replies without errors and every finding, sorted by line.

    ``facts_file`` names where ``facts`` come from, in the messages.
    """
    findings: List[Finding] = []
    entries = _entries(path, findings)
    add = _Collector(path, findings)
    replies: List[CannedReply] = []
    first_id: Dict[str, int] = {}
    first_shortcut: Dict[str, int] = {}
    for entry in entries:
        reply = _check_entry(entry, facts, strict=strict, facts_file=facts_file, add=add)
        for key, seen in (("id", first_id), ("shortcut", first_shortcut)):
            value = entry.data.get(key)
            if not isinstance(value, str):
                continue
            if value in seen:
                add(ERROR, entry.line_of(key), f"duplicate-{key}",
                    f"{entry.label}: {key} {value!r} is already used at line {seen[value]}")
                reply = None
            else:
                seen[value] = entry.line_of(key)
        if reply is not None:
            replies.append(reply)
    return replies, sorted(findings, key=lambda f: (f.line, f.code))


def lint(path: Path, *, placeholders: Path, strict: bool = False) -> List[Finding]:
    """Every finding in the canned replies file (``strict``: unfilled placeholders are errors)."""
    try:
        facts = read_facts(placeholders)
    except CannedRepliesError as exc:
        return [Finding(ERROR, placeholders, 0, "placeholders", str(exc))]
    return check(path, facts, strict=strict, facts_file=str(placeholders))[1]


def load(path: Path, *, placeholders: Path) -> CannedLibrary:
    """The canned replies for the desk.

    Raises:
        CannedRepliesError: The file has errors (all of them in the message).
    """
    facts = read_facts(placeholders)
    replies, findings = check(path, facts, facts_file=str(placeholders))
    errors = [f for f in findings if f.severity == ERROR]
    if errors:
        listed = "\n".join(f"  {f}" for f in errors)
        raise CannedRepliesError(
            f"canned replies file {path} has {len(errors)} error{'s' if len(errors) != 1 else ''} "
            f"(fix them, then check with `walletbot validate`):\n{listed}")
    return CannedLibrary(replies=tuple(replies), facts=facts,
                         warnings=tuple(f for f in findings if f.severity == WARNING))


def configured_paths() -> Tuple[Path, Path]:
    """The canned replies file and its placeholder file from the settings.

    Relative paths are read from the project folder, wherever the process runs
    (and stay relative, for shorter messages, when that is the current folder).
    """
    from walletbot import settings

    current = settings.current()

    def resolve(raw: str) -> Path:
        path = Path(raw)
        if path.is_absolute() or Path.cwd().resolve() == settings.PROJECT_ROOT.resolve():
            return path
        return settings.PROJECT_ROOT / path

    return resolve(current.desk_canned_file), resolve(current.desk_canned_placeholders)


def report(*, strict: bool, out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> int:
    """``walletbot validate``'s part: prints the findings and a summary; the error count."""
    out, err = out or sys.stdout, err or sys.stderr
    path, placeholders = configured_paths()
    findings = lint(path, placeholders=placeholders, strict=strict)
    for finding in findings:
        print(str(finding), file=err if finding.severity == ERROR else out)
    errors = sum(f.severity == ERROR for f in findings)
    warnings = len(findings) - errors
    print(f"canned replies lint: {errors} error{'s' if errors != 1 else ''}, "
          f"{warnings} warning{'s' if warnings != 1 else ''}", file=out)
    return errors
