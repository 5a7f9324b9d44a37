"""Promote / rollback as file operations, and telling a running server (``PUT /model``)."""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from walletbot.cli import main
from walletbot.trainer import promote as pm
from walletbot.trainer.server import ServerError, load_model, server_defaults


def _model(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_first_promotion_needs_no_comparison(tmp_path, capsys):
    models = tmp_path / "models"
    candidate = _model(models / "walletbot-20260101-000000-abcdef0123.tar.gz", b"first")
    assert main(["promote", str(candidate), "--models-dir", str(models)]) == 0
    assert (models / "walletbot.tar.gz").read_bytes() == b"first"
    assert "promoting without comparison" in capsys.readouterr().out
    # The same model again: refused at once, before any scoring.
    assert main(["promote", str(candidate), "--models-dir", str(models)]) == 2
    assert "is already the served model" in capsys.readouterr().err


def test_promote_keeps_the_previous_model_and_rollback_restores_it(tmp_path, capsys):
    models = tmp_path / "models"
    served = models / "walletbot.tar.gz"
    history = models / "history"
    one = _model(models / "walletbot-20260101-000000-aaaaaaaaaa.tar.gz", b"one")
    two = _model(models / "walletbot-20260102-000000-bbbbbbbbbb.tar.gz", b"two")
    pm.promote(candidate=one, served=served, history=history)
    old = time.time() - 3600
    os.utime(two, (old, old))
    change = pm.promote(candidate=two, served=served, history=history)
    assert served.read_bytes() == b"two"
    # A fresh mtime: `make run` must not think the model is older than the data.
    assert served.stat().st_mtime > old + 1800
    assert change.kept is not None and change.kept.read_bytes() == b"one"
    assert change.kept.name.endswith("-walletbot-20260101-000000-aaaaaaaaaa.tar.gz")
    with pytest.raises(pm.PromotionError, match="already the served model"):
        pm.promote(candidate=two, served=served, history=history)

    assert main(["rollback", "--models-dir", str(models)]) == 0
    assert served.read_bytes() == b"one"
    out = capsys.readouterr().out
    assert "is walletbot-20260101-000000-aaaaaaaaaa.tar.gz again" in out
    assert [p.read_bytes() for p in (history / "rolled_back").iterdir()] == [b"two"]
    assert [e["action"] for e in pm.read_log(history)] == ["promote", "promote", "rollback"]
    assert main(["rollback", "--models-dir", str(models)]) == 2
    assert "nothing to roll back to" in capsys.readouterr().err


class _FakeRasa(BaseHTTPRequestHandler):
    requests: List[Dict] = []

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        type(self).requests.append({"path": self.path, "body": body})
        self.send_response(204 if "token=secret" in self.path else 401)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_server() -> Iterator[str]:
    """A stand-in for Rasa's HTTP API that accepts the token ``secret``."""
    _FakeRasa.requests = []
    server = HTTPServer(("127.0.0.1", 0), _FakeRasa)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_the_server_is_asked_to_load_the_model(fake_server, tmp_path):
    model = _model(tmp_path / "walletbot.tar.gz", b"m")
    load_model(model=model, url=fake_server, token="secret", timeout=5)
    (request,) = _FakeRasa.requests
    assert request["path"] == "/model?token=secret"
    assert request["body"] == {"model_file": str(model.resolve())}


def test_a_wrong_token_is_reported(fake_server, tmp_path):
    with pytest.raises(ServerError, match="RASA_AUTH_TOKEN"):
        load_model(model=tmp_path / "m.tar.gz", url=fake_server, token="wrong", timeout=5)


def test_no_server_is_reported(tmp_path):
    with pytest.raises(ServerError, match="no Rasa server answered"):
        load_model(model=tmp_path / "m.tar.gz", url="http://127.0.0.1:9", token="t", timeout=2)


def test_rollback_reloads_the_running_server(fake_server, tmp_path, capsys):
    models = tmp_path / "models"
    served = models / "walletbot.tar.gz"
    for n, content in enumerate((b"one", b"two")):
        pm.promote(candidate=_model(models / f"walletbot-2026010{n}-000000-{n}.tar.gz", content),
                   served=served, history=models / "history")
    assert main(["rollback", "--models-dir", str(models), "--reload", "--url", fake_server,
                 "--token", "secret"]) == 0
    assert _FakeRasa.requests[0]["body"] == {"model_file": str(served.resolve())}
    assert "the server now serves the new model" in capsys.readouterr().out


def test_server_defaults_come_from_the_environment():
    assert server_defaults({"RASA_PORT": "6006", "RASA_AUTH_TOKEN": "tok"}) == (
        "http://127.0.0.1:6006", "tok"
    )
