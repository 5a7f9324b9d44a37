import secrets

import pytest

from walletbot.settings import (STRONG_SECRET_KEYS, check_startup, placeholder_secrets,
                                rate_limit_problem, read_env_file, secret_problem, weak_secrets)

# Real-looking keys: 64 hex characters (secrets.token_hex(32)) and 43 of base64url.
API_TOKEN = "2f83f1511eda41d623e95eafc6228362b01268b19fa071d871282788721c51c2"
JWT_KEY = "a0da03015f053e8ddde99ae19d4b409d3994bf55e7d4251c4ba12acc8971db77"
DESK_KEY = "VP5Ia_-kLIhyrmF2gme4u3ciYhB57r5ejhUkTmcGCK4"
REST_TOKEN = "e6b12ab4d83c34090bd7d84c7e120594eac5f9bff7215f92e1f22663caace898"

REAL_WECHAT = {
    "WECHAT_TOKEN": "Qm8rT2wX",
    "WECHAT_APP_ID": "wx8c3a51f0d2e4b697",
    "WECHAT_APP_SECRET": "5f2b8e0c9a7d4e61b3c2a1f0e9d8c7b6",
    "WECHAT_AES_KEY": "k9Hq2mZx7Lp4Rt8Wv3Nb6Yc1Df5Gs0Ja2Ke7Uo4Ii9P",
}


def test_dev_profile_accepts_dev_defaults():
    assert check_startup({"WALLETBOT_ENV": "dev", "RASA_AUTH_TOKEN": "dev-rasa-token"}) == 0


def test_production_refuses_placeholder_secrets(capsys):
    env = {"WALLETBOT_ENV": "production", "RASA_AUTH_TOKEN": "dev-rasa-token"}
    assert check_startup(env) == 1
    assert "RASA_AUTH_TOKEN" in capsys.readouterr().err
    assert "RASA_AUTH_TOKEN" in placeholder_secrets({"RASA_AUTH_TOKEN": ""})


REAL_WEB_DESK = {
    "WEB_JWT_SECRET": JWT_KEY,
    "DESK_SECRET": DESK_KEY,
    "WEB_DEMO_LOGIN": "false",
    "DESK_AGENTS_FILE": "/etc/walletbot/agents.yml",
}


def test_production_starts_with_real_secrets():
    env = {"WALLETBOT_ENV": "production", "RASA_AUTH_TOKEN": API_TOKEN,
           **REAL_WECHAT, **REAL_WEB_DESK}
    assert check_startup(env) == 0


def test_production_refuses_demo_login_and_dev_agents(capsys):
    base = {"WALLETBOT_ENV": "production", "RASA_AUTH_TOKEN": API_TOKEN,
            **REAL_WECHAT, **REAL_WEB_DESK}
    assert check_startup({**base, "WEB_DEMO_LOGIN": "true"}) == 1
    assert "WEB_DEMO_LOGIN" in capsys.readouterr().err
    assert check_startup({**base, "DESK_AGENTS_FILE": "config/agents.dev.yml"}) == 1
    assert "DESK_AGENTS_FILE" in capsys.readouterr().err
    assert check_startup({**base, "DESK_SECRET": "dev-desk-secret"}) == 1
    assert "DESK_SECRET" in capsys.readouterr().err


def test_read_env_file(tmp_path):
    path = tmp_path / "x.env"
    path.write_text("# comment\nA=1\n\nB=\nC=x=y\n", encoding="utf-8")
    assert read_env_file(path) == {"A": "1", "B": "", "C": "x=y"}


def test_production_refuses_wechat_placeholders_and_plaintext_mode(capsys):
    base = {"WALLETBOT_ENV": "production", "RASA_AUTH_TOKEN": API_TOKEN}
    dev_wechat = {"WECHAT_TOKEN": "dev-wechat-token", "WECHAT_APP_ID": "dev-wechat-appid",
                  "WECHAT_APP_SECRET": "dev-wechat-secret", "WECHAT_AES_KEY": ""}
    assert check_startup({**base, **dev_wechat}) == 1
    err = capsys.readouterr().err
    for key in dev_wechat:
        assert key in err
    # Plaintext mode (no EncodingAESKey) is refused on its own too.
    assert placeholder_secrets(
        {**base, **REAL_WECHAT, **REAL_WEB_DESK, "WECHAT_AES_KEY": ""}) == ["WECHAT_AES_KEY"]
    assert check_startup({"WALLETBOT_ENV": "dev", **dev_wechat}) == 0


