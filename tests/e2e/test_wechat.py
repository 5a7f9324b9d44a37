"""The WeChat channel end to end: the real servers (scripts/run.sh) in safe mode.

The test plays WeChat's servers (signing and encrypting with wechatpy's own
``WeChatCrypto``), runs a fake WeChat API that records customer-service
messages, and puts a proxy between Rasa and the action server that can make
actions slow. Conversations are checked in Rasa's tracker over its HTTP API.
A last test runs the channel in plaintext mode in-process with the real model.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from wechatpy.crypto import WeChatCrypto

from tests.e2e.conftest import RunningBot, http_get, start_bot
from tests.walletbot.channels.wechat.doubles import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    WeChatServer,
    free_port,
    serve_channel,
    sign,
    text_xml,
    xml_fields,
)
from walletbot.channels.wechat import WeChatInput
from walletbot.faq.kb import load_entry
from walletbot.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

RASA_PORT, ACTION_PORT = 15205, 15255
WITHDRAW_HOW = load_entry(PROJECT_ROOT / "data" / "faq" / "withdraw_how.yml").answer


# --- WeChat's side ---------------------------------------------------------


class SyncWeChat:
    """WeChat's servers, calling the bot's webhook in safe mode."""

    def __init__(self, base: str) -> None:
        self.url = f"{base}/webhooks/wechat/webhook"
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)

    def _query(self) -> Dict[str, str]:
        timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
        return {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}

    def verify(self, echostr: str) -> Tuple[int, str]:
        query = {**self._query(), "echostr": echostr}
        return http_get(f"{self.url}?{urllib.parse.urlencode(query)}")

    def post(self, xml: str, *, forge: bool = False, raw: bool = False) -> Tuple[int, str, Dict[str, str]]:
        """Posts ``xml`` encrypted and signed; returns status, body, decrypted reply fields."""
        query = self._query()
        if raw:
            body = xml.encode()
            query.update(encrypt_type="aes", msg_signature="0" * 40)
        else:
            envelope = xml_fields(self.crypto.encrypt_message(xml, query["nonce"], query["timestamp"]))
            body = f"<xml><ToUserName>gh_e2e</ToUserName><Encrypt>{envelope['Encrypt']}</Encrypt></xml>".encode()
            query.update(encrypt_type="aes", msg_signature=envelope["MsgSignature"])
        if forge:
            query.update(signature="f" * 40, msg_signature="f" * 40)
        request = urllib.request.Request(f"{self.url}?{urllib.parse.urlencode(query)}", data=body)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), {}
        fields: Dict[str, str] = {}
        if text.startswith("<xml>"):
            outer = xml_fields(text)
            plain = self.crypto.decrypt_message(text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"])
            fields = xml_fields(plain)
        return status, text, fields


# --- fake WeChat API and a slow-action proxy ----------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class FakeApi:
    """WeChat's token and customer-service endpoints, in a thread."""

    def __init__(self) -> None:
        self.sends: List[Dict[str, Any]] = []
        self.tokens = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, data: Dict[str, Any]) -> None:
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                with owner.lock:
                    owner.tokens += 1
                    token = f"e2e-token-{owner.tokens}"
                self._json({"access_token": token, "expires_in": 7200})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                data = json.loads(self.rfile.read(length))
                with owner.lock:
                    owner.sends.append({"path": self.path, "body": data})
                self._json({"errcode": 0, "errmsg": "ok"})

        self.server = _Server(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self, openid: str) -> List[str]:
        with self.lock:
            return [s["body"]["text"]["content"] for s in self.sends if s["body"].get("touser") == openid]

    def wait_delivered(self, openid: str, timeout: float = 30) -> List[str]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = self.delivered(openid)
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(f"no customer-service message to {openid}: {self.sends}")


