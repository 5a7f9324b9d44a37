"""`make run`'s promise: both servers start, answer, persist, and stop on Ctrl-C."""

import json
import os
import socket
import sqlite3
import subprocess
import time
import urllib.error

import pytest

from tests.e2e.conftest import PROJECT_ROOT, http_get, start_bot

pytestmark = pytest.mark.slow


def test_bot_answers_persists_and_stops_on_ctrl_c(trained_model, tmp_path):
    bot = start_bot(trained_model, tmp_path, dict(os.environ), 15005, 15055)
    try:
        assert "OK钱包" in bot.text("run-test", "你好")
        assert "提现" in bot.text("run-test", "怎么提现到银行卡")

        # One ready banner: the URLs, the demo logins, how to stop; no start-up noise.
        banner = _wait_for(tmp_path / "bot.log", "Stop with Ctrl-C.")
        for line in (f"http://127.0.0.1:{bot.rasa_port}/webhooks/web/chat",
                     f"http://127.0.0.1:{bot.rasa_port}/webhooks/desk/",
                     f"http://127.0.0.1:{bot.rasa_port}/webhooks/wechat/webhook",
                     "张三 or 李四", "dev-agent-password"):
            assert line in banner, banner
        assert "tensorflow" not in banner.lower() and "Sanic" not in banner
        assert (tmp_path / "rasa.log").stat().st_size > 0

        # The HTTP API is on, but only with the token.
        with pytest.raises(urllib.error.HTTPError) as denied:
            http_get(f"{bot.base}/status")
        assert denied.value.code == 401
        token = os.environ["RASA_AUTH_TOKEN"]
        assert http_get(f"{bot.base}/status?token={token}")[0] == 200

        # The conversation is in the SQL tracker store.
        with sqlite3.connect(tmp_path / "tracker.db") as conn:
            texts = [
                json.loads(row[0]).get("text")
                for row in conn.execute(
                    "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'",
                    ("rest:run-test",),
                )
            ]
        assert texts == ["你好", "怎么提现到银行卡"]
    finally:
        # Ctrl-C on the foreground script stops every child.
        bot.stop()
    for port in (bot.rasa_port, bot.action_port):
        with pytest.raises(OSError):
            http_get(f"http://127.0.0.1:{port}/")


def _wait_for(path, text, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        content = path.read_text(encoding="utf-8", errors="replace")
        if text in content:
            return content
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {path}:\n{content[-2000:]}")


def test_a_busy_port_is_named_with_the_fix(trained_model, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(os.environ, RASA_PORT=str(port), ACTION_PORT="15999", MODEL=str(trained_model),
                   LOG_DIR=str(tmp_path), TRACKER_DB_URL=f"sqlite:///{tmp_path / 't.db'}")
        done = subprocess.run(["scripts/run.sh"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
    assert done.returncode == 1
    assert f"port {port} is in use" in done.stderr and "RASA_PORT=" in done.stderr


def test_a_missing_model_is_named_with_the_fix(tmp_path):
    env = dict(os.environ, MODEL=str(tmp_path / "none.tar.gz"), LOG_DIR=str(tmp_path),
               TRACKER_DB_URL=f"sqlite:///{tmp_path / 't.db'}")
    done = subprocess.run(["scripts/run.sh"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and "make run" in done.stderr and "no model" in done.stderr
