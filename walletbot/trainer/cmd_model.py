"""The model subcommands: train, evaluate, compare, promote, rollback.

Each function prints for a trainer and returns the exit status; the logic
lives in the modules it calls. Each command's options are declared beside
its function (the shared ones in ``walletbot.trainer.options``), and
:data:`COMMANDS` is what ``walletbot.cli`` assembles.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from walletbot.trainer import options
from walletbot.trainer.command import Command, Option
from walletbot.trainer.console import error

if TYPE_CHECKING:  # pragma: no cover
    from walletbot.trainer.compare import Comparison
    from walletbot.trainer.evaluate import TestSet


def _rebuild_faq(kb_dir: Optional[Path], faq_nlu: Optional[Path]) -> None:
    if kb_dir is None or faq_nlu is None or not kb_dir.is_dir():
        return
    from walletbot.faq.build import build

    if build(kb_dir=kb_dir, out_path=faq_nlu):
        print(f"rebuilt {faq_nlu} from {kb_dir}/")


# --- train --------------------------------------------------------------------

_FINETUNE = Option("--finetune", nargs="?", const="latest", metavar="MODEL",
                   help="continue training MODEL (default: the latest) when only data changed")
_EPOCH_FRACTION = Option("--epoch-fraction", type=float, default=1.0,
                         help="share of the configured epochs when fine-tuning")
_FORCE = Option("--force", action="store_true", help="train even if nothing changed")
_VERBOSE = Option("--verbose", action="store_true", help="keep Rasa's info logs")


def train(
    *,
    config: Path,
    domain: Path,
    data: Path,
    models_dir: Path,
    kb_dir: Optional[Path] = None,
    faq_nlu: Optional[Path] = None,
    finetune: Optional[str] = None,
    epoch_fraction: float = 1.0,
    force: bool = False,
    verbose: bool = False,
) -> int:
    """``walletbot train``."""
    from walletbot.faq.kb import KnowledgeBaseError
    from walletbot.trainer.train import TrainingError, format_duration
    from walletbot.trainer.train import train as run_training

    try:
        _rebuild_faq(kb_dir, faq_nlu)
        mode = f"fine-tuning ({finetune})" if finetune else "training"
        print(f"{mode} with {config}, {domain}, {data}/ → {models_dir}/", flush=True)
        outcome = run_training(
            config=config, domain=domain, data=data, models_dir=models_dir,
            finetune=finetune, epoch_fraction=epoch_fraction, force=force, verbose=verbose,
        )
    except (TrainingError, KnowledgeBaseError) as exc:
        error(str(exc))
        return 2
    if outcome.skipped:
        print(
            f"{outcome.model} was already trained from exactly these inputs "
            f"(fingerprint {outcome.fingerprint.short}); {_FORCE} trains again"
        )
    else:
        base = f", fine-tuned from {outcome.finetuned_from.name}" if outcome.finetuned_from else ""
        print(f"trained {outcome.model} in {format_duration(outcome.seconds)}{base}")
    print(f"next: walletbot evaluate {_MODEL} {outcome.model}   (then walletbot promote)")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    return train(
        config=args.config, domain=args.domain, data=args.data, models_dir=args.models_dir,
        kb_dir=args.kb if options.build(args) else None, faq_nlu=args.faq_nlu,
        finetune=args.finetune, epoch_fraction=args.epoch_fraction, force=args.force,
        verbose=args.verbose,
    )


TRAIN = Command(
    "train", help="train a model into models/walletbot-<time>-<fingerprint>.tar.gz",
    description=(
        "Trains with Rasa's Python API. The model's name carries the fingerprint of the "
        "config, domain, data and custom component code; inputs already trained are not "
        "trained again. data/nlu/faq.yml is rebuilt first if the knowledge base changed."
    ),
    arguments=(
        options.CONFIG, options.DOMAIN, options.DATA.but(help="training data folder"),
        options.KB, options.FAQ_NLU,
        options.NO_BUILD.but(help="do not rebuild data/nlu/faq.yml first"),
        options.MODELS_DIR, _FINETUNE, _EPOCH_FRACTION, _FORCE, _VERBOSE,
    ),
    run=_run_train,
)


# --- evaluate -----------------------------------------------------------------

_MODEL = Option("--model", type=Path,
                help="model to score (default: the latest trained, else the served one)")
_CV = Option("--cv", type=int, metavar="K", help="K-fold cross-validation instead")
_CV_CONFIG = options.CONFIG.but(help="config to cross-validate")


def _test_set(test: Path, train_data: Optional[Path]) -> "TestSet":
    from walletbot.trainer.evaluate import load_test_set

    return load_test_set(test=test, train_data=train_data)


def evaluate(
    *,
    model: Optional[Path],
    models_dir: Path,
    test: Path,
    train_data: Optional[Path],
    reports: Path,
    formats: Sequence[str],
    cv: Optional[int] = None,
    config: Optional[Path] = None,
    progress: bool = True,
) -> int:
    """``walletbot evaluate``."""
    from walletbot.trainer import evaluate as ev_cmd
    from walletbot.trainer.models import resolve_model, stem

    try:
        if cv:
            from walletbot.trainer.crossval import cross_validate

            if config is None or train_data is None:
                error(f"cross-validation needs {options.CONFIG} and {options.TRAIN_DATA}")
                return 2
            print(f"{cv}-fold cross-validation of {config} on {train_data} …", flush=True)
            scores = cross_validate(config=config, data=train_data, folds=cv, progress=progress)
            name = f"cv{cv}-{config.stem}"
            context = [f"{cv}-fold cross-validation of {config} on {train_data} "
                       f"({len(scores.predictions)} examples)"]
        else:
            path = resolve_model(model, models_dir=models_dir)
            test_set = _test_set(test, train_data)
            print(f"evaluating {path} on {test_set.describe()}", flush=True)
            scores = ev_cmd.evaluate(model=path, test_set=test_set, progress=progress)
            name = stem(path)
            context = [f"model {path}", test_set.describe()]
    except (FileNotFoundError, ValueError) as exc:
        error(str(exc))
        return 2
    ev_cmd.print_summary(scores)
    written = ev_cmd.write(scores, reports=reports, name=name, context=context, formats=formats)
    print("\nreport: " + ", ".join(str(p) for k, p in written.items() if k in ("md", "html")))
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    return evaluate(
        model=args.model, models_dir=args.models_dir, reports=args.reports,
        formats=args.format.split(","), cv=args.cv, config=args.config,
        **options.test_set(args),
    )


EVALUATE = Command(
    "evaluate",
    help="score a model on the held-out test set (or k-fold CV) and write a report",
    description=(
        "Accuracy, macro-F1, per-intent precision/recall/F1, the confusion matrix (PNG), "
        "misclassified messages and the fallback rate, printed and written as Markdown and "
        f"HTML under reports/. With {_CV} K the pipeline of {_CV_CONFIG} is cross-validated "
        f"on {options.TRAIN_DATA} instead (K trainings)."
    ),
    arguments=(
        _MODEL, options.MODELS_DIR, options.TEST_SET, _CV, _CV_CONFIG, options.REPORTS,
        options.FORMAT.but(default="md,html", help="report formats: md, html or both"),
    ),
    run=_run_evaluate,
)


# --- compare ------------------------------------------------------------------


def _compare(
    *, candidate: Path, current: Path, test: Path, train_data: Optional[Path],
    tolerance: float, intent_tolerance: float, progress: bool,
) -> "Comparison":
    from walletbot.trainer.compare import compare
    from walletbot.trainer.evaluate import evaluate as run_eval

    test_set = _test_set(test, train_data)
    print(f"scoring on {test_set.describe()}", flush=True)
    print(f"  current:   {current}", flush=True)
    current_scores = run_eval(model=current, test_set=test_set, progress=progress)
    print(f"  candidate: {candidate}", flush=True)
    candidate_scores = run_eval(model=candidate, test_set=test_set, progress=progress)
    return compare(
        candidate=candidate_scores, current=current_scores,
        tolerance=tolerance, intent_tolerance=intent_tolerance,
    )


def compare(
    *,
    candidate: Optional[Path],
    current: Optional[Path],
    models_dir: Path,
    test: Path,
    train_data: Optional[Path],
    tolerance: float,
    intent_tolerance: float,
    all_intents: bool = False,
    progress: bool = True,
) -> int:
    """``walletbot compare``: 0 if the candidate is not worse, 1 if it is."""
    from walletbot.trainer import compare as cmp
    from walletbot.trainer.layout import served_model
    from walletbot.trainer.models import resolve_model

    try:
        candidate_path = resolve_model(candidate, models_dir=models_dir)
        current_path = current or served_model(models_dir)
        if not current_path.exists():
            raise FileNotFoundError(f"no current model {current_path} to compare with")
        result = _compare(
            candidate=candidate_path, current=current_path, test=test, train_data=train_data,
            tolerance=tolerance, intent_tolerance=intent_tolerance, progress=progress,
        )
    except (FileNotFoundError, ValueError) as exc:
        error(str(exc))
        return 2
    print("\n" + cmp.render(result, all_intents=all_intents))
    print("\n" + cmp.verdict(result))
    return 0 if result.acceptable else 1


def _run_compare(args: argparse.Namespace) -> int:
    return compare(
        candidate=args.candidate, current=args.current, models_dir=args.models_dir,
        all_intents=args.all, **options.test_set(args), **options.tolerances(args),
    )


COMPARE = Command(
    "compare", help="score the candidate and the served model side by side; exit 1 if worse",
    arguments=(
        Option("--candidate", type=Path, help="default: the latest trained model"),
        Option("--current", type=Path, help="default: the served model"),
        Option("--all", action="store_true", help="list every intent, not only changes"),
        options.MODELS_DIR, options.TEST_SET, options.TOLERANCES,
    ),
    run=_run_compare,
)


# --- promote / rollback -------------------------------------------------------


def _reload(served: Path, *, url: Optional[str], token: Optional[str], timeout: float) -> int:
    from walletbot.trainer.server import ServerError, load_model, server_defaults

    default_url, default_token = server_defaults()
    target = url or default_url
    print(f"asking the Rasa server at {target} to load {served} …", flush=True)
    try:
        load_model(model=served, url=target, token=default_token if token is None else token,
                   timeout=timeout)
    except ServerError as exc:
        error(str(exc))
        return 3
    print("the server now serves the new model")
    return 0


def promote(
    *,
    candidate: Optional[Path],
    models_dir: Path,
    served: Optional[Path],
    test: Path,
    train_data: Optional[Path],
    tolerance: float,
    intent_tolerance: float,
    reload: bool = False,
    url: Optional[str] = None,
    token: Optional[str] = None,
    timeout: float = options.DEFAULT_TIMEOUT,
    progress: bool = True,
) -> int:
    """``walletbot promote``: 0 promoted, 1 refused (worse), 2 usage error, 3 reload failed."""
    from walletbot.trainer import compare as cmp
    from walletbot.trainer.layout import HISTORY, served_model
    from walletbot.trainer.models import resolve_model
    from walletbot.trainer.promote import PromotionError, promote as install, sha256

    served_path = served or served_model(models_dir)
    history = served_path.parent / HISTORY
    try:
        candidate_path = resolve_model(candidate, models_dir=models_dir)
        scores = None
        if served_path.exists() and sha256(served_path) == sha256(candidate_path):
            raise PromotionError(f"{candidate_path.name} is already the served model")
        if served_path.exists():
            result = _compare(
                candidate=candidate_path, current=served_path, test=test,
                train_data=train_data, tolerance=tolerance,
                intent_tolerance=intent_tolerance, progress=progress,
            )
            print("\n" + cmp.render(result))
            print("\n" + cmp.verdict(result))
            if not result.acceptable:
                print(f"refused: {served_path} is unchanged")
                return 1
            scores = {k: round(v, 4) for k, v in result.candidate.items()}
        else:
            print(f"no served model at {served_path} yet: promoting without comparison")
        change = install(candidate=candidate_path, served=served_path, history=history,
                         scores=scores)
    except (FileNotFoundError, ValueError, PromotionError) as exc:
        error(str(exc))
        return 2
    kept = f" (previous kept as {change.kept})" if change.kept else ""
    print(f"promoted {change.installed} → {change.served}{kept}")
    if reload:
        return _reload(change.served, url=url, token=token, timeout=timeout)
    print(f"`make run` serves it from the next start; {options.RELOAD} tells a running server now")
    return 0


def _run_promote(args: argparse.Namespace) -> int:
    return promote(
        candidate=args.candidate, models_dir=args.models_dir, served=args.served,
        **options.test_set(args), **options.tolerances(args), **options.server(args),
    )


PROMOTE = Command(
    "promote", help="serve the candidate if it is not worse than the served model",
    description=(
        "Compares the candidate with the served model (models/walletbot.tar.gz, what "
        "`make run` starts) on the test set and replaces it only if the candidate is not "
        "worse overall or on any intent beyond the tolerances; otherwise refuses (exit 1) "
        "and prints the table. The replaced model is kept in models/history/."
    ),
    arguments=(
        Option("candidate", type=Path, nargs="?",
               help="model to promote (default: the latest trained)"),
        options.SERVED, options.MODELS_DIR, options.TEST_SET, options.TOLERANCES,
        options.SERVER,
    ),
    run=_run_promote,
)


def rollback(
    *,
    models_dir: Path,
    served: Optional[Path],
    reload: bool = False,
    url: Optional[str] = None,
    token: Optional[str] = None,
    timeout: float = options.DEFAULT_TIMEOUT,
) -> int:
    """``walletbot rollback``: restores the previously served model."""
    from walletbot.trainer.layout import HISTORY, served_model
    from walletbot.trainer.promote import PromotionError, rollback as restore

    served_path = served or served_model(models_dir)
    try:
        change = restore(served=served_path, history=served_path.parent / HISTORY)
    except PromotionError as exc:
        error(str(exc))
        return 2
    kept = f"; the replaced one is in {change.kept}" if change.kept else ""
    print(f"rolled back: {change.served} is {change.installed} again{kept}")
    if reload:
        return _reload(change.served, url=url, token=token, timeout=timeout)
    return 0


def _run_rollback(args: argparse.Namespace) -> int:
    return rollback(models_dir=args.models_dir, served=args.served, **options.server(args))


ROLLBACK = Command(
    "rollback", help="serve the previously promoted model again (from models/history/)",
    arguments=(options.SERVED, options.MODELS_DIR, options.SERVER),
    run=_run_rollback,
)

COMMANDS = (TRAIN, EVALUATE, COMPARE, PROMOTE, ROLLBACK)
