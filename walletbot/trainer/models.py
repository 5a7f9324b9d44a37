"""Trained models in the models folder: names, sidecars, the latest candidate.

``walletbot train`` writes ``walletbot-<YYYYmmdd-HHMMSS>-<fingerprint>.tar.gz``
and a sidecar ``….json`` that records what it was trained from. The model the
bot serves is ``walletbot.tar.gz`` (see :mod:`walletbot.trainer.promote`).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

PREFIX = "walletbot"
SUFFIX = ".tar.gz"
_CANDIDATE_RE = re.compile(rf"^{PREFIX}-(\d{{8}}-\d{{6}})-([0-9a-f]+){re.escape(SUFFIX)}$")


def candidate_name(*, fingerprint_short: str, now: Optional[float] = None) -> str:
    """The file name of a new model: time of training and data fingerprint."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{PREFIX}-{stamp}-{fingerprint_short}{SUFFIX}"


def stem(model: Path) -> str:
    """``walletbot-…`` without ``.tar.gz``."""
    name = model.name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else model.stem


def sidecar_path(model: Path) -> Path:
    """The JSON file next to a model that says how it was trained."""
    return model.with_name(stem(model) + ".json")


def write_sidecar(model: Path, *, info: Dict[str, Any]) -> Path:
    """Writes the sidecar of ``model``."""
    path = sidecar_path(model)
    path.write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def read_sidecar(model: Path) -> Optional[Dict[str, Any]]:
    """The sidecar of ``model``, or None if it has none."""
    path = sidecar_path(model)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


def fingerprint_of_name(model: Path) -> Optional[str]:
    """The fingerprint a candidate's name carries, or None for other names."""
    match = _CANDIDATE_RE.match(model.name)
    return match.group(2) if match else None


def candidates(models_dir: Path) -> List[Path]:
    """Models trained by ``walletbot train``, oldest first."""
    if not models_dir.is_dir():
        return []
    return sorted(p for p in models_dir.iterdir() if _CANDIDATE_RE.match(p.name))


def latest_candidate(models_dir: Path) -> Optional[Path]:
    """The newest model ``walletbot train`` wrote, if any."""
    found = candidates(models_dir)
    return found[-1] if found else None


def with_fingerprint(models_dir: Path, fingerprint_short: str) -> Optional[Path]:
    """An existing candidate trained from exactly these inputs, if any."""
    for model in reversed(candidates(models_dir)):
        if fingerprint_of_name(model) == fingerprint_short:
            return model
    return None


def resolve_model(model: Optional[Path], *, models_dir: Path) -> Path:
    """``model`` if given, else the latest candidate, else the served model.

    Raises:
        FileNotFoundError: with a message that says what to do.
    """
    from walletbot.trainer.layout import served_model

    if model is not None:
        if not model.exists():
            raise FileNotFoundError(f"model {model} does not exist")
        return model
    found = latest_candidate(models_dir) or served_model(models_dir)
    if not found.exists():
        raise FileNotFoundError(
            f"no model in {models_dir}/: train one with `walletbot train` or pass --model"
        )
    return found