class SlowProxy:
    """Forwards Rasa's action calls to the action server, ``delay`` seconds late."""

    def __init__(self, target: str) -> None:
        self.delay = 0.0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))) if method == "POST" else None
                if method == "POST":
                    time.sleep(owner.delay)
                request = urllib.request.Request(
                    target + self.path, data=body, method=method,
                    headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                )
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        status, data = response.status, response.read()
                except urllib.error.HTTPError as error:
                    status, data = error.code, error.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

        self.server = _Server(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# --- the running bot ---------------------------------------------------------


def start_wechat_bot(model: Path, var: Path, api: FakeApi, proxy: SlowProxy) -> RunningBot:
    """scripts/run.sh in safe mode, Rasa calling actions through ``proxy``."""
    env = dict(os.environ)
    env.update(
        WECHAT_TOKEN=TOKEN,
        WECHAT_APP_ID=APP_ID,
        WECHAT_APP_SECRET=APP_SECRET,
        WECHAT_AES_KEY=AES_KEY,
        WECHAT_API_BASE=api.url,
        WECHAT_REPLY_BUDGET="4",
    )
    return start_bot(model, var, env, RASA_PORT, ACTION_PORT,
                     action_endpoint=f"{proxy.url}/webhook", ready_paths=("/webhooks/wechat/",))


@pytest.fixture(scope="module")
def stack(trained_model, tmp_path_factory) -> Iterator[Tuple[RunningBot, FakeApi, SlowProxy, SyncWeChat]]:
    api = FakeApi()
    proxy = SlowProxy(f"http://127.0.0.1:{ACTION_PORT}")
    bot = start_wechat_bot(trained_model, tmp_path_factory.mktemp("wechat-bot"), api, proxy)
    try:
        bot.say("wechat-warm-up", "你好")  # the first turn loads lazily; keep it out of the budget
        yield bot, api, proxy, SyncWeChat(bot.base)
    finally:
        bot.stop(signal.SIGKILL)
        api.server.shutdown()
        proxy.server.shutdown()


def user_texts(bot: RunningBot, sender: str) -> List[str]:
    token = os.environ["RASA_AUTH_TOKEN"]
    _, body = http_get(f"{bot.base}/conversations/wechat:{sender}/tracker?token={token}")
    return [e.get("text") for e in json.loads(body)["events"] if e["event"] == "user"]


_ids = iter(range(int(time.time()) * 1000, int(time.time()) * 1000 + 10**6))


def new_id() -> int:
    return next(_ids)


# --- tests ---------------------------------------------------------------


def test_url_verification(stack):
    _, _, _, wechat = stack
    assert wechat.verify("e2e-echo") == (200, "e2e-echo")


def test_faq_answer_in_safe_mode(stack):
    bot, api, _, wechat = stack
    status, body, reply = wechat.post(text_xml("o_e2e_faq", "怎么提现", new_id()))
    assert status == 200 and "<Encrypt>" in body and "提现" not in body
    assert reply["MsgType"] == "text" and reply["ToUserName"] == "o_e2e_faq"
    assert reply["Content"] == WITHDRAW_HOW
    assert user_texts(bot, "o_e2e_faq") == ["怎么提现"]
    assert api.delivered("o_e2e_faq") == []


def test_forged_signature_is_403_and_leaves_no_trace(stack):
    bot, _, _, wechat = stack
    status, _, _ = wechat.post(text_xml("o_e2e_forged", "怎么提现", new_id()), forge=True)
    assert status == 403
    assert user_texts(bot, "o_e2e_forged") == []


def test_retries_are_processed_once(stack):
    bot, _, _, wechat = stack
    xml = text_xml("o_e2e_retry", "怎么提现", new_id())
    replies = [wechat.post(xml) for _ in range(3)]
    assert [r[0] for r in replies] == [200, 200, 200]
    assert [r[2] for r in replies] == [replies[0][2]] * 3
    assert replies[0][2]["Content"] == WITHDRAW_HOW
    assert user_texts(bot, "o_e2e_retry") == ["怎么提现"]


def test_bound_openid_looks_up_its_order(stack):
    _, _, _, wechat = stack
    _, _, reply = wechat.post(text_xml("o_demo_zhangsan", "帮我查一下 WD202611180002", new_id()))
    assert "1000.00元" in reply["Content"] and "处理中" in reply["Content"]


def test_slow_turn_goes_out_through_the_customer_service_api(stack):
    bot, api, proxy, wechat = stack
    proxy.delay = 6.0
    try:
        started = time.time()
        status, body, _ = wechat.post(text_xml("o_demo_lisi", "帮我查一下 TU202611220007", new_id()))
        assert time.time() - started < 4.9  # inside WeChat's 5 s
        assert (status, body) == (200, "success")
        [message] = api.wait_delivered("o_demo_lisi", timeout=40)
    finally:
        proxy.delay = 0.0
    assert "TU202611220007" in message and "1000.00元" in message
    assert api.tokens == 1
    assert user_texts(bot, "o_demo_lisi") == ["帮我查一下 TU202611220007"]


def test_handoff_on_wechat_agent_replies_go_out_through_the_api(stack):
    """A WeChat user reaches an agent; replies and the score request use the CS API."""
    from tests.e2e.desk_client import Desk

    bot, api, _, wechat = stack
    openid = "o_demo_zhangsan"
    _, _, reply = wechat.post(text_xml(openid, "转人工", new_id()))
    assert "工单号" in reply["Content"]
    # Paused: the bot stays silent and WeChat gets the empty "success".
    status, body, _ = wechat.post(text_xml(openid, "我的钱到底去哪了", new_id()))
    assert (status, body) == (200, "success")

    desk = Desk(bot.base, "agent1")
    ticket = desk.ticket_for(openid)
    assert ticket["channel"] == "wechat" and ticket["user_id"] == "U1001"
    assert any("我的钱到底去哪了" in line["text"] for line in ticket["transcript"])
    before = len(api.delivered(openid))
    assert desk.post(f"tickets/{ticket['id']}/claim")[0] == 200
    assert desk.post(f"tickets/{ticket['id']}/reply", {"text": "正在为您查询，请稍候"})[0] == 200
    deadline = time.time() + 20
    while len(api.delivered(openid)) < before + 2 and time.time() < deadline:
        time.sleep(0.2)
    joined, relayed = api.delivered(openid)[before:before + 2]
    assert "小王" in joined and relayed.endswith("正在为您查询，请稍候")

    assert desk.post(f"tickets/{ticket['id']}/resolve")[0] == 200
    deadline = time.time() + 20
    while not any("人工服务已结束" in m for m in api.delivered(openid)) and time.time() < deadline:
        time.sleep(0.2)
    [survey] = [m for m in api.delivered(openid) if "人工服务已结束" in m]
    assert "1." in survey and "5分" in survey  # buttons became numbered options
    _, _, thanks = wechat.post(text_xml(openid, "1", new_id()))  # option 1 = 5分
    assert "感谢您的评价" in thanks["Content"]
    _, detail = desk.get(f"tickets/{ticket['id']}")
    assert detail["csat"] == 5


@pytest.mark.parametrize("body", [
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><xml><Encrypt>&c;</Encrypt></xml>',
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>',
    "<xml><Encrypt>unterminated",
], ids=["bomb", "xxe", "malformed"])
def test_unsafe_xml_is_refused_and_the_server_goes_on(stack, body):
    bot, _, _, wechat = stack
    status, _, _ = wechat.post(body, raw=True)
    assert status == 400
    _, _, reply = wechat.post(text_xml("o_e2e_after_xml", "怎么提现", new_id()))
    assert reply["Content"] == WITHDRAW_HOW


async def test_plaintext_mode_with_the_real_model(agent):
    """Plaintext mode in-process: the channel in front of the trained model."""
    channel = WeChatInput(TOKEN, APP_ID, APP_SECRET, api_base="http://127.0.0.1:9", reply_budget=4.8)
    await agent.parse_message("你好")  # warm up outside the budget
    async with serve_channel(channel, agent.handle_message) as base:
        wechat = WeChatServer(base)
        reply = await wechat.post(text_xml("o_inproc", "怎么提现", new_id()))
        assert reply.status == 200 and reply.fields["MsgType"] == "text"
        assert reply.content == WITHDRAW_HOW
        forged = await wechat.post(text_xml("o_inproc_forged", "怎么提现", new_id()), forge=True)
        assert forged.status == 403
    tracker = await agent.tracker_store.retrieve("wechat:o_inproc_forged")
    assert tracker is None or not [e for e in tracker.events if e.type_name == "user"]
