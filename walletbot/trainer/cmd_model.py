"""The model subcommands: train, evaluate, compare, promote, rollback.

Each function prints for a trainer and returns the exit status; the logic
lives in the modules it calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

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
            f"(fingerprint {outcome.fingerprint.short}); --force trains again"
        )
    else:
        base = f", fine-tuned from {outcome.finetuned_from.name}" if outcome.finetuned_from else ""
        print(f"trained {outcome.model} in {format_duration(outcome.seconds)}{base}")
    print(f"next: walletbot evaluate --model {outcome.model}   (then walletbot promote)")
    return 0


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
                error("cross-validation needs --config and --train-data")
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
    timeout: float = 300.0,
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
    print("`make run` serves it from the next start; --reload tells a running server now")
    return 0


def rollback(
    *,
    models_dir: Path,
    served: Optional[Path],
    reload: bool = False,
    url: Optional[str] = None,
    token: Optional[str] = None,
    timeout: float = 300.0,
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
