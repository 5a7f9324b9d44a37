"""``walletbot train``: trains a model through Rasa's Python API.

The model goes to ``<models>/walletbot-<time>-<fingerprint>.tar.gz`` with a
JSON sidecar of its inputs. Inputs already trained are not trained again
(unless forced). ``--finetune`` continues from an earlier model, which is only
sound when the config and custom component code are unchanged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from walletbot.trainer import models as model_files
from walletbot.trainer.fingerprint import Fingerprint, fingerprint

LATEST = "latest"


class TrainingError(RuntimeError):
    """Training could not start or failed; the message says what to do."""


@dataclass(frozen=True)
class TrainOutcome:
    """What ``train`` did."""

    model: Path
    fingerprint: Fingerprint
    seconds: float
    skipped: bool = False
    finetuned_from: Optional[Path] = None


def format_duration(seconds: float) -> str:
    """``4 min 58 s`` / ``12.3 s``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s"


def _finetune_base(
    finetune: str, *, models_dir: Path, current: Fingerprint
) -> Path:
    base = model_files.latest_candidate(models_dir) if finetune == LATEST else Path(finetune)
    if base is None or not base.exists():
        raise TrainingError(
            f"no model to fine-tune in {models_dir}/: train once without --finetune"
            if finetune == LATEST else f"model to fine-tune {finetune} does not exist"
        )
    sidecar = model_files.read_sidecar(base) or {}
    recorded = sidecar.get("fingerprint")
    if recorded:
        old = Fingerprint(**{k: recorded[k] for k in ("config", "domain", "data", "code")})
        blocking = [p for p in current.changed_parts(old) if p in ("config", "code")]
        if blocking:
            raise TrainingError(
                f"cannot fine-tune {base.name}: {' and '.join(blocking)} changed since it "
                "was trained (fine-tuning needs the same pipeline); train without --finetune"
            )
    return base


def _code_changed(*, models_dir: Path, current: Fingerprint) -> bool:
    """Whether custom component code changed since the latest model.

    Rasa's training cache keys on configs and inputs, not on a component's
    source code, so a code change must bypass the cache.
    """
    latest = model_files.latest_candidate(models_dir)
    recorded = (model_files.read_sidecar(latest) or {}).get("fingerprint") if latest else None
    return not recorded or recorded.get("code") != current.code


def _quiet_training_logs() -> None:
    from walletbot.trainer.evaluation import quiet_rasa_logs

    quiet_rasa_logs()
    for name in ("rasa", "tensorflow", "absl", "jieba"):
        logging.getLogger(name).setLevel(logging.WARNING)


def train(
    *,
    config: Path,
    domain: Path,
    data: Path,
    models_dir: Path,
    finetune: Optional[str] = None,
    epoch_fraction: float = 1.0,
    force: bool = False,
    verbose: bool = False,
) -> TrainOutcome:
    """Trains a model (or finds the one already trained from the same inputs).

    Args:
        config: Rasa config (pipeline and policies).
        domain: Rasa domain.
        data: training data folder.
        models_dir: where models are written.
        finetune: ``"latest"`` or a model path to continue training from.
        epoch_fraction: share of the configured epochs used when fine-tuning.
        force: train even if a model with the same fingerprint exists.
        verbose: keep Rasa's info logs.

    Raises:
        TrainingError: the message says what to do.
    """
    for path in (config, domain, data):
        if not path.exists():
            raise TrainingError(f"{path} does not exist")
    current = fingerprint(config=config, domain=domain, data=data)
    existing = model_files.with_fingerprint(models_dir, current.short)
    if existing is not None and not force and finetune is None:
        return TrainOutcome(model=existing, fingerprint=current, seconds=0.0, skipped=True)
    base = (
        _finetune_base(finetune, models_dir=models_dir, current=current)
        if finetune is not None else None
    )
    if not verbose:
        _quiet_training_logs()

    import rasa.api
    from rasa.shared.exceptions import RasaException

    models_dir.mkdir(parents=True, exist_ok=True)
    name = model_files.candidate_name(fingerprint_short=current.short)
    started = time.monotonic()
    try:
        result = rasa.api.train(
            domain=str(domain),
            config=str(config),
            training_files=[str(data)],
            output=str(models_dir),
            fixed_model_name=name,
            force_training=force or _code_changed(models_dir=models_dir, current=current),
            model_to_finetune=str(base) if base else None,
            finetuning_epoch_fraction=epoch_fraction,
        )
    except Exception as exc:  # Rasa wraps component errors in its own exceptions
        cause = exc.__cause__ if isinstance(exc, RasaException) and exc.__cause__ else exc
        hint = "; train without --finetune" if base else "; --verbose shows Rasa's log"
        raise TrainingError(
            f"training failed: {type(cause).__name__}: {cause}{hint}"
        ) from exc
    seconds = time.monotonic() - started
    if result.code != 0 or not result.model:
        raise TrainingError(f"Rasa training failed (code {result.code}); see the log above")
    model = Path(result.model)
    model_files.write_sidecar(
        model,
        info={
            "model": model.name,
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(seconds, 1),
            "config": str(config),
            "domain": str(domain),
            "data": str(data),
            "finetuned_from": base.name if base else None,
            "epoch_fraction": epoch_fraction if base else None,
            "fingerprint": current.as_dict(),
        },
    )
    return TrainOutcome(model=model, fingerprint=current, seconds=seconds, finetuned_from=base)