def test_production_refuses_a_weak_rest_token(capsys):
    base = {"WALLETBOT_ENV": "production", "RASA_AUTH_TOKEN": API_TOKEN,
            **REAL_WECHAT, **REAL_WEB_DESK}
    assert check_startup({**base, "REST_CHANNEL_TOKEN": "short"}) == 1
    assert "REST_CHANNEL_TOKEN must be at least 32 characters" in capsys.readouterr().err
    assert check_startup({**base, "REST_CHANNEL_TOKEN": "x7Kq2" * 8}) == 1  # a pattern
    assert "REST_CHANNEL_TOKEN repeats a pattern" in capsys.readouterr().err
    assert check_startup({**base, "REST_CHANNEL_TOKEN": API_TOKEN}) == 1  # the API token
    assert "RASA_AUTH_TOKEN and REST_CHANNEL_TOKEN must differ" in capsys.readouterr().err
    assert check_startup({**base, "REST_CHANNEL_TOKEN": REST_TOKEN}) == 0


def test_settings_are_read_in_one_place(monkeypatch):
    from walletbot.settings import Settings

    env = {"WALLETBOT_ENV": "production", "REDIS_URL": "redis://r:6379/0",
           "RATE_LIMIT_PER_MINUTE": "12", "REST_CHANNEL_TOKEN": " tok ",
           "WALLET_DB_URL": "postgres://u@h/w", "HANDOFF_SERVICE_HOURS": "09:00-18:00",
           "WECHAT_TOKEN": "t", "DESK_WEBHOOK_URL": ""}
    s = Settings.from_env(env)
    assert s.is_production and s.redis_url == "redis://r:6379/0"
    assert s.rate_limit_per_minute == 12 and s.rest_token == "tok"
    assert s.wallet_db_url == "postgresql://u@h/w" and s.service_hours == "09:00-18:00"
    assert s.wechat["token"] == "t" and s.desk_webhook_url is None
    # Production has no dev defaults behind it; dev does.
    assert Settings.from_env({"WALLETBOT_ENV": "production"}).wechat == {}
    assert Settings.from_env({"WALLETBOT_ENV": "dev"}).wechat["token"] == "dev-wechat-token"


@pytest.mark.parametrize("env", [
    {}, {"WALLETBOT_ENV": "dev"}, {"WALLETBOT_ENV": "production"}, {"WALLETBOT_ENV": "Production"},
    {"WALLETBOT_ENV": "staging"}, {"WALLETBOT_IN_IMAGE": "1"},
    {"WALLETBOT_IN_IMAGE": "1", "WALLETBOT_ENV": "production"},
])
def test_the_cheap_production_check_agrees_with_the_settings(env):
    from walletbot.settings import Settings, is_production

    assert is_production(env) == Settings.from_env(env).is_production


def test_no_other_module_reads_the_environment():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readers = []
    for path in sorted([*root.joinpath("walletbot").rglob("*.py"), *root.joinpath("actions").rglob("*.py")]):
        if path.name == "settings.py" and path.parent.name == "walletbot":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"os\.environ(?!\.setdefault)|os\.getenv", text):
            readers.append(str(path.relative_to(root)))
    assert readers == []


# --- strength of RASA_AUTH_TOKEN, WEB_JWT_SECRET, DESK_SECRET ---------------------


@pytest.mark.parametrize("value", [
    secrets.token_hex(32), secrets.token_hex(16), secrets.token_urlsafe(32),
    "k9Hq2mZx7Lp4Rt8Wv3Nb6Yc1Df5Gs0Ja2Ke7Uo4Ii9P",      # 43 letters and digits
    "6f1c0b52-9d3e-4a87-b1f0-2c5e8d7a9b34-77e1a0c4",  # UUID-like, hex with hyphens
])
def test_generated_values_are_accepted(value):
    assert secret_problem(value) is None


@pytest.mark.parametrize("value, rule", [
    ("", "is not set"),
    ("dev-rasa-token", "development value"),
    ("dev-web-jwt-secret-for-local-use-only", "development value"),
    ("DEV_0a9f8e7d6c5b4a3928170695847362514abcdefXYZ", "development value"),
    ("CHANGE_ME", "placeholder"),
    ("changeme", "placeholder"),
    ("secret", "placeholder"),
    ("password", "placeholder"),
    ("Q7w!ChangeMe-Now-4f9e2d1c8b7a6f5e4d3c2b1a0z", "placeholder"),
    ("my-Super-SECRET-key-for-production-2024!!", "placeholder"),
    ("h2Kp9sLq0wVb7ZrX4mNc", "at least 32 characters"),
    ("a" * 64, "repeats a pattern"),
    ("2a464cac26666c424aca26c4e86880408aa8204c", "distinct characters"),  # 8 of 16 hex digits
    ("wtpqrieqquqriwwtpuqoyiruiteqyqwuieoyyuie", "distinct characters"),  # one keyboard row
    ("x7Kq2" * 8, "repeats a pattern"),
    ("Zt4#Vb9q" * 6, "repeats a pattern"),
    ("9fK2mQ7xW4pL8vR3nT6yB1cH5jD0gS2aaaaaaaaaaaaa", "repeats a pattern"),
    ("abcdefghijklmnopqrstuvwxyz0123456789ABCDEF", "consecutive characters"),
    ("Kq93xZr7Wm2P" + "87654321" + "vT5nLb0Yc4Hs", "consecutive characters"),
])
def test_low_entropy_values_are_refused_with_the_rule(value, rule):
    problem = secret_problem(value)
    assert problem is not None and rule in problem, (value, problem)


