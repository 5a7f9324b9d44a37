"""Personal data typed every which way never lands anywhere: the real servers, end to end.

Every variant of the corpus (tests/security/corpus.py) goes through the REST
channel, with itself in the message metadata too; a few go through WeChat as
text and as recognised voice; a user hands off to a human and an agent
pastes a card number, a phone number and a password into the desk. Both
servers log at DEBUG. Then every place the text could have reached is read
back and searched for every secret, as typed and with separators, widths
and numerals folded away:

- the tracker DB and the wallet DB (every cell, and the raw files);
- the Rasa server's and the action server's logs;
- the desk API's JSON (queue, ticket details, audit log);
- what was posted to the new-ticket webhook and to the WeChat API;
- the ``walletbot review`` export of the tracker store.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List

import pytest

from tests.e2e.desk_client import Desk, tracker
from tests.e2e.processes import SERVER, Stack
from tests.security.corpus import CARD, ORDER, VARIANTS, Variant, squash
from tests.walletbot.channels.wechat.doubles import (
    ACCOUNT, APP_ID, APP_SECRET, TOKEN, free_port, message_xml, sign, text_xml,
)
from walletbot.turns import screening

pytestmark = pytest.mark.slow

RASA_PORT, ACTION_PORT = 15705, 15755
AGENT_PASTE = ("您好，核实到您的卡号6222 0202 0011 2233 445、手机＋86 138-1234-5678，"
               "支付密码是Abc@2026，验证码８８４５１２，订单WD202611180002金额1000元")
AGENT_SECRETS = Variant(AGENT_PASTE, (CARD[:-4], "1381234", "abc@2026", "884512"))
WECHAT_VARIANTS = [next(v for v in VARIANTS if picked(v.text)) for picked in (
    lambda t: "６２２２" in t,          # a full-width card number
    lambda t: t.startswith("密碼是"),   # a traditional password
    lambda t: "幺三八" in t,            # a phone number in Chinese numerals
    lambda t: "8 8 4 5 1 2" in t,       # a spaced verification code
)]


class Recorder:
    """An HTTP server standing in for the ticket webhook and the WeChat API; keeps every body."""

    def __init__(self) -> None:
        self.bodies: List[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                body = json.dumps({"access_token": "e2e-token", "expires_in": 7200,
                                   "errcode": 0, "errmsg": "ok"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                owner.bodies.append(self.rfile.read(length).decode("utf-8", "replace"))
                self._answer()

        server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        server.daemon_threads = True
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()


class DebugStack(Stack):
    """The stack with the action server at DEBUG too (rasa-sdk ignores LOG_LEVEL)."""

    def start_actions(self, **overrides: str) -> None:
        env = {**self.env, **overrides}
        self.actions = self._spawn("actions", [*SERVER, "run", "actions", "--actions", "actions",
                                               "--port", str(self.action_port), "--debug"], env)
        self._wait(f"http://127.0.0.1:{self.action_port}/health", self.actions, "actions")


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    running = Recorder()
    yield running
    running.server.shutdown()


@pytest.fixture(scope="module")
def stack(trained_model, tmp_path_factory, recorder):
    env = dict(os.environ)
    env.update(
        LOG_LEVEL="DEBUG",  # masking must come before any log line, at any level
        RATE_LIMIT_PER_MINUTE="100000",
        TRACKER_MAX_EVENTS="0",  # keep every message to search it (no history bound)
        DESK_WEBHOOK_URL=f"{recorder.url}/hook",
        WECHAT_TOKEN=TOKEN, WECHAT_APP_ID=APP_ID, WECHAT_APP_SECRET=APP_SECRET,
        WECHAT_AES_KEY="", WECHAT_API_BASE=recorder.url,
    )
    running = DebugStack(trained_model, tmp_path_factory.mktemp("pii-everywhere"), RASA_PORT,
                    ACTION_PORT, env=env)
    running.start_actions()
    running.start_rasa()
    yield running
    running.stop()


def _post(url: str, body: Dict[str, Any]) -> List[Dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _wechat(stack: Stack, xml: str) -> int:
    timestamp, nonce = str(int(time.time())), "e2epii"
    query = urllib.parse.urlencode({"signature": sign(TOKEN, timestamp, nonce),
                                    "timestamp": timestamp, "nonce": nonce})
    request = urllib.request.Request(f"{stack.base}/webhooks/wechat/webhook?{query}",
                                     data=xml.encode())
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        return response.status


def _stored_user_texts(stack: Stack, conversation: str) -> List[str]:
    """Every user message of the conversation in the tracker DB (all sessions)."""
    with sqlite3.connect(stack.var / "tracker.db") as db:
        rows = db.execute("select data from events where sender_id=? and type_name='user' "
                          "order by id", (conversation,)).fetchall()
    return [json.loads(data)["text"] for (data,) in rows]


_UNESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _readable(text: str) -> str:
    """JSON's \\uXXXX escapes decoded: Rasa stores events with them."""
    return _UNESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def _db_cells(path: Path) -> Iterable[str]:
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in db.execute(f'select * from "{table}"'):
                yield " ".join(str(cell) for cell in row)


class Sink:
    """One place text may have reached, read once: as stored and folded line by line."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.text = _readable(text)
        self.lowered = self.text.lower()
        self.squashed = "\n".join(squash(line) for line in self.text.splitlines())

    def leaks(self, variant: Variant) -> List[str]:
        """Where the variant's secrets survive here."""
        found = []
        cleaned = "".join(c for c in variant.text if c.isprintable()).strip()
        if cleaned in self.text:
            found.append(f"{self.name}: verbatim {variant.text!r}")
        for secret in variant.secrets:
            # Short digit-only secrets (123456) occur in any log by chance; the
            # verbatim check above covers them.
            if len(secret) >= 8 and squash(secret) in self.squashed:
                found.append(f"{self.name}: {secret!r} (folded)")
            elif re.search(r"[a-z]", secret) and secret in self.lowered:
                found.append(f"{self.name}: {secret!r}")
        return found


