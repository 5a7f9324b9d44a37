"""Debian's chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
import shutil

import pytest
from playwright.sync_api import sync_playwright

from tests.system import missing

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str:
    """The system chromium (see :mod:`tests.system` when it is missing)."""
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("chromium")
    if found:
        return found
    missing("Debian's chromium is not installed (apt-get install chromium fonts-wqy-microhei)")


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=path, args=["--no-sandbox"], headless=True)
        yield instance
        instance.close()
