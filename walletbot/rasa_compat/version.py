"""The Rasa release walletbot's patches are written for, checked before Rasa starts.

Everything in walletbot.rasa_compat reaches into Rasa 3.6.21's internals
(private methods, module attributes looked up at call time, the order of
statements in ``rasa/server.py``): another release may run with a patch
silently doing nothing or doing the wrong thing. The server entry point
(``python -m walletbot.server``) therefore refuses to start on any other
version. The pins below must equal requirements.txt and constraints.txt
(tests/walletbot/rasa_compat/test_version.py checks that).

``python -m walletbot.rasa_compat.version`` runs the same check alone (exit
status 0 or EXIT_WRONG_VERSION), for scripts that want to fail before they
start anything else.

Import-light on purpose: the check reads the installed distributions'
metadata and never imports Rasa, so it also works when the installed Rasa is
too broken to import.
"""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Dict, List, NamedTuple, Optional

RASA_VERSION = "3.6.21"
RASA_SDK_VERSION = "3.6.2"
REQUIRED: Dict[str, str] = {"rasa": RASA_VERSION, "rasa-sdk": RASA_SDK_VERSION}

# Distinct from Rasa's own 1 (bad arguments, failed command) so that scripts
# and supervisors can tell "wrong installation" from "Rasa failed".
EXIT_WRONG_VERSION = 3


class Mismatch(NamedTuple):
    distribution: str
    installed: Optional[str]  # None: not installed at all
    required: str


class WrongRasaVersion(RuntimeError):
    """The installed Rasa (or Rasa SDK) is not the release walletbot pins."""

    def __init__(self, mismatches: List[Mismatch]) -> None:
        self.mismatches = mismatches
        super().__init__(describe(mismatches))


def installed_version(distribution: str) -> Optional[str]:
    # Looked up through the module at call time (not imported by name), so a
    # test can stand in a different installation by patching
    # importlib.metadata.version.
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def mismatches() -> List[Mismatch]:
    found = []
    for distribution, required in REQUIRED.items():
        installed = installed_version(distribution)
        if installed != required:
            found.append(Mismatch(distribution, installed, required))
    return found


def describe(found: List[Mismatch]) -> str:
    lines = ["refusing to start: walletbot's patches of Rasa (walletbot/rasa_compat) are "
             "written for exactly the pinned Rasa release."]
    for m in found:
        have = "not installed" if m.installed is None else f"{m.installed} is installed"
        lines.append(f"  {m.distribution}: {have}, required {m.distribution}=={m.required}")
    lines.append("Fix: run `make install` (installs requirements.txt with constraints.txt "
                 "into .venv).")
    return "\n".join(lines)


def check() -> None:
    """Raises WrongRasaVersion unless the pinned Rasa and Rasa SDK are installed."""
    found = mismatches()
    if found:
        raise WrongRasaVersion(found)


def check_or_exit(prog: str = "walletbot") -> None:
    """check(); on a mismatch, prints why to stderr and exits with EXIT_WRONG_VERSION."""
    try:
        check()
    except WrongRasaVersion as error:
        print(f"{prog}: {error}", file=sys.stderr)
        raise SystemExit(EXIT_WRONG_VERSION) from None


if __name__ == "__main__":
    check_or_exit("walletbot.rasa_compat.version")
