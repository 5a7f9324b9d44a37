"""Fingerprints of what a model is trained from: config, domain, data, component code.

A model's file name carries the combined fingerprint, so the same inputs are
never trained twice and a model says what it was trained on. The parts are
kept apart because fine-tuning is only sound when the config and the custom
components' code are unchanged (only data changed).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterable, List

import yaml

SHORT = 10


@dataclass(frozen=True)
class Fingerprint:
    """SHA-256 digests of the training inputs."""

    config: str
    domain: str
    data: str
    code: str

    @property
    def combined(self) -> str:
        """One digest of all parts."""
        joined = "|".join((self.config, self.domain, self.data, self.code))
        return hashlib.sha256(joined.encode()).hexdigest()

    @property
    def short(self) -> str:
        """The first characters of :attr:`combined`, as used in model names."""
        return self.combined[:SHORT]

    def as_dict(self) -> Dict[str, str]:
        """The parts and the combined digest, for a JSON sidecar."""
        return {**asdict(self), "combined": self.combined}

    def changed_parts(self, other: "Fingerprint") -> List[str]:
        """Names of the parts that differ from ``other``."""
        return [name for name in ("config", "domain", "data", "code")
                if getattr(self, name) != getattr(other, name)]


# Folders under data/ that no model is trained from: the desk's canned replies.
NOT_TRAINING_DATA = ("desk",)


def _files_under(path: Path, skip: Iterable[str] = ()) -> List[Path]:
    if path.is_file():
        return [path]
    skipped = set(skip)
    return sorted(
        p for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        and p.relative_to(path).parts[0] not in skipped
    )


def digest_files(paths: Iterable[Path], skip: Iterable[str] = ()) -> str:
    """SHA-256 over the relative names and bytes of every file under ``paths``.

    ``skip``: top-level folder names under a directory root that do not count.
    """
    sha = hashlib.sha256()
    skip = tuple(skip)
    for root in paths:
        for file in _files_under(root, skip):
            name = file.name if root.is_file() else file.relative_to(root).as_posix()
            sha.update(name.encode() + b"\0" + file.read_bytes() + b"\0")
    return sha.hexdigest()


def custom_component_dirs(config: Path) -> List[Path]:
    """Package folders of the custom components the config names (``walletbot.nlu.…``)."""
    data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    folders = set()
    for item in (data.get("pipeline") or []) + (data.get("policies") or []):
        name = str((item or {}).get("name", ""))
        if "." not in name:
            continue
        module = name.rsplit(".", 1)[0]
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            folders.add(Path(spec.origin).parent)
    return sorted(folders)


def fingerprint(*, config: Path, domain: Path, data: Path) -> Fingerprint:
    """The fingerprint of a training run's inputs."""
    code_dirs = custom_component_dirs(config)
    code_files = [f for d in code_dirs for f in sorted(d.glob("*.py"))]
    return Fingerprint(
        config=digest_files([config]),
        domain=digest_files([domain]),
        data=digest_files([data], skip=NOT_TRAINING_DATA),
        code=digest_files(code_files),
    )
