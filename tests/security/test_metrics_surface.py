"""The Prometheus metrics are never public: nginx proxies nothing but the channels.

The metrics listeners run on ports of their own (walletbot/ops/metrics.py):
METRICS_PORT, METRICS_PORT_2, ACTION_METRICS_PORT, on 127.0.0.1 in the
production profile, published by no Compose service. These checks read the
configuration that production uses, and run the real nginx on the real
template in front of a stand-in replica, without the rest of the stack
(tests/security/test_nginx_surface.py checks the whole started stack).
"""

from __future__ import annotations

import grp
import http.server
import os
import pwd
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest
import yaml

from walletbot.settings import PROJECT_ROOT, read_env_file

from tests.system import missing

NGINX_DIR = PROJECT_ROOT / "config" / "prod" / "nginx"
SITE = NGINX_DIR / "walletbot.conf.template"
PROD_ENV = PROJECT_ROOT / "config" / "prod" / "prod.env"
PROD_SH = PROJECT_ROOT / "scripts" / "prod.sh"
COMPOSE = PROJECT_ROOT / "docker-compose.yml"
REPLICAS = {"${RASA_1}", "${RASA_2}"}


def config_lines(path: Path) -> List[str]:
    """The lines of an nginx file without comments."""
    return [line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()]


def test_nginx_proxies_only_to_the_replicas_rasa_ports():
    text = "\n".join(config_lines(SITE))
    # An upstream block ends at its own closing brace, alone on a line (``${…}`` has braces too).
    upstreams = dict(re.findall(r"upstream\s+(\S+)\s*\{(.*?)^\s*\}", text, re.MULTILINE | re.DOTALL))
    assert set(upstreams) == {"walletbot_rasa", "walletbot_rasa_sticky"}
    for body in upstreams.values():
        assert set(re.findall(r"^\s*server\s+(\S+)", body, re.MULTILINE)) == REPLICAS
    assert set(re.findall(r"proxy_pass\s+http://([^;/\s]+)", text)) == set(upstreams)
    assert "metrics" not in text.lower()
    # Anything not a channel ends at nginx.
    assert re.search(r"location\s+/\s*\{\s*return\s+404;\s*\}", text)


def test_the_metrics_ports_are_loopback_and_none_of_the_proxied_ones():
    values = read_env_file(PROD_ENV)
    assert values["METRICS_HOST"] == "127.0.0.1"
    metrics_ports = [values[key] for key in ("METRICS_PORT", "METRICS_PORT_2", "ACTION_METRICS_PORT")]
    served = [values[key] for key in ("RASA_PORT", "RASA_PORT_2", "ACTION_PORT", "NGINX_PORT")]
    assert len(set(metrics_ports)) == 3 and not set(metrics_ports) & set(served)
    # scripts/prod.sh fills the replicas into nginx from the Rasa ports, nothing else.
    script = PROD_SH.read_text(encoding="utf-8")
    assert "text=${text//'${RASA_1}'/127.0.0.1:$RASA_PORT}" in script
    assert "text=${text//'${RASA_2}'/127.0.0.1:$RASA_PORT_2}" in script


def test_compose_publishes_nginx_only_and_points_it_at_the_rasa_port():
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = compose["services"]
    assert [name for name, service in services.items() if service.get("ports")] == ["nginx"]
    assert services["nginx"]["environment"]["RASA_1"] == "rasa-1:5005"
    assert services["nginx"]["environment"]["RASA_2"] == "rasa-2:5005"
    for name in ("rasa-1", "rasa-2", "actions"):
        env = services[name]["environment"]
        assert "5005" not in (env["METRICS_PORT"], env["ACTION_METRICS_PORT"])


# --- the real nginx on the real template ---------------------------------------------


class Replica(http.server.BaseHTTPRequestHandler):
    """A stand-in replica that would hand out metrics on every path: it records each request."""

    seen: List[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        Replica.seen.append(self.path)
        body = b"walletbot_turns_total 1\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def render(template: Path, values: Dict[str, str]) -> str:
    text = template.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    return text


@pytest.fixture
def nginx_in_front(tmp_path: Path) -> Iterator[Tuple[str, List[str]]]:
    """nginx with the production site in front of a stand-in replica: (base URL, paths it saw)."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if binary is None:
        missing("nginx not found: apt-get install nginx")
    replica = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Replica)
    threading.Thread(target=replica.serve_forever, daemon=True).start()
    Replica.seen = []
    prefix = tmp_path / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    user = ""
    if os.geteuid() == 0:  # as scripts/prod.sh does: workers drop root
        worker = "www-data" if _user_exists("www-data") else "nobody"
        user = f"user {worker} {grp.getgrgid(pwd.getpwnam(worker).pw_gid).gr_name};"
        shutil.chown(prefix / "tmp", worker)
        tmp_path.chmod(0o755)
    port = free_port()
    upstream = f"127.0.0.1:{replica.server_address[1]}"
    values = {"RASA_1": upstream, "RASA_2": upstream, "NGINX_LISTEN": f"127.0.0.1:{port}",
              "NGINX_ACCESS_LOG": str(prefix / "access.log"), "PREFIX": str(prefix),
              "USER_DIRECTIVE": user}
    (prefix / "walletbot.conf").write_text(render(SITE, values), encoding="utf-8")
    (prefix / "nginx.conf").write_text(render(NGINX_DIR / "nginx.local.conf.template", values),
                                       encoding="utf-8")
    process = subprocess.Popen([binary, "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"),
                                "-e", "stderr"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(f"{base}/nginx-health", timeout=2).close()
                break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.time() > deadline:
                    raise AssertionError(process.communicate(timeout=5)[0].decode(errors="replace"))
                time.sleep(0.1)
        yield base, Replica.seen
    finally:
        process.terminate()
        process.wait(timeout=20)
        replica.shutdown()
        replica.server_close()


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("path", [
    "/metrics", "/metrics/", "//metrics", "/webhooks/../metrics", "/webhooks/rest/%2e%2e/%2e%2e/metrics",
    "/webhooks/metrics", "/METRICS",
])
def test_nginx_answers_404_for_metrics_paths_and_never_asks_a_replica(nginx_in_front, path):
    base, seen = nginx_in_front
    assert status_of(base + path) == 404
    assert seen == []
    # The control: a channel path does reach the replica.
    assert status_of(base + "/webhooks/rest/") == 200 and seen == ["/webhooks/rest/"]
