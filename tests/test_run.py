"""`make run`'s promise: both servers start, answer, persist, and stop on Ctrl-C."""

import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from walletbot.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

RASA_PORT = 15005
ACTION_PORT = 15055


def _get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read().decode()


def _post_rest(sender, message):
    body = json.dumps({"sender": sender, "message": message}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{RASA_PORT}/webhooks/rest/webhook",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _wait_ready(process, deadline):
    urls = [f"http://127.0.0.1:{RASA_PORT}/", f"http://127.0.0.1:{ACTION_PORT}/health"]
    while time.time() < deadline:
        assert process.poll() is None, "run.sh exited early"
        try:
            if all(_get(url)[0] == 200 for url in urls):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(1)
    raise AssertionError("servers not ready in time")


@pytest.fixture
def running_bot(trained_model, tmp_path, project_env):
    env = dict(project_env)
    env.update(
        RASA_PORT=str(RASA_PORT),
        ACTION_PORT=str(ACTION_PORT),
        ACTION_ENDPOINT_URL=f"http://127.0.0.1:{ACTION_PORT}/webhook",
        TRACKER_DB=str(tmp_path / "tracker.db"),
        MODEL=str(trained_model),
    )
    process = subprocess.Popen(
        ["scripts/run.sh"], cwd=PROJECT_ROOT, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(process, time.time() + 180)
        yield process, tmp_path / "tracker.db"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_bot_answers_persists_and_stops_on_ctrl_c(running_bot):
    process, tracker_db = running_bot

    greeting = _post_rest("run-test", "你好")
    assert "OK钱包" in greeting[0]["text"]
    answer = _post_rest("run-test", "怎么提现到银行卡")
    assert "提现" in answer[0]["text"]

    # The HTTP API is on, but only with the token.
    with pytest.raises(urllib.error.HTTPError) as denied:
        _get(f"http://127.0.0.1:{RASA_PORT}/status")
    assert denied.value.code == 401
    token = os.environ["RASA_AUTH_TOKEN"]
    assert _get(f"http://127.0.0.1:{RASA_PORT}/status?token={token}")[0] == 200

    # The conversation is in the SQL tracker store.
    with sqlite3.connect(tracker_db) as conn:
        texts = [
            json.loads(row[0]).get("text")
            for row in conn.execute(
                "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user'",
                ("run-test",),
            )
        ]
    assert texts == ["你好", "怎么提现到银行卡"]

    # Ctrl-C on the foreground script stops every child.
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=30)
    time.sleep(1)
    for port in (RASA_PORT, ACTION_PORT):
        with pytest.raises(OSError):
            _get(f"http://127.0.0.1:{port}/")
