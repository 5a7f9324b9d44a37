"""``walletbot``: the trainers' command line.

Run ``walletbot --help`` for the subcommands. This module only parses
arguments; the work is done in ``walletbot.trainer``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

from walletbot.trainer import layout

DEFAULT_KB = layout.KB
DEFAULT_FAQ_NLU = layout.FAQ_NLU

_EPILOG = """\
everyday loop:
  walletbot faq add --intent faq/withdraw_fee --question "提现要手续费吗"
  walletbot validate
  walletbot train
  walletbot evaluate
  walletbot promote --reload
  walletbot review          # then label the file and: walletbot review import FILE
"""


class _Formatter(argparse.HelpFormatter):
    """Wraps one-line descriptions, keeps multi-line epilogs, shows useful defaults."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def _paths(args: argparse.Namespace):
    from walletbot.trainer.kb_edit import Paths

    return Paths(
        kb_dir=args.kb, nlu_dir=args.nlu, faq_nlu=args.faq_nlu,
        conversation_nlu=args.conversation, domain=args.domain,
    )


def _add_data_paths(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data files")
    group.add_argument("--kb", type=Path, default=layout.KB, help="FAQ knowledge base folder")
    group.add_argument("--nlu", type=Path, default=layout.NLU, help="NLU data folder")
    group.add_argument("--faq-nlu", type=Path, default=layout.FAQ_NLU,
                       help="NLU file generated from the knowledge base")
    group.add_argument("--conversation", type=Path, default=layout.CONVERSATION_NLU,
                       help="NLU file for new conversation-intent examples")
    group.add_argument("--domain", type=Path, default=layout.DOMAIN, help="Rasa domain")


def _add_models_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models-dir", type=Path, default=layout.MODELS,
                        help="folder of trained models")


def _add_test_set(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("test set")
    group.add_argument("--test", type=Path, default=layout.TEST_SET, help="held-out test set")
    group.add_argument("--train-data", type=Path, default=layout.NLU,
                       help="training data: test lines identical to a training line are not scored")
    group.add_argument("--keep-seen", action="store_true",
                       help="score test lines that also occur in the training data")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_tolerances(parser: argparse.ArgumentParser) -> None:
    from walletbot.trainer.compare import DEFAULT_INTENT_TOLERANCE, DEFAULT_TOLERANCE

    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="largest allowed drop of accuracy, macro-F1, accuracy after fallback")
    parser.add_argument("--intent-tolerance", type=float, default=DEFAULT_INTENT_TOLERANCE,
                        help="largest allowed drop of any intent's F1")


