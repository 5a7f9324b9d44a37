"""The production profile (scripts/prod.sh) as a fixture: the whole stack, once per module.

PostgreSQL, Redis and nginx come from the machine's packages. Without them
the tests are skipped, or fail when ``CI=true`` (a CI machine that lacks them
is misconfigured, and a skip would hide that).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.client import HTTPConnection
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

import pytest

from walletbot.settings import DEV_ENV_FILE, PROJECT_ROOT, read_env_file

from tests.system import missing

PROD_SH = PROJECT_ROOT / "scripts" / "prod.sh"
MAKE_ENV = PROJECT_ROOT / "scripts" / "prod" / "make_env.py"
PYTHON = str(PROJECT_ROOT / ".venv" / "bin" / "python")
START_TIMEOUT = 300
# Per conversation and minute: "no limit" for a benchmark (production refuses 0).
UNREACHED_RATE_LIMIT = 1_000_000


# --- binaries -----------------------------------------------------------------


def find_postgres_bin() -> Optional[str]:
    """Folder of PostgreSQL's server binaries (as scripts/prod.sh looks for it)."""
    initdb = shutil.which("initdb")
    if initdb:
        folder = os.path.dirname(os.path.realpath(initdb))
        if os.access(os.path.join(folder, "postgres"), os.X_OK):
            return folder

    def version(path: str) -> Tuple[int, ...]:
        return tuple(int(p) for p in Path(path).parent.name.split(".") if p.isdigit())

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if all(os.access(os.path.join(folder, b), os.X_OK) for b in ("initdb", "postgres")):
            return folder
    return None


def find_binaries() -> Dict[str, Optional[str]]:
    """Where the stack's servers are; None for a missing one."""
    def which(name: str, *extra: str) -> Optional[str]:
        return shutil.which(name) or next((p for p in extra if os.access(p, os.X_OK)), None)

    return {
        "postgresql (initdb, postgres)": find_postgres_bin(),
        "redis-server": which("redis-server", "/usr/bin/redis-server"),
        "nginx": which("nginx", "/usr/sbin/nginx"),
    }


def require_binaries(found: Optional[Dict[str, Optional[str]]] = None) -> None:
    """Fails (see :mod:`tests.system`) when a server binary is missing."""
    found = find_binaries() if found is None else found
    absent = [name for name, path in found.items() if path is None]
    if not absent:
        return
    message = ("production-profile servers not found: " + ", ".join(absent)
               + " (apt-get install postgresql redis-server nginx)")
    missing(message)


def free_ports(count: int) -> List[int]:
    """Distinct free localhost ports (held together while choosing)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def clean_env() -> Dict[str, str]:
    """The environment without the dev defaults the test session loaded.

    tests/conftest.py fills in config/dev.env; prod.sh must not inherit a dev
    placeholder (it would refuse to start, rightly).
    """
    dev_keys = set(read_env_file(DEV_ENV_FILE)) | {"REDIS_URL"}
    return {k: v for k, v in os.environ.items() if k not in dev_keys}


# --- HTTP -----------------------------------------------------------------------


def http(url: str, *, body: Any = None, headers: Optional[Dict[str, str]] = None,
         timeout: float = 60, method: Optional[str] = None) -> Tuple[int, Any, Dict[str, str]]:
    """``(status, JSON or text, headers)``; HTTP errors are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json"} if body is not None else {}
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, payload, got = error.code, error.read(), dict(error.headers)
    try:
        return status, json.loads(payload), got
    except ValueError:
        return status, payload.decode(errors="replace"), got


def http_from(source: str, base: str, path: str, *, method: str = "GET", body: Any = None,
              headers: Optional[Dict[str, str]] = None,
              timeout: float = 60) -> Tuple[int, Any, Dict[str, str]]:
    """Like :func:`http`, from the local address ``source`` (e.g. ``127.0.0.2``: nginx
    then sees another client), with ``path`` sent exactly as given (no normalising)."""
    target = urlsplit(base)
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json"} if body is not None else {}
    all_headers.update(headers or {})
    connection = HTTPConnection(target.hostname, target.port, timeout=timeout,
                                source_address=(source, 0))
    try:
        connection.request(method, path, body=data, headers=all_headers)
        response = connection.getresponse()
        status, payload, got = response.status, response.read(), dict(response.getheaders())
    finally:
        connection.close()
    try:
        return status, json.loads(payload), got
    except ValueError:
        return status, payload.decode(errors="replace"), got


# --- the stack ------------------------------------------------------------------


