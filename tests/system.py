"""What a test does when a system package it needs (PostgreSQL, Redis, nginx, Chromium) is missing.

It fails, naming the fix: `make test` installs the packages first (`make deps`), and a
newcomer must never believe everything passed when part of the system was not tested.
A skip happens only when the developer asked for it (`make test-fast` sets
``WALLETBOT_ALLOW_SKIPS=1``); CI never does.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

ALLOW_SKIPS = "WALLETBOT_ALLOW_SKIPS"


def skips_allowed() -> bool:
    return os.environ.get(ALLOW_SKIPS) == "1" and os.environ.get("CI") != "true"


def missing(message: str) -> NoReturn:
    """Fails (or, when skips were asked for, skips) because ``message`` is missing."""
    if skips_allowed():
        pytest.skip(message)
    pytest.fail(f"{message}: run `make deps` (or `make test-fast`, which may skip)")
