"""The data subcommands: faq build, faq add, validate, review, review import.

Each function prints for a trainer and returns the exit status; the logic
lives in the modules it calls. Each command's options are declared beside
its function (the shared ones in ``walletbot.trainer.options``), and
:data:`COMMANDS` is what ``walletbot.cli`` assembles.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

from walletbot.trainer import layout, options
from walletbot.trainer.cluster import DEFAULT_THRESHOLD
from walletbot.trainer.command import Command, Option
from walletbot.trainer.console import error, table
from walletbot.trainer.lint import DEFAULT_MIN_EXAMPLES, DEFAULT_NEAR_DUPLICATE
from walletbot.trainer.review import DEFAULT_MIN_CONFIDENCE

if TYPE_CHECKING:  # pragma: no cover
    from walletbot.trainer.kb_edit import Addition, NewFaq, Paths

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


# --- faq build ----------------------------------------------------------------

_CHECK = Option("--check", action="store_true",
                help="exit 1 if the generated file is out of date")


def faq_build(*, kb_dir: Path, out: Path, check: bool) -> int:
    """``walletbot faq build [--check]``."""
    from walletbot.faq.build import build, is_up_to_date
    from walletbot.faq.kb import KnowledgeBaseError

    try:
        if check:
            if is_up_to_date(kb_dir=kb_dir, out_path=out):
                print(f"{out} is up to date.")
                return 0
            print(f"{out} is out of date with {kb_dir}/: run `walletbot faq build`.",
                  file=sys.stderr)
            return 1
        changed = build(kb_dir=kb_dir, out_path=out)
    except KnowledgeBaseError as exc:
        error(str(exc))
        return 2
    print(f"{'wrote' if changed else 'unchanged'}: {out}")
    return 0


def _run_faq_build(args: argparse.Namespace) -> int:
    return faq_build(kb_dir=args.kb, out=args.out, check=args.check)


FAQ_BUILD = Command(
    "build", help="generate faq/<name> NLU data and utter_faq/<name> responses",
    arguments=(
        options.KB.but(help="knowledge base folder"),
        options.OUT.but(default=layout.FAQ_NLU, help="generated file"),
        _CHECK,
    ),
    run=_run_faq_build,
)


# --- faq add / review import --------------------------------------------------


def _apply(
    additions: Sequence["Addition"],
    *,
    paths: Paths,
    new_faqs: Optional[Dict[str, "NewFaq"]] = None,
    build: bool = True,
) -> int:
    from walletbot.faq.kb import KnowledgeBaseError
    from walletbot.trainer import kb_edit

    try:
        planned = kb_edit.plan(additions, paths=paths, new_faqs=new_faqs)
        written = kb_edit.apply(planned, paths=paths)
    except kb_edit.EditError as exc:
        error(str(exc))
        return 2
    for path, n in written.items():
        print(f"added {n} example{'s' if n != 1 else ''} to {path}")
    if planned.present:
        print(f"{len(planned.present)} already present, skipped")
    if not written:
        print("nothing to add")
    if build and any(p.parent == paths.kb_dir for p in written):
        try:
            return faq_build(kb_dir=paths.kb_dir, out=paths.faq_nlu, check=False)
        except KnowledgeBaseError as exc:  # pragma: no cover - faq_build reports it
            error(str(exc))
            return 2
    return 0


def _read_multiline(prompt: str, input_fn: Callable[[str], str]) -> List[str]:
    print(prompt)
    lines = []
    while True:
        try:
            line = input_fn("> ")
        except EOFError:
            break
        if not line.strip():
            break
        lines.append(line.strip())
    return lines


_INTENT = Option("--intent", help="faq/<name> or a conversation intent such as greet")
_QUESTION = Option("-q", "--question", action="append", help="an example question (repeatable)")
_ANSWER = Option("--answer", help="answer of a new FAQ entry")
_TITLE = Option("--title", help="title of a new FAQ entry")
_FROM = Option("--from", dest="from_file", type=Path,
               help="CSV or YAML file of rows: intent, text (or question), answer, title")


def faq_add(
    *,
    paths: Paths,
    intent: Optional[str] = None,
    questions: Sequence[str] = (),
    answer: Optional[str] = None,
    title: Optional[str] = None,
    from_file: Optional[Path] = None,
    build: bool = True,
    input_fn: Optional[Callable[[str], str]] = None,
) -> int:
    """``walletbot faq add``: examples (and new FAQ entries) from options, a file or prompts."""
    from walletbot.trainer import kb_edit
    from walletbot.trainer.sources import faq_names

    rows: List[Dict[str, str]] = []
    if from_file is not None:
        if not from_file.exists():
            error(f"{from_file} does not exist")
            return 2
        try:
            rows = kb_edit.read_rows(from_file)
        except (kb_edit.EditError, ValueError) as exc:
            error(f"{from_file}: {exc}")
            return 2
    elif intent is None:
        if input_fn is None and not sys.stdin.isatty():
            error(f"give {_INTENT} and {_QUESTION}, or {_FROM} FILE (or run it in a terminal)")
            return 2
        ask = input_fn or input
        intent = ask("intent (e.g. faq/withdraw_fee, greet): ").strip()
        if intent.startswith("faq/") and intent[4:] not in faq_names(paths.kb_dir):
            print(f"{intent} is new.")
            title = ask("title (中文标题): ").strip() or intent[4:]
            answer = "\n".join(_read_multiline("answer (an empty line ends it):", ask))
        questions = _read_multiline("example questions, one per line (an empty line ends):", ask)
    if intent is not None:
        rows = [{"intent": intent, "text": q, "answer": answer or "", "title": title or "",
                 "_origin": "command line"} for q in questions]
        if not questions:
            error(f"give at least one {_QUESTION}")
            return 2
    new_faqs: Dict[str, kb_edit.NewFaq] = {}
    existing = set(faq_names(paths.kb_dir))
    try:
        for row in rows:
            label = kb_edit.normalize_label(row.get("intent") or "")
            if label.startswith("faq/") and label[4:] not in existing \
                    and label[4:] not in new_faqs and row.get("answer"):
                name = label[4:]
                kb_edit.check_new_faq(name, kb_dir=paths.kb_dir, answer=row["answer"])
                new_faqs[name] = kb_edit.NewFaq(
                    name=name, title=row.get("title") or name, answer=row["answer"]
                )
    except kb_edit.EditError as exc:
        error(str(exc))
        return 2
    return _apply(kb_edit.additions_from_rows(rows), paths=paths, new_faqs=new_faqs, build=build)


def _run_faq_add(args: argparse.Namespace) -> int:
    return faq_add(
        paths=options.paths(args), intent=args.intent, questions=args.question or [],
        answer=args.answer, title=args.title, from_file=args.from_file,
        build=options.build(args),
    )


FAQ_ADD = Command(
    "add", help="add example questions (or a new FAQ entry) from options, a file or prompts",
    description=(
        "Add example questions to an FAQ entry (faq/<name> → data/faq/<name>.yml) or a "
        "conversation intent (→ data/nlu/conversation.yml). A new faq/<name> needs "
        f"{_ANSWER}. Without {_INTENT} or {_FROM} it asks interactively. The generated "
        "data/nlu/faq.yml is rebuilt afterwards."
    ),
    epilog=(
        "examples:\n"
        '  walletbot faq add --intent faq/withdraw_fee -q "提现要手续费吗" -q "取钱收费不"\n'
        '  walletbot faq add --intent faq/card_unbind --title 解绑银行卡 \\\n'
        '      --answer "在「我的-银行卡」里选择要解绑的卡…" -q "怎么解绑银行卡"\n'
        "  walletbot faq add --from new_questions.csv   # columns: intent,text[,answer,title]"
    ),
    arguments=(_INTENT, _QUESTION, _ANSWER, _TITLE, _FROM, options.NO_BUILD, options.DATA_PATHS),
    run=_run_faq_add,
)

FAQ = Command("faq", help="FAQ knowledge base (data/faq/)", subcommands=(FAQ_BUILD, FAQ_ADD))


def review_import(*, file: Path, paths: Paths, build: bool = True) -> int:
    """``walletbot review import``: labelled review lines into the data."""
    from walletbot.trainer import kb_edit

    if not file.exists():
        error(f"{file} does not exist")
        return 2
    try:
        rows = kb_edit.read_rows(file)
    except (kb_edit.EditError, ValueError) as exc:
        error(f"{file}: {exc}")
        return 2
    additions = kb_edit.additions_from_rows(rows)
    print(f"{file}: {len(rows)} lines, {len(additions)} labelled")
    return _apply(additions, paths=paths, build=build)


def _run_review_import(args: argparse.Namespace) -> int:
    return review_import(file=args.file, paths=options.paths(args), build=options.build(args))


REVIEW_IMPORT = Command(
    "import", help="merge labelled lines into the knowledge base / NLU data",
    description=(
        "Adds every line with an `intent` to the data: faq/<name> to data/faq/<name>.yml, "
        "other intents to the NLU data. Unknown intents, or a text already under another "
        "intent, stop the import with nothing changed."
    ),
    arguments=(
        Option("file", type=Path, help="the labelled CSV or YAML file"),
        options.NO_BUILD,
        options.DATA_PATHS,
    ),
    run=_run_review_import,
)


# --- validate -----------------------------------------------------------------


def run_rasa_validate(*, config: Path, domain: Path, data: Path) -> Tuple[int, List[str]]:
    """Runs ``rasa data validate --fail-on-warnings``; ``(status, warning and error lines)``."""
    command = [
        sys.executable, "-m", "rasa", "data", "validate", "--fail-on-warnings",
        "--data", str(data), "--domain", str(domain), "--config", str(config),
    ]
    from walletbot.settings import quiet_child_env

    done = subprocess.run(command, capture_output=True, text=True, env=quiet_child_env())
    output = _ANSI_RE.sub("", done.stdout + done.stderr).splitlines()
    keep = [
        line.strip() for line in output
        if re.search(r"UserWarning| ERROR | WARNING |error:|Exception", line)
        and not re.search(r"DeprecationWarning|MovedIn20Warning", line)
    ]
    seen: List[str] = []
    for line in keep:
        if line not in seen:
            seen.append(line)
    if done.returncode and not seen:
        seen = [line for line in output[-15:] if line.strip()]
    return done.returncode, seen


_SKIP_RASA = Option("--skip-rasa", action="store_true",
                    help="only the knowledge-base lint (faster)")
_STRICT = Option("--strict", action="store_true",
                 help="near-duplicates and unfilled placeholders are errors (go-live check)")
_MIN_EXAMPLES = Option("--min-examples", type=int, default=DEFAULT_MIN_EXAMPLES,
                       help="fewest examples an intent may have")
_NEAR_DUPLICATE = Option("--near-duplicate", type=float, default=DEFAULT_NEAR_DUPLICATE,
                         help="similarity (0-1) from which examples of two intents are reported")


def validate(
    *,
    config: Path,
    domain: Path,
    data: Path,
    paths: Paths,
    skip_rasa: bool = False,
    strict: bool = False,
    min_examples: int,
    near_duplicate: float,
) -> int:
    """``walletbot validate``: 0 clean (warnings allowed), 1 errors."""
    from walletbot.trainer.lint import ERROR, WARNING, count, lint

    failed = False
    if not skip_rasa:
        print("rasa data validate …", flush=True)
        status, lines = run_rasa_validate(config=config, domain=domain, data=data)
        for line in lines if status else []:
            print(f"  {line}", file=sys.stderr)
        print(f"rasa data validate: {'failed' if status else 'ok'}")
        failed = bool(status)
    issues = lint(
        kb_dir=paths.kb_dir, nlu_dir=paths.nlu_dir, faq_nlu=paths.faq_nlu, domain=domain,
        min_examples=min_examples, near_duplicate=near_duplicate, strict=strict,
    )
    for issue in issues:
        print(str(issue), file=sys.stderr if issue.severity == ERROR else sys.stdout)
    errors, warnings = count(issues, ERROR), count(issues, WARNING)
    print(f"knowledge-base lint: {errors} error{'s' if errors != 1 else ''}, "
          f"{warnings} warning{'s' if warnings != 1 else ''}"
          + (f" ({_STRICT}: warnings count as errors)" if strict else ""))
    # The desk's canned replies (DESK_CANNED_FILE) are reviewed like the knowledge base.
    from walletbot.desk import canned_replies

    errors += canned_replies.report(strict=strict)
    return 1 if failed or errors else 0


def _run_validate(args: argparse.Namespace) -> int:
    return validate(
        config=args.config, domain=args.domain, data=args.data, paths=options.paths(args),
        skip_rasa=args.skip_rasa, strict=args.strict, min_examples=args.min_examples,
        near_duplicate=args.near_duplicate,
    )


VALIDATE = Command(
    "validate", help="rasa data validate + lint of the knowledge base; exit 1 on errors",
    description=(
        "Runs `rasa data validate --fail-on-warnings`, then checks the knowledge base and "
        "NLU data: examples under two intents, near-duplicates across intents (warning), "
        "intents with too few examples, missing or empty answers, placeholders still in "
        "answers (warning), data/nlu/faq.yml out of date. Prints file:line for each."
    ),
    arguments=(
        options.CONFIG, options.DATA, _SKIP_RASA, _STRICT, _MIN_EXAMPLES, _NEAR_DUPLICATE,
        options.DATA_PATHS,
    ),
    run=_run_validate,
)


# --- review -------------------------------------------------------------------


def default_tracker_url() -> str:
    """``TRACKER_DB_URL`` from the settings (the environment, else ``config/dev.env``)."""
    from walletbot import settings

    return settings.current().tracker_db_url


def review_export(
    *,
    url: Optional[str],
    out: Optional[Path],
    reports: Path,
    since_days: Optional[float] = None,
    min_confidence: float,
    similarity: float,
    progress: bool = True,
) -> int:
    """``walletbot review``: poorly handled messages into a file to label."""
    from walletbot.trainer import review, review_file
    from walletbot.trainer.console import progress as progress_bar

    tracker_url = url or default_tracker_url()
    since = time.time() - since_days * 86400 if since_days else None
    try:
        events = progress_bar(
            review.read_events(url=tracker_url, since=since), desc="tracker events",
            enabled=progress, unit="event",
        )
        flagged = review.flag_messages(events, min_confidence=min_confidence)
    except Exception as exc:  # SQLAlchemy errors: bad URL, no database, no table
        error(f"cannot read the tracker store: {exc}")
        return 2
    items = review.group_items(review.aggregate(flagged), similarity=similarity)
    target = out or reports / f"review-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    review_file.write(items, path=target)
    groups = len({i.group for i in items})
    print(f"{len(flagged)} poorly handled messages, {len(items)} distinct, in {groups} groups")
    if items:
        top = sorted(items, key=lambda i: -i.count)[:15]
        print(table(
            [[i.group, i.count, i.text, i.predicted, f"{i.confidence:.2f}",
              " ".join(i.reasons)] for i in top],
            headers=["group", "n", "message", "predicted", "conf", "reasons"],
            numeric=(0, 1, 4),
        ))
    print(f"\nwrote {target}: fill the `intent` column, then `walletbot review import {target}`")
    return 0


def _run_review(args: argparse.Namespace) -> int:
    return review_export(
        url=args.db_url, out=args.out, reports=args.reports, since_days=args.days,
        min_confidence=args.min_confidence, similarity=args.similarity,
        progress=options.progress(args),
    )


REVIEW = Command(
    "review", help="export poorly handled user messages from the tracker store for labelling",
    description=(
        "Reads the SQL tracker store and exports user messages that hit a fallback, had "
        "low confidence, were followed by an escalation to a human, or by a low CSAT "
        "score (1-2), with counts and the predicted intent, similar ones grouped. Fill "
        "the file's `intent` column, then run `walletbot review import FILE`."
    ),
    arguments=(
        options.TRACKER_URL,
        options.OUT.but(help="file to write, .csv or .yml (default: reports/review-<time>.csv)"),
        options.REPORTS,
        options.DAYS,
        Option("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
               help="messages below this confidence are flagged"),
        Option("--similarity", type=float, default=DEFAULT_THRESHOLD,
               help="cosine similarity (0-1) from which messages share a group"),
        options.NO_PROGRESS,
    ),
    run=_run_review,
    subcommands=(REVIEW_IMPORT,),
)

COMMANDS = (FAQ, VALIDATE, REVIEW)
