"""`make run`'s promise: both servers start, answer, persist, and stop on Ctrl-C."""

import json
import os
import sqlite3
import urllib.error

import pytest

from tests.e2e.conftest import http_get, start_bot

pytestmark = pytest.mark.slow


def test_bot_answers_persists_and_stops_on_ctrl_c(trained_model, tmp_path):
    bot = start_bot(trained_model, tmp_path, dict(os.environ), 15005, 15055)
    try:
        assert "OK钱包" in bot.text("run-test", "你好")
        assert "提现" in bot.text("run-test", "怎么提现到银行卡")

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
