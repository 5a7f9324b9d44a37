"""The production profile's configuration, without starting it (fast).

docker-compose.yml cannot run here (no Docker), so these tests check that it
parses and agrees with what the code and scripts/prod.sh use.
"""

from __future__ import annotations

import importlib.util
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Dict, Set

import pytest
import yaml

from tests.prod.conftest import PROD_SH, PYTHON, clean_env, find_binaries, require_binaries
from tests.system import missing
from walletbot.settings import (PROJECT_ROOT, STRONG_SECRET_KEYS, check_startup, read_env_file,
                                secret_problem)

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
PROD = PROJECT_ROOT / "config" / "prod"
TEMPLATE = PROD / "nginx" / "walletbot.conf.template"
ENV_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)")


def uncommented(path: Path) -> str:
    """The file without its # comments."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(line.split(" #")[0] for line in lines if not line.lstrip().startswith("#"))


def env_refs(path: Path) -> Set[str]:
    """Names of the ${VAR}s a file uses (outside # comments)."""
    return set(ENV_REF.findall(uncommented(path)))


def load_bootstrap():
    spec = importlib.util.spec_from_file_location(
        "prod_bootstrap", PROJECT_ROOT / "scripts" / "prod" / "bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def compose() -> Dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


# --- docker-compose.yml ---------------------------------------------------------


def test_compose_has_every_component_with_a_healthcheck(compose):
    services = compose["services"]
    assert {"postgres", "redis", "bootstrap", "actions", "rasa-1", "rasa-2", "nginx"} <= set(services)
    for name in ("postgres", "redis", "actions", "rasa-1", "rasa-2", "nginx"):
        assert "healthcheck" in services[name], name
    # nginx is the only published port.
    published = [name for name, service in services.items() if service.get("ports")]
    assert published == ["nginx"]
    assert services["nginx"]["ports"] == ["${NGINX_PUBLISH:-8080}:80"]
    # Replicas share the model volume and start after the bootstrap.
    for name in ("rasa-1", "rasa-2"):
        assert services[name]["volumes"] == ["${MODELS_VOLUME:-models}:/app/models:ro"]
        assert services[name]["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"
    assert "models" in compose["volumes"] and "pgdata" in compose["volumes"]


def test_compose_gives_the_replicas_every_variable_rasa_reads(compose):
    needed = env_refs(PROJECT_ROOT / "credentials.yml") | env_refs(PROD / "endpoints.yml")
    needed |= {"WALLETBOT_ENV", "WALLET_DB_URL", "REDIS_URL"}
    for name in ("rasa-1", "rasa-2"):
        service = compose["services"][name]
        missing = needed - set(service["environment"])
        assert not missing, f"{name} lacks {sorted(missing)}"
        command = " ".join(service["command"])
        assert "config/prod/endpoints.yml" in command and "--auth-token" in command
        assert "python -m walletbot.settings" in command  # the production start-up check
        assert service["environment"]["WEB_DEMO_LOGIN"] == "false"
    actions = compose["services"]["actions"]["environment"]
    assert {"WALLETBOT_ENV", "WALLET_DB_URL", "SANIC_HOST"} <= set(actions)
    bootstrap = compose["services"]["bootstrap"]
    assert bootstrap["command"] == ["python", "scripts/prod/bootstrap.py", "setup"]
    assert {"POSTGRES_ADMIN_URL", "TRACKER_DB_URL", "WALLET_DB_URL"} <= set(bootstrap["environment"])


def test_compose_required_variables_are_documented(compose):
    text = uncommented(COMPOSE)
    required = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", text))
    example = read_env_file(PROD / "compose.env.example")
    documented = set(example) | set(re.findall(r"^# ([A-Z_]+)=", (PROD / "compose.env.example")
                                               .read_text(encoding="utf-8"), re.M))
    assert required <= set(example), sorted(required - set(example))
    optional = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*):-", text))
    assert optional <= documented, sorted(optional - documented)


def test_compose_files_exist(compose):
    nginx = compose["services"]["nginx"]
    source = nginx["volumes"][0].split(":")[0]
    assert (PROJECT_ROOT / source).resolve() == TEMPLATE
    assert env_refs(TEMPLATE) == set(nginx["environment"])
    assert (PROJECT_ROOT / "Dockerfile").is_file()
    dockerignore = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "var/", "models/"} <= set(dockerignore)


# --- config/prod ----------------------------------------------------------------


def test_prod_endpoints_build_a_redis_lock_store_and_a_sql_tracker_store(monkeypatch):
    from rasa.core.lock_store import LockStore
    from rasa.utils.endpoints import read_endpoint_config

    from walletbot.rasa_compat.lockstore import AtomicRedisLockStore

    values = {"ACTION_ENDPOINT_URL": "http://127.0.0.1:5055/webhook",
              "TRACKER_DB_URL": "postgresql://rasa:pw@127.0.0.1:5432/rasa",
              "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6390", "REDIS_DB": "3",
              "REDIS_PASSWORD": "s3cret", "TRACKER_MAX_EVENTS": "2000", "TRACKER_MAX_DAYS": "90",
              "TRACKER_TURN_WINDOW": "50"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    endpoints = PROD / "endpoints.yml"
    assert env_refs(endpoints) == set(values)
    tracker = read_endpoint_config(str(endpoints), "tracker_store")
    # Built (on SQLite) in tests/walletbot/test_trackerstore.py.
    assert tracker.type == "walletbot.rasa_compat.trackerstore.ThreadedSQLTrackerStore"
    assert tracker.url == values["TRACKER_DB_URL"]
    assert (tracker.kwargs["turn_window"], tracker.kwargs["cache_events"]) == ("50", 50000)
    lock_store = LockStore.create(read_endpoint_config(str(endpoints), "lock_store"))
    assert isinstance(lock_store, AtomicRedisLockStore)
    kwargs = lock_store.red.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == (
        "127.0.0.1", 6390, 3, "s3cret")
    assert lock_store.key_prefix == "walletbot:lock:"


def test_prod_defaults_hold_no_secret():
    defaults = read_env_file(PROD / "prod.env")
    assert defaults["WALLETBOT_ENV"] == "production" and defaults["WEB_DEMO_LOGIN"] == "false"
    secrets = {"RASA_AUTH_TOKEN", "REDIS_PASSWORD", "WEB_JWT_SECRET", "DESK_SECRET",
               "TRACKER_DB_URL", "WALLET_DB_URL", "DESK_AGENTS_FILE"}
    assert not secrets & set(defaults)
    assert not {k for k in defaults if k.startswith("WECHAT_") and k not in
                ("WECHAT_API_BASE", "WECHAT_REPLY_BUDGET")}


def test_nginx_template_is_valid_as_docker_fills_it_in(tmp_path):
    nginx = find_binaries()["nginx"]
    if nginx is None:
        missing("nginx not found: apt-get install nginx")
    site = TEMPLATE.read_text()
    for name, value in {"RASA_1": "127.0.0.1:1", "RASA_2": "127.0.0.1:2", "NGINX_LISTEN": "127.0.0.1:3",
                        "NGINX_ACCESS_LOG": str(tmp_path / "access.log")}.items():
        site = site.replace("${%s}" % name, value)
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log stderr; events {{}}\n"
        f"http {{ client_body_temp_path {tmp_path}; proxy_temp_path {tmp_path}; "
        f"fastcgi_temp_path {tmp_path}; uwsgi_temp_path {tmp_path}; scgi_temp_path {tmp_path}; "
        f"include {tmp_path}/site.conf; }}\n")
    result = subprocess.run([nginx, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"),
                             "-e", "stderr"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def nginx_locations(text: str) -> Dict[str, str]:
    """``location`` blocks of the site template: their match (``= /x``, ``/x/``) → body."""
    blocks: Dict[str, str] = {}
    for match in re.finditer(r"^\s*location\s+([^{]+?)\s*\{", text, re.M):
        depth, end = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        blocks[match.group(1)] = text[match.end():end - 1]
    return blocks


def test_nginx_exposes_only_the_channels_each_with_per_address_limits():
    """The public surface, read from the template (tests/security/test_nginx_surface.py
    attacks it through a running nginx)."""
    text = uncommented(TEMPLATE)
    locations = nginx_locations(text)
    public = {"= /nginx-health", "/webhooks/wechat/", "/webhooks/web/", "/webhooks/desk/",
              "/webhooks/rest/"}
    assert set(locations) == public | {"/", "@too_many_requests"}
    # Anything else (Rasa's HTTP API above all) ends at nginx.
    assert locations["/"].split() == ["return", "404;"]
    proxied = [name for name, body in locations.items() if "proxy_pass" in body]
    assert sorted(proxied) == sorted(public - {"= /nginx-health"})
    for name in public:
        assert "limit_req zone=" in locations[name], name
    for name in proxied:
        assert re.search(r"limit_conn \w+ \d+;", locations[name]), name
    assert "limit_req_status 429;" in text and "limit_conn_status 429;" in text
    # Password guessing and session minting have their own, strict zones.
    assert "zone=wb_desk_login" in locations["/webhooks/desk/"]
    assert "zone=wb_web_token" in locations["/webhooks/web/"]


# --- scripts/prod ---------------------------------------------------------------


def test_make_env_writes_private_files_that_pass_the_production_check(tmp_path):
    out = tmp_path / "local.env"
    made = subprocess.run([PYTHON, "scripts/prod/make_env.py", "--out", str(out)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert "desk login: admin / " in made.stdout
    for path in (out, tmp_path / "agents.yml"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = {**read_env_file(PROD / "prod.env"), **read_env_file(out)}
    assert check_startup(values) == 0
    keys = [values[key] for key in (*STRONG_SECRET_KEYS, "REST_CHANNEL_TOKEN")]
    assert len(set(keys)) == len(keys)  # each drawn on its own
    for key in keys:
        assert len(key) == 64 and secret_problem(key) is None
    agents = yaml.safe_load((tmp_path / "agents.yml").read_text())["agents"]
    assert agents[0]["login"] == "admin" and agents[0]["password_hash"].startswith("scrypt$")
    # Again: kept, not overwritten with new secrets.
    before = out.read_text()
    subprocess.run([PYTHON, "scripts/prod/make_env.py", "--out", str(out)],
                   cwd=PROJECT_ROOT, capture_output=True, check=True)
    assert out.read_text() == before


def run_prod_sh(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess:
    """scripts/prod.sh with generated secrets plus ``overrides``; it must refuse early."""
    out = tmp_path / "local.env"
    if not out.exists():
        subprocess.run([PYTHON, "scripts/prod/make_env.py", "--out", str(out)],
                       cwd=PROJECT_ROOT, capture_output=True, check=True)
    values = read_env_file(out)
    values.update(overrides, PROD_DATA_DIR=str(tmp_path / "data"))
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return subprocess.run([str(PROD_SH), "--env-file", str(env_file)], cwd=PROJECT_ROOT,
                          env=clean_env(), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("overrides, message", [
    ({"RASA_AUTH_TOKEN": "dev-rasa-token"}, "refusing to start in production: RASA_AUTH_TOKEN holds a development value"),
    ({"RATE_LIMIT_PER_MINUTE": "0"}, "refusing to start in production: RATE_LIMIT_PER_MINUTE=0"),
    ({"WEB_DEMO_LOGIN": "true"}, "WEB_DEMO_LOGIN=true"),
    ({"DESK_AGENTS_FILE": "config/agents.dev.yml"}, "DESK_AGENTS_FILE must name your own agents file"),
    ({"TRACKER_DB_URL": "sqlite:///var/tracker.db"}, "TRACKER_DB_URL must be a postgresql:// URL"),
    ({"WALLET_DB_URL": "postgresql://wallet:pw@db.example.com:5432/wallet"}, "the host must be 127.0.0.1"),
    ({"REDIS_PASSWORD": "p@ss/word"}, "REDIS_PASSWORD may hold only"),
])
def test_prod_sh_refuses_bad_settings_before_starting_anything(tmp_path, overrides, message):
    result = run_prod_sh(tmp_path, **overrides)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr + result.stdout
    assert not (tmp_path / "data" / "pg").exists()  # no server was started


def test_prod_sh_needs_its_env_file(tmp_path):
    result = subprocess.run([str(PROD_SH), "--env-file", str(tmp_path / "missing.env")],
                            cwd=PROJECT_ROOT, env=clean_env(), capture_output=True, text=True)
    assert result.returncode == 2 and "not found" in result.stderr


def test_bootstrap_wants_one_local_cluster():
    bootstrap = load_bootstrap()
    good = {"TRACKER_DB_URL": "postgresql://rasa:a@127.0.0.1:5433/rasa",
            "WALLET_DB_URL": "postgresql://wallet:b@localhost:5433/wallet"}
    assert bootstrap.check_local(good) == 5433
    for bad, message in (
        ({"WALLET_DB_URL": "postgresql://wallet:b@127.0.0.1:5434/wallet"}, "same port"),
        ({"WALLET_DB_URL": "postgresql://wallet@127.0.0.1:5433/wallet"}, "password"),
        ({"WALLET_DB_URL": "postgresql://rasa:other@127.0.0.1:5433/wallet"}, "different passwords"),
        ({"TRACKER_DB_URL": ""}, "not set"),
    ):
        with pytest.raises(bootstrap.SetupError, match=message):
            bootstrap.check_local({**good, **bad})


def test_missing_servers_fail_unless_skips_were_asked_for(monkeypatch):
    found = {"postgresql (initdb, postgres)": "/usr/bin", "redis-server": None, "nginx": None}
    monkeypatch.delenv("WALLETBOT_ALLOW_SKIPS", raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.fail.Exception, match="redis-server, nginx.*make deps"):
        require_binaries(found)
    monkeypatch.setenv("WALLETBOT_ALLOW_SKIPS", "1")
    with pytest.raises(pytest.skip.Exception, match="redis-server, nginx"):
        require_binaries(found)
    monkeypatch.setenv("CI", "true")  # CI never skips, whatever it is told
    with pytest.raises(pytest.fail.Exception, match="redis-server, nginx"):
        require_binaries(found)
    require_binaries({name: "/x" for name in found})  # all there: nothing happens