def test_every_value_of_config_dev_env_is_refused(tmp_path, monkeypatch):
    from walletbot import settings

    dev_env = tmp_path / "dev.env"
    dev_env.write_text(f"SOME_KEY={REST_TOKEN}\n", encoding="utf-8")
    monkeypatch.setattr(settings, "DEV_ENV_FILE", dev_env)
    assert "development value" in secret_problem(REST_TOKEN)


def strong(**overrides):
    return {"WALLETBOT_ENV": "production", "RASA_AUTH_TOKEN": API_TOKEN, **REAL_WECHAT,
            **REAL_WEB_DESK, **overrides}


@pytest.mark.parametrize("key", STRONG_SECRET_KEYS)
def test_production_names_the_variable_and_the_rule(key, capsys):
    assert check_startup(strong()) == 0
    assert check_startup(strong(**{key: "Tr0ub4dor&3"})) == 1
    err = capsys.readouterr().err
    assert f"refusing to start in production: {key} must be at least 32 characters" in err
    assert "token_hex(32)" in err  # and how to make a good one
    assert check_startup(strong(**{key: ""})) == 1
    assert f"{key} is not set" in capsys.readouterr().err


def test_the_three_keys_must_differ():
    same = secrets.token_hex(32)
    problems = weak_secrets(strong(WEB_JWT_SECRET=same, DESK_SECRET=same))
    assert problems == ["WEB_JWT_SECRET and DESK_SECRET must differ from each other (they hold "
                        "the same value): generate each one separately"]
    assert check_startup(strong(RASA_AUTH_TOKEN=same, WEB_JWT_SECRET=same, DESK_SECRET=same)) == 1
    assert weak_secrets(strong()) == []


def test_production_refuses_the_rate_limit_off(capsys):
    assert check_startup(strong(RATE_LIMIT_PER_MINUTE="0")) == 1
    assert "RATE_LIMIT_PER_MINUTE=0 switches the per-conversation rate limit off" in (
        capsys.readouterr().err)
    assert "whole number" in rate_limit_problem({"RATE_LIMIT_PER_MINUTE": "lots"})
    assert rate_limit_problem({"RATE_LIMIT_PER_MINUTE": "-5"}) is not None
    assert rate_limit_problem({"RATE_LIMIT_PER_MINUTE": "30"}) is None
    assert rate_limit_problem({}) is None  # unset: the default, 30
    assert check_startup(strong(RATE_LIMIT_PER_MINUTE="12")) == 0
    # Development may switch it off (benchmarks, tests).
    assert check_startup({"WALLETBOT_ENV": "dev", "RATE_LIMIT_PER_MINUTE": "0"}) == 0


# --- inside the built image (WALLETBOT_IN_IMAGE, set by the Dockerfile) -----------------


@pytest.mark.parametrize("profile", ["dev", "prod", "staging", ""])
def test_the_image_refuses_every_profile_but_production(profile, capsys):
    assert check_startup({"WALLETBOT_ENV": profile, "WALLETBOT_IN_IMAGE": "1"}) == 1
    err = capsys.readouterr().err
    assert f"refusing to start: WALLETBOT_ENV={profile} inside the walletbot image" in err
    # The same profile outside the image is the developer's (dev defaults behind it).
    assert check_startup({"WALLETBOT_ENV": profile}) == 0


def test_the_image_starts_production_with_real_secrets(capsys):
    assert check_startup(strong(WALLETBOT_IN_IMAGE="1")) == 0
    assert capsys.readouterr().err == ""
    # ... and still refuses its placeholders.
    assert check_startup(strong(WALLETBOT_IN_IMAGE="1", RASA_AUTH_TOKEN="dev-rasa-token")) == 1
    assert "RASA_AUTH_TOKEN holds a development value" in capsys.readouterr().err


def test_the_image_never_falls_back_to_config_dev_env():
    from walletbot.settings import Settings, in_image

    assert in_image({"WALLETBOT_IN_IMAGE": "1"}) and not in_image({"WALLETBOT_IN_IMAGE": "0"})
    assert not in_image({})
    inside = Settings.from_env({"WALLETBOT_ENV": "dev", "WALLETBOT_IN_IMAGE": "1"})
    assert inside.wechat == {} and inside.rasa_auth_token == ""
    assert Settings.from_env({"WALLETBOT_ENV": "dev"}).rasa_auth_token == "dev-rasa-token"
