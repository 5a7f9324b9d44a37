"""The Rasa server and the action server as separate processes (kill one, restart it).

scripts/run.sh stops both when either dies, which is right for `make run` but
not for testing what users see while one of them is down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

from tests.e2e.conftest import http_get
from walletbot.settings import PROJECT_ROOT

BIN = PROJECT_ROOT / ".venv" / "bin"
# What every launcher runs instead of `rasa`: the version check and
# walletbot's patches of Rasa first (walletbot/server.py).
SERVER = [str(BIN / "python"), "-m", "walletbot.server"]


class Stack:
    """One action server and one Rasa server sharing ``var``'s databases."""

    def __init__(self, model: Path, var: Path, rasa_port: int, action_port: int,
                 env: Optional[Dict[str, str]] = None) -> None:
        self.model, self.var = model, var
        self.rasa_port, self.action_port = rasa_port, action_port
        var.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ if env is None else env)
        self.env.update(
            RASA_PORT=str(rasa_port), ACTION_PORT=str(action_port),
            ACTION_ENDPOINT_URL=f"http://127.0.0.1:{action_port}/webhook",
            TRACKER_DB_URL=f"sqlite:///{var / 'tracker.db'}",
            WALLET_DB_URL=f"sqlite:///{var / 'wallet.db'}",
        )
        self.env.pop("REDIS_URL", None)
        self.rasa: Optional[subprocess.Popen] = None
        self.actions: Optional[subprocess.Popen] = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def _spawn(self, name: str, argv: List[str], env: Dict[str, str]) -> subprocess.Popen:
        log = open(self.var / f"{name}.log", "ab")
        return subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, start_new_session=True,
                                stdout=log, stderr=subprocess.STDOUT)

    def _wait(self, url: str, process: subprocess.Popen, name: str, timeout: float = 240) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited:\n" + (self.var / f"{name}.log").read_text()[-3000:])
            try:
                if http_get(url)[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"{name} not ready:\n" + (self.var / f"{name}.log").read_text()[-3000:])

    def start_actions(self, **overrides: str) -> None:
        env = {**self.env, **overrides}
        self.actions = self._spawn("actions", [*SERVER, "run", "actions", "--actions",
                                               "actions", "--port", str(self.action_port)], env)
        self._wait(f"http://127.0.0.1:{self.action_port}/health", self.actions, "actions")

    def start_rasa(self) -> None:
        self.rasa = self._spawn("rasa", [
            *SERVER, "run", "--model", str(self.model), "--interface", "127.0.0.1",
            "--port", str(self.rasa_port), "--enable-api", "--auth-token",
            self.env["RASA_AUTH_TOKEN"], "--endpoints", "endpoints.yml",
            "--credentials", "credentials.yml",
        ], self.env)
        self._wait(f"{self.base}/", self.rasa, "rasa")

    @staticmethod
    def _kill(process: Optional[subprocess.Popen]) -> None:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def kill_actions(self) -> None:
        self._kill(self.actions)

    def kill_rasa(self) -> None:
        self._kill(self.rasa)

    def stop(self) -> None:
        self.kill_rasa()
        self.kill_actions()

    def say(self, sender: str, message: str) -> List[Dict]:
        body = json.dumps({"sender": sender, "message": message}).encode()
        request = urllib.request.Request(f"{self.base}/webhooks/rest/webhook", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def text(self, sender: str, message: str) -> str:
        return "\n".join(m.get("text", "") for m in self.say(sender, message))
