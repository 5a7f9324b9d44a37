"""Promoting a model to the one the bot serves, keeping the previous ones.

The served model (``models/walletbot.tar.gz``, what ``make run`` starts) is
replaced atomically. The model it replaces goes to ``models/history/`` first,
so ``rollback`` can bring it back; ``history/log.jsonl`` records every step.
Replaced files get a fresh modification time, so ``make run`` does not
retrain over a promoted or restored model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from walletbot.trainer.models import stem

LOG = "log.jsonl"
ROLLED_BACK = "rolled_back"


class PromotionError(RuntimeError):
    """The files could not be promoted or rolled back; the message says why."""


@dataclass(frozen=True)
class Change:
    """What promote or rollback did to the served model."""

    served: Path
    installed: str
    kept: Optional[Path]


def sha256(path: Path) -> str:
    """Digest of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_log(history: Path) -> List[Dict[str, Any]]:
    """Every promote and rollback, oldest first."""
    path = history / LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _append_log(history: Path, entry: Dict[str, Any]) -> None:
    history.mkdir(parents=True, exist_ok=True)
    with (history / LOG).open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")


def _served_name(served: Path, history: Path, digest: str) -> str:
    """The name the served model was promoted under, if the log knows it."""
    for entry in reversed(read_log(history)):
        if entry.get("sha256") == digest:
            return stem(Path(entry["model"]))
    return stem(served)


def history_models(history: Path) -> List[Path]:
    """Models that were served before, oldest first."""
    if not history.is_dir():
        return []
    return sorted(p for p in history.glob("*.tar.gz") if p.is_file())


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _unique(path: Path) -> Path:
    n = 1
    candidate = path
    while candidate.exists():
        n += 1
        candidate = path.with_name(path.name.replace(".tar.gz", f"-{n}.tar.gz"))
    return candidate


def _keep(served: Path, folder: Path, history: Path) -> Optional[Path]:
    """Moves the served model into ``folder`` under a dated name."""
    if not served.exists():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    name = _served_name(served, history, sha256(served))
    kept = _unique(folder / f"{_stamp()}-{name}.tar.gz")
    shutil.copyfile(served, kept)
    return kept


def _install(source: Path, served: Path, *, move: bool) -> None:
    """Puts ``source`` at ``served`` atomically, with a fresh modification time."""
    served.parent.mkdir(parents=True, exist_ok=True)
    tmp = served.with_name(f".{served.name}.tmp")
    if move:
        shutil.move(str(source), tmp)
    else:
        shutil.copyfile(source, tmp)
    os.utime(tmp)
    os.replace(tmp, served)


def promote(
    *, candidate: Path, served: Path, history: Path, scores: Optional[Dict[str, Any]] = None
) -> Change:
    """Makes ``candidate`` the served model; the previous one goes to ``history``."""
    if not candidate.exists():
        raise PromotionError(f"model {candidate} does not exist")
    if candidate.resolve() == served.resolve():
        raise PromotionError(f"{candidate} is already the served model")
    digest = sha256(candidate)
    if served.exists() and sha256(served) == digest:
        raise PromotionError(f"{candidate.name} is already the served model")
    kept = _keep(served, history, history)
    _install(candidate, served, move=False)
    _append_log(history, {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "action": "promote",
        "model": candidate.name, "sha256": digest,
        "replaced": kept.name if kept else None, "scores": scores,
    })
    return Change(served=served, installed=candidate.name, kept=kept)


def rollback(*, served: Path, history: Path) -> Change:
    """Restores the most recent model in ``history``; the served one is set aside."""
    previous = history_models(history)
    if not previous:
        raise PromotionError(f"nothing to roll back to: {history}/ has no earlier model")
    restore = previous[-1]
    kept = _keep(served, history / ROLLED_BACK, history)
    digest = sha256(restore)
    _install(restore, served, move=True)
    # The restored file's name is <stamp>-<original name>.
    original = restore.name.split("-", 2)[-1] if restore.name.count("-") >= 2 else restore.name
    _append_log(history, {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "action": "rollback",
        "model": original, "sha256": digest, "replaced": kept.name if kept else None,
    })
    return Change(served=served, installed=original, kept=kept)
