"""scripts/desk_screenshots.py, the README's pictures of the desk's queue and dashboard, works."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.e2e.browser import chromium_path
from tests.e2e.test_screenshots import png_size
from walletbot.settings import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "desk_screenshots.py"
MIN_BYTES = 40 * 1024  # a blank 1280×800 page compresses to a few KB


def test_script_takes_both_desk_screenshots(tmp_path):
    chromium = chromium_path()  # skips without chromium, except under CI=true
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--chromium", chromium],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    queue, dashboard = tmp_path / "desk_queue.png", tmp_path / "desk_dashboard.png"
    for path in (queue, dashboard):
        assert path.is_file(), f"{path.name} missing:\n{result.stdout}"
        assert len(path.read_bytes()) > MIN_BYTES, f"{path.name} is small: blank?"
    assert png_size(queue.read_bytes()) == (1280, 800)
    width, height = png_size(dashboard.read_bytes())
    assert width == 1280 and height > 800  # the whole page
    # What the script checked on each page before it took the picture.
    out = result.stdout
    assert re.search(r"desk_queue\.png \(\d+ KB\): 5 open tickets, T\d{6} \(李四\) open "
                     r"with 小王's replies", out), out
    scripted = re.search(r"(\d+) conversations and \d+ tickets scripted", out)
    assert scripted, out
    assert re.search(rf"desk_dashboard\.png \(\d+ KB\): 会话数 {scripted.group(1)} as scripted, "
                     r"(\d+) unanswered questions", out), out
