"""Attacks on production's keys, stopped at start-up (``python -m walletbot.settings``).

RASA_AUTH_TOKEN opens Rasa's HTTP API (every conversation, the model);
WEB_JWT_SECRET signs web chat sessions (anyone who knows it is any user);
DESK_SECRET signs agent sessions (anyone who knows it is any agent). A guessable
value is as good as none: the first thing a JWT cracker tries is ``secret``, an
operator in a hurry copies ``CHANGE_ME`` from an example file or one value into
all three. Production refuses every such value before anything starts, naming
the variable and the rule, through the same command the launchers run
(scripts/prod.sh, docker-compose.yml, the Dockerfile). RATE_LIMIT_PER_MINUTE=0
(no per-conversation limit: one sender can keep both replicas busy) is refused too.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from tests.prod.conftest import MAKE_ENV, PROD_SH, PYTHON, clean_env
from walletbot.settings import PROJECT_ROOT, read_env_file

PROD_ENV = PROJECT_ROOT / "config" / "prod" / "prod.env"
KEYS = ("RASA_AUTH_TOKEN", "WEB_JWT_SECRET", "DESK_SECRET")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An env file of scripts/prod/make_env.py: secrets production accepts."""
    out = tmp_path_factory.mktemp("startup") / "local.env"
    subprocess.run([PYTHON, str(MAKE_ENV), "--out", str(out)], cwd=PROJECT_ROOT,
                   env=clean_env(), capture_output=True, check=True)
    return out


def start_up(values: Dict[str, str]) -> subprocess.CompletedProcess:
    """The launchers' start-up check (``python -m walletbot.settings``) with ``values`` only."""
    env = {**clean_env(), **values}
    return subprocess.run([sys.executable, "-m", "walletbot.settings"], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=60)


def production(generated: Path, **overrides: str) -> Dict[str, str]:
    return {**read_env_file(PROD_ENV), **read_env_file(generated), **overrides}


def test_the_generated_keys_start(generated):
    result = start_up(production(generated))
    assert result.returncode == 0, result.stderr


WEAK = [
    # (value, the rule the refusal names)
    ("CHANGE_ME", "is a placeholder"),                      # .env.example's DB URLs
    ("changeme", "is a placeholder"),
    ("secret", "is a placeholder"),                         # a JWT cracker's first guess
    ("password", "is a placeholder"),
    ("Prod-JWT-Secret-For-Walletbot-2024-Final", "is a placeholder"),
    ("dev-web-jwt-secret-for-local-use-only", "holds a development value"),  # config/dev.env
    ("h2Kp9sLq0wVb7ZrX4mNc", "must be at least 32 characters"),  # random but short
    ("a" * 48, "repeats a pattern"),
    ("Zt4#Vb9q" * 5, "repeats a pattern"),
    ("0123456789abcdefghijklmnopqrstuvwxyz", "contains 8 consecutive characters"),
    ("wtpqrieqquqriwwtpuqoyiruiteqyqwuieoyyuie", "has only 10 distinct characters"),
]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("value, rule", WEAK, ids=[v for v, _ in WEAK])
def test_a_guessable_key_is_refused_naming_the_variable_and_the_rule(generated, key, value, rule):
    result = start_up(production(generated, **{key: value}))
    assert result.returncode == 1, f"{key}={value!r} was accepted"
    refusal = f"refusing to start in production: {key} {rule}"
    assert refusal in result.stderr, result.stderr
    assert "token_hex(32)" in result.stderr  # how to make a good one
    assert value not in result.stderr or len(value) < 12  # the key is not echoed to the log


def test_one_value_for_all_three_keys_is_refused(generated):
    """One leaked key must not open the API, every web session and every agent session."""
    shared = secrets.token_hex(32)
    result = start_up(production(generated, **{key: shared for key in KEYS}))
    assert result.returncode == 1
    assert ("refusing to start in production: RASA_AUTH_TOKEN and WEB_JWT_SECRET and "
            "DESK_SECRET must differ from each other") in result.stderr, result.stderr
    result = start_up(production(generated, DESK_SECRET=read_env_file(generated)["WEB_JWT_SECRET"]))
    assert result.returncode == 1
    assert "WEB_JWT_SECRET and DESK_SECRET must differ" in result.stderr, result.stderr


def test_the_rest_token_is_not_the_api_token(generated):
    values = production(generated)
    result = start_up({**values, "REST_CHANNEL_TOKEN": values["RASA_AUTH_TOKEN"]})
    assert result.returncode == 1
    assert "RASA_AUTH_TOKEN and REST_CHANNEL_TOKEN must differ" in result.stderr, result.stderr


@pytest.mark.parametrize("value", ["0", "-1", "unlimited"])
def test_switching_the_rate_limit_off_is_refused(generated, value):
    result = start_up(production(generated, RATE_LIMIT_PER_MINUTE=value))
    assert result.returncode == 1, f"RATE_LIMIT_PER_MINUTE={value} was accepted"
    assert "refusing to start in production: RATE_LIMIT_PER_MINUTE" in result.stderr, result.stderr


@pytest.mark.parametrize("overrides, message", [
    ({"WEB_JWT_SECRET": "secret"}, "WEB_JWT_SECRET is a placeholder"),
    ({"DESK_SECRET": "T5yUq8eW2rPz6xLk1JdS"}, "DESK_SECRET must be at least 32 characters"),
    ({"RATE_LIMIT_PER_MINUTE": "0"}, "RATE_LIMIT_PER_MINUTE=0"),
])
def test_prod_sh_refuses_before_starting_anything(generated, tmp_path, overrides, message):
    values = {**read_env_file(generated), **overrides, "PROD_DATA_DIR": str(tmp_path / "data")}
    env_file = tmp_path / "weak.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    result = subprocess.run([str(PROD_SH), "--env-file", str(env_file)], cwd=PROJECT_ROOT,
                            env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"refusing to start in production: {message}" in result.stderr, result.stderr
    assert not (tmp_path / "data" / "pg").exists()  # no server was started
