"""`make deps` (scripts/deps.sh): one list of system packages, installed or named, never skipped."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEPS = ROOT / "scripts" / "deps.sh"


def _bare_path(tmp_path):
    """A PATH with a shell and a few core tools only: no make, git, apt-get, fc-list…"""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "id", "ls", "grep", "cat"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True,
                               text=True).stdout.strip()
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_on_this_machine_nothing_is_missing():
    done = subprocess.run([str(DEPS), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_bare_machine_is_told_the_exact_apt_line_before_any_test(tmp_path):
    env = dict(os.environ, PATH=_bare_path(tmp_path))
    check = subprocess.run(["bash", str(DEPS), "--check"], capture_output=True, text=True, env=env)
    assert check.returncode == 1 and "make" in check.stdout and "fonts-wqy-microhei" in check.stdout
    done = subprocess.run(["bash", str(DEPS)], capture_output=True, text=True, env=env)
    assert done.returncode == 1
    assert "apt-get install -y make git" in done.stderr and "fonts-wqy-microhei" in done.stderr
    assert "make test-fast" in done.stderr


def test_make_test_and_ci_use_the_same_list():
    makefile = (ROOT / "Makefile").read_text()
    assert "\ntest: deps " in makefile and "scripts/deps.sh" in makefile
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make deps" in ci and "make test" in ci and "apt-get install -y -qq make" in ci
    assert "chromium" not in ci  # the list lives in scripts/deps.sh only
