"""Structured logs (walletbot/ops/logs.py): JSON lines with the turn's ids, no message text above DEBUG."""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import logging.config
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Iterator, List

import pytest

from walletbot.ops import logs
from walletbot.settings import PROJECT_ROOT
from walletbot.turns.pipeline import Inbound

from tests.walletbot.channels.wechat.doubles import free_port
from tests.walletbot.turns.doubles import FakeAgent, make_pipeline

MARKER = "MARKER-q7xk2"
CARD = "6222021234567890123"


def record(message: str, *args, level=logging.INFO, name="walletbot.test", **extra) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, message, args, None)
    rec.__dict__.update(extra)
    return rec


def test_a_line_is_one_json_object_with_time_level_logger_and_message():
    line = logs.JsonFormatter().format(record("turn %s in %d ms", "answered", 12))
    parsed = json.loads(line)
    assert "\n" not in line
    assert parsed["level"] == "INFO" and parsed["logger"] == "walletbot.test"
    assert parsed["message"] == "turn answered in 12 ms"
    assert parsed["time"].endswith("+00:00") and "T" in parsed["time"]
    assert "conversation_id" not in parsed and "turn_id" not in parsed


def test_lines_inside_a_turn_carry_its_ids_and_the_ids_end_with_it():
    formatter = logs.JsonFormatter()
    with logs.context(conversation_id="wechat:o_abc", turn_id="t-1", channel="wechat"):
        inside = json.loads(formatter.format(record("x")))
    outside = json.loads(formatter.format(record("x")))
    assert (inside["conversation_id"], inside["turn_id"], inside["channel"]) == (
        "wechat:o_abc", "t-1", "wechat")
    assert "conversation_id" not in outside


def test_card_numbers_are_masked_tracebacks_are_a_field_and_queries_are_dropped():
    formatter = logs.JsonFormatter()
    try:
        raise ValueError(f"bad card {CARD}")
    except ValueError:
        rec = record("card %s", CARD, level=logging.ERROR)
        rec.exc_info = sys.exc_info()
    parsed = json.loads(formatter.format(rec))
    assert CARD not in json.dumps(parsed) and CARD[-4:] in parsed["message"]
    assert "ValueError" in parsed["exception"] and "Traceback" in parsed["exception"]
    access = json.loads(formatter.format(record("", name="sanic.access", status=200, byte=2,
                                                host="h", request="GET http://h/status?token=s3")))
    assert access["request"] == "GET http://h/status" and access["status"] == 200


@contextlib.contextmanager
def captured(level: int = logging.INFO) -> Iterator[List[str]]:
    """JSON lines of every log record at ``level`` or above, from any logger."""
    lines: List[str] = []

    class Keep(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            lines.append(self.format(rec))

    handler = Keep(level)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def test_a_real_turn_logs_json_with_its_ids_and_no_message_text_above_debug(real_agent):
    pipeline = make_pipeline(real_agent)
    text = f"{MARKER} 我的卡号{CARD}，提现一般几天到账"
    with captured(logging.INFO) as lines:
        replies = await pipeline.handle(
            Inbound(channel="web", sender="json-1", text=text, message_id="wx-42"),
            real_agent.handle_message)
    assert replies
    parsed = [json.loads(line) for line in lines]
    assert parsed, "a turn logs at least its own line"
    assert all(MARKER not in line and CARD not in line for line in lines), lines
    (turn,) = [p for p in parsed if p["logger"] == "walletbot.turns.pipeline"]
    assert turn["conversation_id"] == "web:json-1" and turn["turn_id"] == "wx-42"
    assert turn["level"] == "INFO" and turn["message"].startswith("turn ")
    # The tracker keeps the same id for the user message: the action server logs it too.
    tracker = await real_agent.tracker_store.retrieve("web:json-1")
    users = [e for e in tracker.events if e.type_name == "user"]
    assert users[-1].message_id == "wx-42"


async def test_a_turn_id_is_made_when_the_channel_has_none():
    agent = FakeAgent()
    seen = []

    async def bot(message):
        seen.append((message.message_id, logs.current().turn_id))

    with captured() as lines:
        await make_pipeline(agent).handle(Inbound(channel="rest", sender="json-2", text="你好"), bot)
    ((message_id, turn_id),) = seen
    assert message_id == turn_id and len(turn_id) == 32
    assert json.loads(lines[-1])["turn_id"] == turn_id


async def test_a_failure_quoting_the_message_keeps_it_to_debug():
    async def broken(message):
        raise ValueError(f"cannot handle {message.text!r}")

    with captured(logging.DEBUG) as lines:
        await make_pipeline(FakeAgent()).handle(
            Inbound(channel="rest", sender="json-3", text=f"{MARKER} 提现"), broken)
    parsed = [json.loads(line) for line in lines]
    above_debug = [p for p in parsed if p["level"] != "DEBUG"]
    assert any(p["message"] == "bot turn failed: ValueError" for p in above_debug), parsed
    assert all(MARKER not in json.dumps(p, ensure_ascii=False) for p in above_debug)
    # Still there for whoever debugs, at DEBUG.
    assert any(MARKER in p.get("exception", "") for p in parsed if p["level"] == "DEBUG")


# --- switching a process to JSON -----------------------------------------------------


@pytest.fixture
def restored_logging():
    """Puts back the root handlers' formatters, Sanic's defaults and Rasa's plugins."""
    from rasa.plugin import plugin_manager
    from sanic.log import LOGGING_CONFIG_DEFAULTS

    root = logging.getLogger()
    formatters = [(h, h.formatter) for h in root.handlers]
    sanic_formatters = copy.deepcopy(LOGGING_CONFIG_DEFAULTS["formatters"])
    yield
    for handler, formatter in formatters:
        handler.setFormatter(formatter)
    LOGGING_CONFIG_DEFAULTS["formatters"] = sanic_formatters
    manager = plugin_manager()
    if manager.has_plugin("walletbot-json-logs"):
        manager.unregister(name="walletbot-json-logs")
    logging.captureWarnings(False)


def test_the_rasa_server_switches_to_json_once_rasas_cli_configured_logging(restored_logging):
    from rasa.plugin import plugin_manager
    from sanic.log import LOGGING_CONFIG_DEFAULTS

    root = logging.getLogger()
    stray = logging.StreamHandler()
    root.addHandler(stray)  # what coloredlogs puts there
    try:
        logs.use_json(action_server=False)
        assert not isinstance(stray.formatter, logs.JsonFormatter)  # not before the CLI's turn
        answers = plugin_manager().hook.configure_commandline(cmdline_arguments=argparse.Namespace())
        assert answers == []  # no endpoints file offered to Rasa
        assert isinstance(stray.formatter, logs.JsonFormatter)
    finally:
        root.removeHandler(stray)
    # The Rasa server's Sanic app configures Sanic's loggers from these defaults.
    config = {
        "version": 1, "disable_existing_loggers": False,
        "formatters": copy.deepcopy(LOGGING_CONFIG_DEFAULTS["formatters"]),
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "generic"}},
        "loggers": {"walletbot_test.sanic": {"level": "INFO", "handlers": ["console"]}},
    }
    logging.config.dictConfig(config)
    (handler,) = logging.getLogger("walletbot_test.sanic").handlers
    assert isinstance(handler.formatter, logs.JsonFormatter)


