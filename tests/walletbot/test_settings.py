from walletbot.settings import check_startup, placeholder_secrets, read_env_file

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
    "WEB_JWT_SECRET": "h2Kp9sLq0wVb7ZrX4mNc",
    "DESK_SECRET": "T5yUq8eW2rPz6xLk1JdS",
    "WEB_DEMO_LOGIN": "false",
    "DESK_AGENTS_FILE": "/etc/walletbot/agents.yml",
}


def test_production_starts_with_real_secrets():
    env = {"WALLETBOT_ENV": "production", "RASA_AUTH_TOKEN": "k3J9x-real-token",
           **REAL_WECHAT, **REAL_WEB_DESK}
    assert check_startup(env) == 0


def test_production_refuses_demo_login_and_dev_agents(capsys):
    base = {"WALLETBOT_ENV": "production", "RASA_AUTH_TOKEN": "k3J9x-real-token",
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
    base = {"WALLETBOT_ENV": "production", "RASA_AUTH_TOKEN": "k3J9x-real-token"}
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
    base = {"WALLETBOT_ENV": "production", "RASA_AUTH_TOKEN": "k3J9x-real-token",
            **REAL_WECHAT, **REAL_WEB_DESK}
    assert check_startup({**base, "REST_CHANNEL_TOKEN": "short"}) == 1
    assert "REST_CHANNEL_TOKEN" in capsys.readouterr().err
    assert check_startup({**base, "REST_CHANNEL_TOKEN": "x7Kq2" * 8}) == 0


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
