from walletbot.settings import check_startup, placeholder_secrets, read_env_file


def test_dev_profile_accepts_dev_defaults():
    assert check_startup({"WALLETBOT_ENV": "dev", "RASA_AUTH_TOKEN": "dev-rasa-token"}) == 0


def test_production_refuses_placeholder_secrets(capsys):
    env = {"WALLETBOT_ENV": "production", "RASA_AUTH_TOKEN": "dev-rasa-token"}
    assert check_startup(env) == 1
    assert "RASA_AUTH_TOKEN" in capsys.readouterr().err
    assert placeholder_secrets({"RASA_AUTH_TOKEN": ""}) == ["RASA_AUTH_TOKEN"]


def test_production_starts_with_real_secrets():
    env = {"WALLETBOT_ENV": "production", "RASA_AUTH_TOKEN": "k3J9x-real-token"}
    assert check_startup(env) == 0


def test_read_env_file(tmp_path):
    path = tmp_path / "x.env"
    path.write_text("# comment\nA=1\n\nB=\nC=x=y\n", encoding="utf-8")
    assert read_env_file(path) == {"A": "1", "B": "", "C": "x=y"}