# --- the action server as launched ------------------------------------------------------


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_the_action_server_logs_json_serves_metrics_on_loopback_and_echoes_nothing(tmp_path):
    port, metrics_port = free_port(), free_port()
    env = dict(os.environ, LOG_FORMAT="json", ACTION_METRICS_PORT=str(metrics_port),
               WALLET_DB_URL=f"sqlite:///{tmp_path / 'wallet.db'}",
               PYTHONWARNINGS="ignore::DeprecationWarning")
    log = tmp_path / "actions.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "walletbot.server", "run", "actions", "--actions", "actions",
         "--port", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        deadline = time.time() + 90
        while True:
            try:
                _get(f"http://127.0.0.1:{port}/health")
                break
            except (urllib.error.URLError, OSError):
                assert process.poll() is None and time.time() < deadline, log.read_text()[-3000:]
                time.sleep(0.3)
        body = json.dumps({
            "next_action": "action_handoff", "version": "3.6.21", "domain": {},
            "tracker": {"sender_id": "wechat:o_json", "slots": {}, "latest_message": {},
                        "paused": False, "active_loop": {},
                        "events": [{"event": "user", "text": f"{MARKER} {CARD}",
                                    "message_id": "turn-77"}, 5]},
        }).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=body,
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(request, timeout=10)
        assert failed.value.code == 500
        # Rasa logs this answer as the failure's cause: no tracker echoed in it.
        assert json.loads(failed.value.read()) == {"error": "AttributeError"}

        exposed = _get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert 'walletbot_action_errors_total{action="action_handoff"} 1.0' in exposed
        with socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex(("127.0.0.2", metrics_port)) != 0
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    started = next(i for i, line in enumerate(lines) if "Starting action endpoint server" in line)
    parsed = [json.loads(line) for line in lines[started:] if not line.startswith((" ", "\t"))]
    assert all(MARKER not in line and CARD not in line for line in lines)
    (error,) = [p for p in parsed if p["logger"] == "walletbot.rasa_compat.observe"]
    assert error["level"] == "ERROR" and error["message"].startswith(
        "action action_handoff raised AttributeError at ")
    assert (error["conversation_id"], error["turn_id"], error["channel"]) == (
        "wechat:o_json", "turn-77", "wechat")


def test_json_is_the_production_default_and_text_the_development_one():
    from walletbot.settings import Settings

    assert Settings.from_env({"WALLETBOT_ENV": "production"}).log_format == "json"
    assert Settings.from_env({}).log_format == "text"
    assert Settings.from_env({"WALLETBOT_ENV": "production", "LOG_FORMAT": "TEXT"}).log_format == "text"
    assert Settings.from_env({"WALLETBOT_ENV": "production", "LOG_FORMAT": "xml"}).log_format == "json"
