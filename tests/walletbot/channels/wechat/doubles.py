"""Test doubles for the WeChat channel (shared by the unit and e2e tests).

- ``WeChatServer`` plays WeChat's side: it signs requests and, in safe mode,
  encrypts them and decrypts the replies with wechatpy's own ``WeChatCrypto``.
- ``FakeWeChatApi`` is a local aiohttp server standing in for
  ``api.weixin.qq.com``: it hands out access tokens and records customer-service
  messages (``WECHAT_API_BASE`` / ``api_base`` point at it).
- ``FakeBot`` replaces Rasa's ``on_new_message``: fast, scripted, no model.
- ``serve_channel`` runs a Sanic app with the channel's blueprint on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Tuple

import aiohttp
from aiohttp import web
from rasa.core.channels.channel import UserMessage
from sanic import Sanic
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

from walletbot.channels.wechat import WeChatInput

from tests.walletbot.turns.doubles import FakeAgent, make_pipeline

TOKEN = "test-wechat-token"
APP_ID = "wx0123456789abcdef"
APP_SECRET = "test-wechat-secret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters
ACCOUNT = "gh_walletbot"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def text_xml(openid: str, content: str, msg_id: int, create_time: Optional[int] = None) -> str:
    return (
        "<xml>"
        f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{create_time or int(time.time())}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{msg_id}</MsgId>"
        "</xml>"
    )


def message_xml(openid: str, msg_type: str, extra: str = "", msg_id: Optional[int] = None) -> str:
    msg_id_xml = f"<MsgId>{msg_id}</MsgId>" if msg_id else ""
    return (
        "<xml>"
        f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[{msg_type}]]></MsgType>{extra}{msg_id_xml}"
        "</xml>"
    )


@dataclass
class Reply:
    status: int
    body: str
    fields: Dict[str, str] = field(default_factory=dict)

    @property
    def content(self) -> Optional[str]:
        return self.fields.get("Content")


def xml_fields(xml: str) -> Dict[str, str]:
    import xml.etree.ElementTree as ElementTree

    return {child.tag: child.text or "" for child in ElementTree.fromstring(xml)}


class WeChatServer:
    """Sends requests the way WeChat's servers do."""

    def __init__(self, base_url: str, token: str = TOKEN, aes_key: Optional[str] = None) -> None:
        self.url = base_url + "/webhooks/wechat/webhook"
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, APP_ID) if aes_key else None

    def signed_query(self, timestamp: Optional[int] = None, nonce: str = "") -> Dict[str, str]:
        timestamp_s = str(timestamp if timestamp is not None else int(time.time()))
        nonce = nonce or uuid.uuid4().hex[:10]
        return {
            "signature": sign(self.token, timestamp_s, nonce),
            "timestamp": timestamp_s,
            "nonce": nonce,
            "openid": "ignored",
        }

    async def verify(self, echostr: str, **overrides: str) -> Tuple[int, str]:
        query = {**self.signed_query(), "echostr": echostr, **overrides}
        async with aiohttp.ClientSession() as session:
            async with session.get(self.url, params=query) as response:
                return response.status, await response.text()

    async def post(
        self,
        xml: str,
        query: Optional[Dict[str, str]] = None,
        *,
        timestamp: Optional[int] = None,
        raw: bool = False,
        forge: bool = False,
        timeout: float = 30,
    ) -> Reply:
        """POSTs ``xml`` signed (and encrypted in safe mode); decodes the reply.

        ``raw=True`` posts the body as is (with a valid plaintext signature; in
        safe mode with a ``msg_signature`` that cannot match); ``forge=True``
        replaces the signatures with wrong ones.
        """
        body = xml.encode("utf-8")
        if query is None:
            query = self.signed_query(timestamp)
            if self.crypto is not None and raw:
                # An envelope WeChat did not make: its msg_signature cannot match.
                query.update(encrypt_type="aes", msg_signature=sign(self.token, query["timestamp"], query["nonce"], "x"))
            elif self.crypto is not None:
                encrypted = xml_fields(
                    self.crypto.encrypt_message(xml, query["nonce"], query["timestamp"])
                )
                body = (
                    f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
                    f"<Encrypt><![CDATA[{encrypted['Encrypt']}]]></Encrypt></xml>"
                ).encode()
                query.update(encrypt_type="aes", msg_signature=encrypted["MsgSignature"])
        if forge:
            query = {**query, "signature": "f" * 40}
            if "msg_signature" in query:
                query["msg_signature"] = "f" * 40
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.post(self.url, params=query, data=body) as response:
                text = await response.text()
                status = response.status
        return Reply(status, text, self.decode(text) if status == 200 else {})

    def decode(self, body: str) -> Dict[str, str]:
        if not body.startswith("<xml>"):
            return {}
        if self.crypto is None:
            return xml_fields(body)
        outer = xml_fields(body)
        plain = self.crypto.decrypt_message(
            body, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
        )
        return xml_fields(plain)


