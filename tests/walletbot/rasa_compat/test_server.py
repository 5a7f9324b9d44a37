"""walletbot/server.py: version check, then the patches, then Rasa's own CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest
import rasa.__main__

import walletbot.rasa_compat
from walletbot import server
from walletbot.ops import observe
from walletbot.rasa_compat import version
from walletbot.settings import PROJECT_ROOT


@pytest.fixture
def steps(monkeypatch):
    """What main() did, in order; Rasa's CLI only records its sys.argv."""
    done = []
    monkeypatch.setattr(sys, "argv", ["/path/to/walletbot/server.py", "ignored"])
    monkeypatch.setattr(version, "check", lambda: done.append("check"))
    monkeypatch.setattr(walletbot.rasa_compat, "install", lambda: done.append("install"))
    monkeypatch.setattr(observe, "start",
                        lambda action_server: done.append(("observe", action_server)))
    monkeypatch.setattr(rasa.__main__, "main", lambda: done.append(("rasa", list(sys.argv))))
    return done


def test_the_rasa_server_gets_the_patches_before_rasas_cli_runs(steps):
    args = ["run", "--model", "models/walletbot.tar.gz", "--enable-api"]
    server.main(args)
    assert steps == ["check", "install", ("observe", False),
                     ("rasa", ["/path/to/walletbot/server.py", *args])]


def test_the_action_server_gets_the_check_and_its_logs_and_metrics_only(steps):
    server.main(["run", "actions", "--actions", "actions"])
    assert steps == ["check", ("observe", True),
                     ("rasa", ["/path/to/walletbot/server.py", "run", "actions",
                               "--actions", "actions"])]


def test_arguments_default_to_the_command_line(steps, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["server.py", "run", "--port", "5005"])
    server.main()
    assert steps == ["check", "install", ("observe", False),
                     ("rasa", ["server.py", "run", "--port", "5005"])]


def test_a_wrong_version_stops_before_the_patches_and_rasa(steps, monkeypatch):
    def refuse():
        raise version.WrongRasaVersion([version.Mismatch("rasa", "3.6.22", "3.6.21")])

    monkeypatch.setattr(version, "check", refuse)
    with pytest.raises(SystemExit) as stopped:
        server.main(["run"])
    assert stopped.value.code == version.EXIT_WRONG_VERSION
    assert steps == []


def test_the_patches_are_installed_in_a_real_start():
    # Rasa's CLI is stopped by argparse (`--help`) after the patches went in.
    code = ("import sys, rasa.core.agent\n"
            "from walletbot import server\n"
            "try:\n"
            "    server.main(['run', '--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "from rasa.engine.runner.dask import DaskGraphRunner\n"
            "print('planned' if hasattr(DaskGraphRunner.run, '__wrapped__') else 'dask',"
            " file=sys.stderr)\n"
            "print('wrapped' if getattr(rasa.core.agent.load_agent, '_walletbot_freezes', False)"
            " else 'plain', file=sys.stderr)\n"
            "from rasa.core.policies.rule_policy import RulePolicy\n"
            "print('memo' if hasattr(RulePolicy._get_possible_keys, '__wrapped__') else 'scan',"
            " file=sys.stderr)\n"
            "from rasa.core.processor import MessageProcessor\n"
            "print('gated' if getattr(MessageProcessor.handle_message, '_walletbot_admission',"
            " False) else 'open', file=sys.stderr)\n")
    ran = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=180)
    assert ran.returncode == 0, ran.stderr
    assert "usage: rasa run" in ran.stdout
    assert ran.stderr.strip().endswith("planned\nwrapped\nmemo\ngated")