@dataclass
class ProdStack:
    """A running scripts/prod.sh with its settings."""

    process: subprocess.Popen
    folder: Path
    env: Dict[str, str]
    ports: Dict[str, int]
    agent_password: str
    log: Path
    replicas: List[str] = field(default_factory=list)

    @property
    def nginx(self) -> str:
        return f"http://127.0.0.1:{self.ports['nginx']}"

    @property
    def token(self) -> str:
        return self.env["RASA_AUTH_TOKEN"]

    @property
    def redis_url(self) -> str:
        return f"redis://:{self.env['REDIS_PASSWORD']}@127.0.0.1:{self.ports['redis']}/0"

    @property
    def access_log(self) -> Path:
        return self.folder / "data" / "nginx" / "access.log"

    def say(self, base: str, sender: str, message: str) -> List[Dict[str, Any]]:
        """Posts to the REST channel at ``base``; the bot's messages."""
        status, answer, _ = http(f"{base}/webhooks/rest/webhook",
                                 body={"sender": sender, "message": message},
                                 headers={"Authorization": f"Bearer {self.env['REST_CHANNEL_TOKEN']}"})
        assert status == 200, (status, answer)
        assert isinstance(answer, list), answer
        return answer

    def tracker(self, base: str, sender: str) -> Dict[str, Any]:
        """The conversation from the HTTP API (token required) at ``base``, a replica.

        The API is for this machine only: through nginx it is 404.
        """
        assert base != self.nginx, "Rasa's HTTP API is not public: ask a replica"
        conversation = sender if ":" in sender else f"rest:{sender}"
        status, body, _ = http(f"{base}/conversations/{conversation}/tracker?token={self.token}")
        assert status == 200, body
        return body

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self, sig: int = signal.SIGINT, timeout: float = 90) -> Optional[int]:
        """Ctrl-C (SIGINT to the process group), as a terminal would send it."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
            except ProcessLookupError:
                pass
        return self.process.returncode


def start_stack(model: Path, extra: Optional[Dict[str, str]] = None) -> ProdStack:
    """Starts scripts/prod.sh on free ports with generated secrets; waits until ready.

    ``extra``: more KEY=VALUE settings for the env file. Production refuses
    ``RATE_LIMIT_PER_MINUTE=0`` (no per-conversation limit); bench/latency.py
    asks for it to measure without the limit, so here it becomes a limit no
    benchmark reaches (:data:`UNREACHED_RATE_LIMIT` messages per minute).
    """
    require_binaries()
    # Not under pytest's 0700 tmp folder: PostgreSQL runs as `postgres` when we are root.
    folder = Path(tempfile.mkdtemp(prefix="walletbot-prod-", dir="/tmp"))
    folder.chmod(0o755)
    names = ["postgres", "redis", "rasa_1", "rasa_2", "actions", "nginx",
             "metrics_1", "metrics_2", "metrics_actions"]
    ports = dict(zip(names, free_ports(len(names))))
    env_file = folder / "local.env"
    made = subprocess.run(
        [PYTHON, str(MAKE_ENV), "--out", str(env_file), "--pg-port", str(ports["postgres"]),
         "--redis-port", str(ports["redis"])],
        cwd=PROJECT_ROOT, env=clean_env(), capture_output=True, text=True, check=True,
    )
    password = re.search(r"desk login: admin / (\S+)", made.stdout).group(1)
    with env_file.open("a", encoding="utf-8") as handle:
        handle.write(f"RASA_PORT={ports['rasa_1']}\nRASA_PORT_2={ports['rasa_2']}\n"
                     f"ACTION_PORT={ports['actions']}\nNGINX_PORT={ports['nginx']}\n"
                     f"METRICS_PORT={ports['metrics_1']}\nMETRICS_PORT_2={ports['metrics_2']}\n"
                     f"ACTION_METRICS_PORT={ports['metrics_actions']}\n"
                     f"PROD_DATA_DIR={folder / 'data'}\nMODEL={model}\n")
        extra = dict(extra or {})
        if extra.get("RATE_LIMIT_PER_MINUTE", "").strip() == "0":
            extra["RATE_LIMIT_PER_MINUTE"] = str(UNREACHED_RATE_LIMIT)
        handle.writelines(f"{key}={value}\n" for key, value in extra.items())
    values = read_env_file(env_file)
    env = clean_env()
    env["PROD_START_TIMEOUT"] = str(START_TIMEOUT)
    log = folder / "prod.log"
    process = subprocess.Popen(
        [str(PROD_SH), "--env-file", str(env_file)], cwd=PROJECT_ROOT, env=env,
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    stack = ProdStack(process, folder, values, ports, password, log,
                      [f"http://127.0.0.1:{ports['rasa_1']}", f"http://127.0.0.1:{ports['rasa_2']}"])
    deadline = time.time() + START_TIMEOUT + 30
    while "prod.sh: ready" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.time() > deadline:
            stack.stop(signal.SIGKILL)
            tail = stack.log_tail()
            shutil.rmtree(folder, ignore_errors=True)
            raise AssertionError(f"scripts/prod.sh did not get ready:\n{tail}")
        time.sleep(1)
    return stack


@pytest.fixture(scope="module")
def prod_stack(request: pytest.FixtureRequest) -> Iterator[ProdStack]:
    """The production profile, started once for the module (about 90 s)."""
    require_binaries()  # before the model: no training just to skip
    stack = start_stack(request.getfixturevalue("trained_model"))
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(stack.folder, ignore_errors=True)
