"""Starting the whole bot (scripts/run.sh, as `make run` does) for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import pytest

from walletbot.settings import PROJECT_ROOT


@dataclass
class RunningBot:
    process: subprocess.Popen
    rasa_port: int
    action_port: int
    var: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def say(self, sender: str, message: str) -> List[Dict]:
        """Posts to the REST channel; returns the bot's messages."""
        body = json.dumps({"sender": sender, "message": message}).encode()
        request = urllib.request.Request(
            f"{self.base}/webhooks/rest/webhook", data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def text(self, sender: str, message: str) -> str:
        return "\n".join(m.get("text", "") for m in self.say(sender, message))

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)


def http_get(url: str, headers: Dict[str, str] | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read().decode()


def start_bot(model: Path, var: Path, env: Dict[str, str], rasa_port: int, action_port: int,
              *, action_endpoint: str = "", ready_paths: tuple = ()) -> RunningBot:
    """scripts/run.sh with its own ports and databases under ``var``.

    ``action_endpoint`` lets Rasa call actions through something else (a
    proxy); ``ready_paths`` are extra Rasa URLs that must answer first.
    """
    var.mkdir(parents=True, exist_ok=True)
    env = dict(env)
    env.pop("REDIS_URL", None)
    env.update(
        RASA_PORT=str(rasa_port),
        ACTION_PORT=str(action_port),
        ACTION_ENDPOINT_URL=action_endpoint or f"http://127.0.0.1:{action_port}/webhook",
        TRACKER_DB_URL=f"sqlite:///{var / 'tracker.db'}",
        WALLET_DB_URL=f"sqlite:///{var / 'wallet.db'}",
        MODEL=str(model),
        LOG_DIR=str(var),
    )
    log = open(var / "bot.log", "wb")
    process = subprocess.Popen(
        ["scripts/run.sh"], cwd=PROJECT_ROOT, env=env, start_new_session=True,
        stdout=log, stderr=subprocess.STDOUT,
    )
    bot = RunningBot(process, rasa_port, action_port, var)
    deadline = time.time() + 240
    urls = [f"{bot.base}/", f"http://127.0.0.1:{action_port}/health"]
    urls += [f"{bot.base}{path}" for path in ready_paths]
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError("run.sh exited early:\n" + (var / "bot.log").read_text()[-3000:])
        try:
            if all(http_get(url)[0] == 200 for url in urls):
                return bot
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(1)
    bot.stop(signal.SIGKILL)
    raise AssertionError("servers not ready in time:\n" + (var / "bot.log").read_text()[-3000:])


@pytest.fixture(scope="module")
def bot(trained_model, tmp_path_factory):
    """One running bot shared by a test module, with its own databases."""
    running = start_bot(
        trained_model, tmp_path_factory.mktemp("bot"), dict(os.environ), 15105, 15155
    )
    yield running
    running.stop(signal.SIGKILL)