def test_no_secret_reaches_any_store_log_or_outside_service(stack, recorder, tmp_path):
    # 1. Every variant over REST, in the text and in the metadata.
    rest = f"{stack.base}/webhooks/rest/webhook"
    for n, variant in enumerate(VARIANTS):
        replies = _post(rest, {"sender": "pii-rest", "message": f"订单{ORDER}提现1000元，{variant.text}",
                               "metadata": {"note": variant.text, "n": n}})
        assert replies and replies[0]["text"] == screening.PII_REMINDER, (variant.text, replies)
    users = _stored_user_texts(stack, "rest:pii-rest")
    assert len(users) == len(VARIANTS)
    assert all(f"订单{ORDER}提现1000元" in text for text in users), "order and amount intact"

    # 2. WeChat: typed text and recognised voice.
    for n, variant in enumerate(WECHAT_VARIANTS):
        assert _wechat(stack, text_xml("o_pii", variant.text, 880000 + n)) == 200
        voice = (f"<MediaId>m{n}</MediaId><Format>amr</Format>"
                 f"<Recognition><![CDATA[{variant.text}]]></Recognition>")
        assert _wechat(stack, message_xml("o_pii_voice", "voice", voice, 890000 + n)) == 200
    deadline = time.time() + 60  # a turn over WeChat's budget finishes in the background
    while time.time() < deadline:
        wechat_users = [text for sender in ("wechat:o_pii", "wechat:o_pii_voice")
                        for text in _stored_user_texts(stack, sender)]
        if len(wechat_users) == 2 * len(WECHAT_VARIANTS):
            break
        time.sleep(0.5)
    assert len(wechat_users) == 2 * len(WECHAT_VARIANTS)

    # 3. A handoff: the user's words, then an agent who pastes personal data.
    assert "工单号" in stack.text("pii-handoff", "转人工，我的手机是13812345678")
    stack.say("pii-handoff", "我的卡号 6222.0202.0011.2233.445，密码就是abc123")
    desk = Desk(stack.base, "agent1")
    ticket = desk.ticket_for("pii-handoff")
    assert desk.post(f"tickets/{ticket['id']}/claim")[0] == 200
    assert desk.post(f"tickets/{ticket['id']}/reply", {"text": AGENT_PASTE})[0] == 200
    agent_lines = [e["text"] for e in tracker(stack.base, "pii-handoff")["events"]
                   if e["event"] == "bot" and (e.get("metadata") or {}).get("agent")]
    assert any("***************3445" in t and "WD202611180002金额1000元" in t for t in agent_lines)
    desk_json = [json.dumps(desk.get(path)[1], ensure_ascii=False)
                 for path in ("tickets", f"tickets/{ticket['id']}", "audit")]
    assert desk.post(f"tickets/{ticket['id']}/resolve")[0] == 200
    desk_json.append(json.dumps(desk.get("tickets?status=resolved")[1], ensure_ascii=False))
    deadline = time.time() + 30  # the webhook is fire and forget
    while not any('"msgtype"' in b for b in recorder.bodies) and time.time() < deadline:
        time.sleep(0.5)
    assert any('"msgtype"' in b for b in recorder.bodies), "the new-ticket webhook was called"

    # 4. The review export of the tracker store.
    from walletbot.trainer.cmd_data import review_export

    export = tmp_path / "review.csv"
    assert review_export(url=f"sqlite:///{stack.var / 'tracker.db'}", out=export,
                         reports=tmp_path, min_confidence=1.01, similarity=0.99,
                         progress=False) == 0

    sinks = [Sink(name, text) for name, text in {
        "tracker.db cells": "\n".join(_db_cells(stack.var / "tracker.db")),
        "wallet.db cells": "\n".join(_db_cells(stack.var / "wallet.db")),
        "tracker.db file": (stack.var / "tracker.db").read_bytes().decode("utf-8", "replace"),
        "wallet.db file": (stack.var / "wallet.db").read_bytes().decode("utf-8", "replace"),
        "rasa.log": (stack.var / "rasa.log").read_text(encoding="utf-8", errors="replace"),
        "actions.log": (stack.var / "actions.log").read_text(encoding="utf-8", errors="replace"),
        "desk API": "\n".join(desk_json),
        "webhook and WeChat API": "\n".join(recorder.bodies),
        "review export": export.read_text(encoding="utf-8-sig"),
    }.items()]
    by_name = {sink.name: sink for sink in sinks}
    for name in ("rasa.log", "actions.log"):
        assert " DEBUG " in by_name[name].text, f"{name}: the servers ran at DEBUG"
    assert ORDER in by_name["tracker.db cells"].text and ORDER in by_name["review export"].text
    leaks = [leak for variant in [*VARIANTS, AGENT_SECRETS] for sink in sinks
             for leak in sink.leaks(variant)]
    assert leaks == []


def test_the_search_would_find_a_leak():
    """The search itself: raw, JSON-escaped and re-spaced secrets are all found."""
    card = next(v for v in VARIANTS if v.text.startswith("我的卡号是6222 0202"))
    password = next(v for v in VARIANTS if v.text == "my password is hunter2")
    assert Sink("raw", f"x {card.text} y").leaks(card)
    assert Sink("json", json.dumps({"text": "卡号 6222-0202-0011-2233-445"})).leaks(card)
    assert Sink("log", "user said: MY PASSWORD IS HUNTER2").leaks(password)
    assert not Sink("masked", "我的卡号是***************3445 my password is ******").leaks(card)
