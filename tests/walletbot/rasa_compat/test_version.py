"""The pinned Rasa release, and the start-up refusal of any other."""

from __future__ import annotations

import re
import subprocess
import textwrap
from importlib import metadata
from typing import Dict

import pytest

from walletbot.rasa_compat import version
from walletbot.settings import PROJECT_ROOT

PYTHON = str(PROJECT_ROOT / ".venv" / "bin" / "python")


def pins(path) -> Dict[str, str]:
    """``name==version`` lines of a requirements file (extras dropped, names normalised)."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Za-z0-9._-]+)(\[[^\]]*\])?\s*==\s*([^\s;#]+)", line)
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(3)
    return found


@pytest.mark.parametrize("file", ["requirements.txt", "constraints.txt"])
def test_the_required_versions_are_the_pins(file):
    pinned = pins(PROJECT_ROOT / file)
    assert {name: pinned.get(name) for name in version.REQUIRED} == version.REQUIRED


def test_the_installed_rasa_is_the_pinned_one():
    assert version.mismatches() == []
    version.check()


def fake_versions(monkeypatch, **versions):
    """importlib.metadata.version answering ``versions`` (None: not installed)."""
    real = metadata.version

    def lookup(name):
        key = name.replace("-", "_")
        if key in versions:
            if versions[key] is None:
                raise metadata.PackageNotFoundError(name)
            return versions[key]
        return real(name)

    monkeypatch.setattr(metadata, "version", lookup)


def test_another_rasa_release_is_refused(monkeypatch):
    fake_versions(monkeypatch, rasa="3.6.20")
    with pytest.raises(version.WrongRasaVersion) as refused:
        version.check()
    assert refused.value.mismatches == [version.Mismatch("rasa", "3.6.20", "3.6.21")]
    message = str(refused.value)
    assert "rasa: 3.6.20 is installed, required rasa==3.6.21" in message
    assert "make install" in message


def test_another_rasa_sdk_or_none_at_all_is_refused(monkeypatch):
    fake_versions(monkeypatch, rasa=None, rasa_sdk="3.7.0")
    with pytest.raises(version.WrongRasaVersion) as refused:
        version.check()
    message = str(refused.value)
    assert "rasa: not installed, required rasa==3.6.21" in message
    assert "rasa-sdk: 3.7.0 is installed, required rasa-sdk==3.6.2" in message


def run_with_versions(code: str, **versions: str) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter whose metadata reports ``versions``."""
    prelude = textwrap.dedent(f"""
        import importlib.metadata as metadata
        real, fake = metadata.version, {versions!r}
        metadata.version = lambda name: fake.get(name, real(name))
    """)
    return subprocess.run([PYTHON, "-c", prelude + textwrap.dedent(code)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_the_entry_point_refuses_to_start_on_another_rasa():
    ran = run_with_versions("""
        import sys
        from walletbot import server
        server.main(["run", "--model", "models/walletbot.tar.gz"])
        print("rasa started")
        sys.exit(0)
    """, rasa="3.6.22")
    assert ran.returncode == version.EXIT_WRONG_VERSION, ran.stderr
    assert "rasa started" not in ran.stdout
    assert ran.stderr.startswith("walletbot.server: refusing to start")
    assert "rasa: 3.6.22 is installed, required rasa==3.6.21" in ran.stderr
    assert "Fix: run `make install`" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_the_entry_point_refuses_before_importing_rasa():
    ran = run_with_versions("""
        import sys
        from walletbot import server
        try:
            server.main(["run"])
        finally:
            print("imported rasa" if "rasa" in sys.modules else "rasa not imported")
    """, **{"rasa-sdk": "3.6.1"})
    assert ran.returncode == version.EXIT_WRONG_VERSION
    assert "rasa-sdk: 3.6.1 is installed, required rasa-sdk==3.6.2" in ran.stderr
    assert ran.stdout.strip() == "rasa not imported"


def test_the_version_check_alone_exits_3_on_another_rasa():
    ran = run_with_versions("""
        import runpy
        runpy.run_module("walletbot.rasa_compat.version", run_name="__main__")
    """, rasa="3.7.0")
    assert ran.returncode == version.EXIT_WRONG_VERSION
    assert ran.stderr.startswith("walletbot.rasa_compat.version: refusing to start")


def test_the_version_check_alone_passes_on_the_pinned_rasa():
    ran = subprocess.run([PYTHON, "-m", "walletbot.rasa_compat.version"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "", "")


def test_the_entry_point_hands_the_pinned_rasa_over_to_rasas_cli():
    ran = subprocess.run([PYTHON, "-m", "walletbot.server", "run", "actions", "--help"],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("usage: rasa run actions")
    assert "refusing" not in ran.stderr