class FakeWeChatApi:
    """A local stand-in for WeChat's API: tokens and customer-service messages."""

    def __init__(self) -> None:
        self.token_requests: List[Dict[str, str]] = []
        self.sends: List[Dict[str, Any]] = []
        self.send_errors: List[int] = []  # errcodes answered to the next sends
        self.issued = 0
        self.valid_tokens: set = set()
        self.expires_in = 7200
        self._runner: Optional[web.AppRunner] = None
        self.base_url = ""
        self._changed = asyncio.Event()

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests.append(dict(request.query))
        if request.query.get("appid") != APP_ID or request.query.get("secret") != APP_SECRET:
            return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
        self.issued += 1
        token = f"token-{self.issued}"
        self.valid_tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": self.expires_in})

    async def _send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        body = await request.json()
        record = {"token": token, "body": body, "ok": False}
        self.sends.append(record)
        self._changed.set()
        if token not in self.valid_tokens:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        if self.send_errors:
            errcode = self.send_errors.pop(0)
            if errcode in (40001, 42001):
                self.valid_tokens.discard(token)
            return web.json_response({"errcode": errcode, "errmsg": "fake error"})
        record["ok"] = True
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def delivered(self, openid: Optional[str] = None) -> List[str]:
        """Texts accepted for ``openid`` (or anyone), in order."""
        return [
            s["body"]["text"]["content"]
            for s in self.sends
            if s["ok"] and (openid is None or s["body"]["touser"] == openid)
        ]

    async def wait_delivered(self, count: int, timeout: float = 15.0) -> List[str]:
        deadline = time.monotonic() + timeout
        while len(self.delivered()) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"expected {count} deliveries, got {self.sends}")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.delivered()

    async def start(self) -> "FakeWeChatApi":
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._send)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class FakeBot:
    """Rasa's ``on_new_message`` replaced by scripted answers.

    ``answers`` maps a user text to the bot's messages (Rasa message dicts);
    anything else is echoed. ``delays`` maps a text to seconds of "thinking".
    """

    def __init__(self) -> None:
        # Rasa's stores: the pipeline reads the buttons the bot offered from them.
        self.agent = FakeAgent()
        self.received: List[UserMessage] = []
        self.answers: Dict[str, List[Dict[str, Any]]] = {}
        self.delays: Dict[str, float] = {}
        self.fail_on: set = set()

    async def __call__(self, message: UserMessage) -> None:
        self.received.append(message)
        await asyncio.sleep(self.delays.get(message.text or "", 0))
        if message.text in self.fail_on:
            raise RuntimeError("the bot broke")
        answers = self.answers.get(message.text or "", [{"text": f"你说的是：{message.text}"}])
        await self.agent.record(message.sender_id, message.text, answers)
        for answer in answers:
            await message.output_channel.send_response(message.sender_id, dict(answer))

    def texts(self) -> List[str]:
        return [m.text or "" for m in self.received]


@contextlib.asynccontextmanager
async def serve_channel(channel: WeChatInput, bot: Callable) -> AsyncIterator[str]:
    """Runs a Sanic app with ``channel`` at /webhooks/wechat; yields its base URL."""
    app = Sanic(f"wechat_test_{uuid.uuid4().hex[:8]}")
    if channel.pipeline is None:
        channel.pipeline = make_pipeline(getattr(bot, "agent", None))
    app.blueprint(channel.blueprint(bot), url_prefix="/webhooks/wechat")
    port = free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()


def make_channel(fake_api: FakeWeChatApi, aes_key: Optional[str] = None, **kwargs: Any) -> WeChatInput:
    return WeChatInput(
        token=TOKEN,
        app_id=APP_ID,
        app_secret=APP_SECRET,
        aes_key=aes_key,
        api_base=fake_api.base_url,
        reply_budget=kwargs.pop("reply_budget", 1.0),
        **kwargs,
    )
