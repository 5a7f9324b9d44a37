"""scripts/screenshots.py, the README's pictures of the chat page and the desk, still works."""

from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

from tests.e2e.browser import chromium_path
from walletbot.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

SCRIPT = PROJECT_ROOT / "scripts" / "screenshots.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The script's viewports: a phone of 390×844 CSS px at device scale 2, a desktop at 1.
EXPECTED = {"chat.png": (780, 1688), "desk.png": (1280, 800)}
MIN_BYTES = 20 * 1024  # a blank page of either size compresses to a few KB


def png_size(data: bytes) -> tuple:
    """Width and height from the IHDR chunk, which a valid PNG has first."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG file"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, "the first chunk is not IHDR"
    return struct.unpack(">II", data[16:24])


def test_script_takes_both_screenshots(trained_model, tmp_path):
    chromium = chromium_path()  # skips without chromium, except under CI=true
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path),
         "--model", str(trained_model), "--chromium", chromium],
        cwd=PROJECT_ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    for name, size in EXPECTED.items():
        path = tmp_path / name
        assert path.is_file(), f"{name} missing:\n{result.stdout}"
        data = path.read_bytes()
        assert png_size(data) == size, name
        assert len(data) > MIN_BYTES, f"{name} is only {len(data)} bytes: blank?"