def _add_server(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("running server")
    group.add_argument("--reload", action="store_true",
                       help="tell the running Rasa server to load the model (PUT /model)")
    group.add_argument("--url", help="Rasa server URL (default: http://127.0.0.1:$RASA_PORT)")
    group.add_argument("--token", help="Rasa API token (default: $RASA_AUTH_TOKEN)")
    group.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the load")


def _served(args: argparse.Namespace) -> Optional[Path]:
    return args.served


# --- handlers: argument unpacking only ------------------------------------------


def _faq_build(args: argparse.Namespace) -> int:
    from walletbot.trainer import cmd_data

    return cmd_data.faq_build(kb_dir=args.kb, out=args.out, check=args.check)


def _faq_add(args: argparse.Namespace) -> int:
    from walletbot.trainer import cmd_data

    return cmd_data.faq_add(
        paths=_paths(args), intent=args.intent, questions=args.question or [],
        answer=args.answer, title=args.title, from_file=args.from_file, build=not args.no_build,
    )


def _validate(args: argparse.Namespace) -> int:
    from walletbot.trainer import cmd_data

    return cmd_data.validate(
        config=args.config, domain=args.domain, data=args.data, paths=_paths(args),
        skip_rasa=args.skip_rasa, strict=args.strict, min_examples=args.min_examples,
        near_duplicate=args.near_duplicate,
    )


def _train(args: argparse.Namespace) -> int:
    from walletbot.trainer import cmd_model

    return cmd_model.train(
        config=args.config, domain=args.domain, data=args.data, models_dir=args.models_dir,
        kb_dir=None if args.no_build else args.kb, faq_nlu=args.faq_nlu,
        finetune=args.finetune, epoch_fraction=args.epoch_fraction, force=args.force,
        verbose=args.verbose,
    )


def _evaluate(args: argparse.Namespace) -> int:
    from walletbot.trainer import cmd_model

    return cmd_model.evaluate(
        model=args.model, models_dir=args.models_dir, test=args.test,
        train_data=None if args.keep_seen else args.train_data, reports=args.reports,
        formats=args.format.split(","), cv=args.cv, config=args.config,
        progress=not args.no_progress,
    )


def _compare(args: argparse.Namespace) -> int:
    from walletbot.trainer import cmd_model

    return cmd_model.compare(
        candidate=args.candidate, current=args.current, models_dir=args.models_dir,
        test=args.test, train_data=None if args.keep_seen else args.train_data,
        tolerance=args.tolerance, intent_tolerance=args.intent_tolerance,
        all_intents=args.all, progress=not args.no_progress,
    )


def _promote(args: argparse.Namespace) -> int:
    from walletbot.trainer import cmd_model

    return cmd_model.promote(
        candidate=args.candidate, models_dir=args.models_dir, served=_served(args),
        test=args.test, train_data=None if args.keep_seen else args.train_data,
        tolerance=args.tolerance, intent_tolerance=args.intent_tolerance, reload=args.reload,
        url=args.url, token=args.token, timeout=args.timeout, progress=not args.no_progress,
    )


def _rollback(args: argparse.Namespace) -> int:
    from walletbot.trainer import cmd_model

    return cmd_model.rollback(
        models_dir=args.models_dir, served=_served(args), reload=args.reload, url=args.url,
        token=args.token, timeout=args.timeout,
    )


def _review(args: argparse.Namespace) -> int:
    from walletbot.trainer import cmd_data

    return cmd_data.review_export(
        url=args.db_url, out=args.out, reports=args.reports, since_days=args.days,
        min_confidence=args.min_confidence, similarity=args.similarity,
        progress=not args.no_progress,
    )


def _review_import(args: argparse.Namespace) -> int:
    from walletbot.trainer import cmd_data

    return cmd_data.review_import(file=args.file, paths=_paths(args), build=not args.no_build)


# --- parser -------------------------------------------------------------------


def _faq_parsers(commands: argparse._SubParsersAction) -> None:
    faq = commands.add_parser("faq", help="FAQ knowledge base (data/faq/)",
                              formatter_class=_Formatter)
    faq_commands = faq.add_subparsers(dest="faq_command", required=True)
    faq_build = faq_commands.add_parser(
        "build", help="generate faq/<name> NLU data and utter_faq/<name> responses",
        formatter_class=_Formatter,
    )
    faq_build.add_argument("--kb", type=Path, default=DEFAULT_KB, help="knowledge base folder")
    faq_build.add_argument("--out", type=Path, default=DEFAULT_FAQ_NLU, help="generated file")
    faq_build.add_argument(
        "--check", action="store_true", help="exit 1 if the generated file is out of date"
    )
    faq_build.set_defaults(handler=_faq_build)

    add = faq_commands.add_parser(
        "add", formatter_class=_Formatter,
        help="add example questions (or a new FAQ entry) from options, a file or prompts",
        description=(
            "Add example questions to an FAQ entry (faq/<name> → data/faq/<name>.yml) or a "
            "conversation intent (→ data/nlu/conversation.yml). A new faq/<name> needs "
            "--answer. Without --intent or --from it asks interactively. The generated "
            "data/nlu/faq.yml is rebuilt afterwards."
        ),
        epilog=(
            "examples:\n"
            '  walletbot faq add --intent faq/withdraw_fee -q "提现要手续费吗" -q "取钱收费不"\n'
            '  walletbot faq add --intent faq/card_unbind --title 解绑银行卡 \\\n'
            '      --answer "在「我的-银行卡」里选择要解绑的卡…" -q "怎么解绑银行卡"\n'
            "  walletbot faq add --from new_questions.csv   # columns: intent,text[,answer,title]"
        ),
    )
    add.add_argument("--intent", help="faq/<name> or a conversation intent such as greet")
    add.add_argument("-q", "--question", action="append",
                     help="an example question (repeatable)")
    add.add_argument("--answer", help="answer of a new FAQ entry")
    add.add_argument("--title", help="title of a new FAQ entry")
    add.add_argument("--from", dest="from_file", type=Path,
                     help="CSV or YAML file of rows: intent, text (or question), answer, title")
    add.add_argument("--no-build", action="store_true", help="do not rebuild data/nlu/faq.yml")
    _add_data_paths(add)
    add.set_defaults(handler=_faq_add)


def _data_parsers(commands: argparse._SubParsersAction) -> None:
    from walletbot.trainer.cluster import DEFAULT_THRESHOLD
    from walletbot.trainer.review import DEFAULT_MIN_CONFIDENCE
    from walletbot.trainer.lint import DEFAULT_MIN_EXAMPLES, DEFAULT_NEAR_DUPLICATE

    validate = commands.add_parser(
        "validate", formatter_class=_Formatter,
        help="rasa data validate + lint of the knowledge base; exit 1 on errors",
        description=(
            "Runs `rasa data validate --fail-on-warnings`, then checks the knowledge base and "
            "NLU data: examples under two intents, near-duplicates across intents (warning), "
            "intents with too few examples, missing or empty answers, placeholders still in "
            "answers (warning), data/nlu/faq.yml out of date. Prints file:line for each."
        ),
    )
    validate.add_argument("--config", type=Path, default=layout.CONFIG, help="Rasa config")
    validate.add_argument("--data", type=Path, default=layout.DATA, help="Rasa data folder")
    validate.add_argument("--skip-rasa", action="store_true",
                          help="only the knowledge-base lint (faster)")
    validate.add_argument("--strict", action="store_true",
                          help="near-duplicates and unfilled placeholders are errors (go-live check)")
    validate.add_argument("--min-examples", type=int, default=DEFAULT_MIN_EXAMPLES,
                          help="fewest examples an intent may have")
    validate.add_argument("--near-duplicate", type=float, default=DEFAULT_NEAR_DUPLICATE,
                          help="similarity (0-1) from which examples of two intents are reported")
    _add_data_paths(validate)
    validate.set_defaults(handler=_validate)

    review = commands.add_parser(
        "review", formatter_class=_Formatter,
        help="export poorly handled user messages from the tracker store for labelling",
        description=(
            "Reads the SQL tracker store and exports user messages that hit a fallback, had "
            "low confidence, were followed by an escalation to a human, or by a low CSAT "
            "score (1-2), with counts and the predicted intent, similar ones grouped. Fill "
            "the file's `intent` column, then run `walletbot review import FILE`."
        ),
    )
    review.add_argument("--db-url", help="SQLAlchemy URL of the tracker store "
                        "(default: $TRACKER_DB_URL)")
    review.add_argument("--out", type=Path,
                        help="file to write, .csv or .yml (default: reports/review-<time>.csv)")
    review.add_argument("--reports", type=Path, default=layout.REPORTS, help="reports folder")
    review.add_argument("--days", type=float, help="only the last N days")
    review.add_argument("--min-confidence", type=float, default=DEFAULT_MIN_CONFIDENCE,
                        help="messages below this confidence are flagged")
    review.add_argument("--similarity", type=float, default=DEFAULT_THRESHOLD,
                        help="cosine similarity (0-1) from which messages share a group")
    review.add_argument("--no-progress", action="store_true", help="no progress bars")
    review.set_defaults(handler=_review)
    review_commands = review.add_subparsers(dest="review_command")
    importer = review_commands.add_parser(
        "import", formatter_class=_Formatter,
        help="merge labelled lines into the knowledge base / NLU data",
        description=(
            "Adds every line with an `intent` to the data: faq/<name> to data/faq/<name>.yml, "
            "other intents to the NLU data. Unknown intents, or a text already under another "
            "intent, stop the import with nothing changed."
        ),
    )
    importer.add_argument("file", type=Path, help="the labelled CSV or YAML file")
    importer.add_argument("--no-build", action="store_true", help="do not rebuild data/nlu/faq.yml")
    _add_data_paths(importer)
    importer.set_defaults(handler=_review_import)


def _model_parsers(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train", formatter_class=_Formatter,
        help="train a model into models/walletbot-<time>-<fingerprint>.tar.gz",
        description=(
            "Trains with Rasa's Python API. The model's name carries the fingerprint of the "
            "config, domain, data and custom component code; inputs already trained are not "
            "trained again. data/nlu/faq.yml is rebuilt first if the knowledge base changed."
        ),
    )
    train.add_argument("--config", type=Path, default=layout.CONFIG, help="Rasa config")
    train.add_argument("--domain", type=Path, default=layout.DOMAIN, help="Rasa domain")
    train.add_argument("--data", type=Path, default=layout.DATA, help="training data folder")
    train.add_argument("--kb", type=Path, default=layout.KB, help="FAQ knowledge base folder")
    train.add_argument("--faq-nlu", type=Path, default=layout.FAQ_NLU,
                       help="NLU file generated from the knowledge base")
    train.add_argument("--no-build", action="store_true",
                       help="do not rebuild data/nlu/faq.yml first")
    _add_models_dir(train)
    train.add_argument("--finetune", nargs="?", const="latest", metavar="MODEL",
                       help="continue training MODEL (default: the latest) when only data changed")
    train.add_argument("--epoch-fraction", type=float, default=1.0,
                       help="share of the configured epochs when fine-tuning")
    train.add_argument("--force", action="store_true", help="train even if nothing changed")
    train.add_argument("--verbose", action="store_true", help="keep Rasa's info logs")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser(
        "evaluate", formatter_class=_Formatter,
        help="score a model on the held-out test set (or k-fold CV) and write a report",
        description=(
            "Accuracy, macro-F1, per-intent precision/recall/F1, the confusion matrix (PNG), "
            "misclassified messages and the fallback rate, printed and written as Markdown and "
            "HTML under reports/. With --cv K the pipeline of --config is cross-validated on "
            "--train-data instead (K trainings)."
        ),
    )
    evaluate.add_argument("--model", type=Path,
                          help="model to score (default: the latest trained, else the served one)")
    _add_models_dir(evaluate)
    _add_test_set(evaluate)
    evaluate.add_argument("--cv", type=int, metavar="K", help="K-fold cross-validation instead")
    evaluate.add_argument("--config", type=Path, default=layout.CONFIG,
                          help="config to cross-validate")
    evaluate.add_argument("--reports", type=Path, default=layout.REPORTS, help="reports folder")
    evaluate.add_argument("--format", default="md,html", help="report formats: md, html or both")
    evaluate.set_defaults(handler=_evaluate)

    compare = commands.add_parser(
        "compare", formatter_class=_Formatter,
        help="score the candidate and the served model side by side; exit 1 if worse",
    )
    compare.add_argument("--candidate", type=Path, help="default: the latest trained model")
    compare.add_argument("--current", type=Path, help="default: the served model")
    compare.add_argument("--all", action="store_true", help="list every intent, not only changes")
    _add_models_dir(compare)
    _add_test_set(compare)
    _add_tolerances(compare)
    compare.set_defaults(handler=_compare)

    promote = commands.add_parser(
        "promote", formatter_class=_Formatter,
        help="serve the candidate if it is not worse than the served model",
        description=(
            "Compares the candidate with the served model (models/walletbot.tar.gz, what "
            "`make run` starts) on the test set and replaces it only if the candidate is not "
            "worse overall or on any intent beyond the tolerances; otherwise refuses (exit 1) "
            "and prints the table. The replaced model is kept in models/history/."
        ),
    )
    promote.add_argument("candidate", type=Path, nargs="?",
                         help="model to promote (default: the latest trained)")
    promote.add_argument("--served", type=Path,
                         help="the served model (default: $MODEL or <models-dir>/walletbot.tar.gz)")
    _add_models_dir(promote)
    _add_test_set(promote)
    _add_tolerances(promote)
    _add_server(promote)
    promote.set_defaults(handler=_promote)

    rollback = commands.add_parser(
        "rollback", formatter_class=_Formatter,
        help="serve the previously promoted model again (from models/history/)",
    )
    rollback.add_argument("--served", type=Path,
                          help="the served model (default: $MODEL or <models-dir>/walletbot.tar.gz)")
    _add_models_dir(rollback)
    _add_server(rollback)
    rollback.set_defaults(handler=_rollback)


def make_parser() -> argparse.ArgumentParser:
    """The argument parser, exposed for tests."""
    parser = argparse.ArgumentParser(
        prog="walletbot",
        description="Trainer tools for walletbot (OK钱包客服机器人). Run from the project root.",
        epilog=_EPILOG,
        formatter_class=_Formatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _faq_parsers(commands)
    _data_parsers(commands)
    _model_parsers(commands)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``walletbot`` console script."""
    args = make_parser().parse_args(argv)
    from walletbot.trainer.console import quiet_libraries

    quiet_libraries()
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
