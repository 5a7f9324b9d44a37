"""WeChat's side of the webhook in safe mode: signed, AES-encrypted requests, decrypted replies.

Imports only the standard library and wechatpy, so it runs both in the
load generator's venv (bench/.locust-venv) and in the project's (bench/soak.py's
sanity pass and tests/bench): the soak's checks and its load speak the
protocol, and judge the bot's replies, with the same code.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple

# What the channel answers when it has no passive reply: the answer, if any,
# goes out through the customer-service API (turn over budget), or there is
# none (an agent has the conversation).
SUCCESS = "success"
WEBHOOK = "/webhooks/wechat/webhook"
# WeChat drops a passive reply that takes longer (and retries the message).
WECHAT_TIMEOUT = 5.0

_CDATA = re.compile(r"<(\w+)><!\[CDATA\[(.*?)\]\]></\1>", re.S)
_NUMBER = re.compile(r"<(\w+)>(\d+)</\1>")


def xml_fields(xml: str) -> Dict[str, str]:
    """The text fields of a flat WeChat XML message (CDATA and numbers)."""
    fields = dict(_NUMBER.findall(xml))
    fields.update(_CDATA.findall(xml))
    return fields


def signature(token: str, timestamp: str, nonce: str) -> str:
    """The URL signature WeChat puts on every call."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def text_message(openid: str, text: str, msg_id: int, timestamp: str) -> str:
    """A user's text message as WeChat's servers post it (plaintext form)."""
    cdata_text = text.replace("]]>", "]]]]><![CDATA[>")
    return (f"<xml><ToUserName><![CDATA[gh_soak]]></ToUserName>"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{cdata_text}]]></Content><MsgId>{msg_id}</MsgId></xml>")


@dataclass(frozen=True)
class Account:
    """An Official Account's token, EncodingAESKey and AppID (safe mode)."""

    token: str
    aes_key: str
    app_id: str
    _cache: Dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def crypto(self) -> Any:
        # Built on first use: nothing (not even wechatpy) is loaded with the module.
        if "crypto" not in self._cache:
            from wechatpy.crypto import WeChatCrypto

            self._cache["crypto"] = WeChatCrypto(self.token, self.aes_key, self.app_id)
        return self._cache["crypto"]

    def request(self, openid: str, text: str, msg_id: int) -> Tuple[str, bytes]:
        """``(path with query, body)`` of an encrypted, signed text message."""
        timestamp, nonce = str(int(time.time())), f"n{msg_id}"
        plain = text_message(openid, text, msg_id, timestamp)
        envelope = xml_fields(self.crypto.encrypt_message(plain, nonce, timestamp))
        path = (f"{WEBHOOK}?signature={signature(self.token, timestamp, nonce)}"
                f"&timestamp={timestamp}&nonce={nonce}&encrypt_type=aes"
                f"&msg_signature={envelope['MsgSignature']}")
        body = (f"<xml><ToUserName><![CDATA[gh_soak]]></ToUserName>"
                f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>")
        return path, body.encode()

    def reply_text(self, body: str) -> Optional[str]:
        """The text of the bot's passive reply; None for ``success`` or empty (no passive reply).

        Raises:
            ValueError: The body is neither that nor a reply this account can
                verify and decrypt.
        """
        body = (body or "").strip()
        if body in ("", SUCCESS):
            return None
        outer = xml_fields(body)
        if "Encrypt" not in outer:
            raise ValueError(f"not an encrypted reply: {body[:120]!r}")
        try:
            plain = self.crypto.decrypt_message(body, outer["MsgSignature"], outer["TimeStamp"],
                                                outer["Nonce"])
        except Exception as error:  # wechatpy has exception types of its own
            raise ValueError(f"reply does not verify or decrypt: {error!r}") from None
        return xml_fields(plain).get("Content", "")


def judge_reply(status: int, body: str, account: Account, *, expect: Sequence[str] = (),
                failure_markers: Sequence[str] = (), silent: bool = False,
                seconds: float = 0.0) -> Tuple[Optional[str], Optional[str]]:
    """``(reply text, why it is a failure or None)`` for one webhook answer.

    A 200 is not enough: an answer too late for WeChat, one that went to the
    customer-service API instead of the passive reply (over budget), the bot's
    apology for a failed dependency, or a reply without the expected content
    is a failure too.

    Args:
        status, body: The webhook's HTTP answer.
        account: Decrypts the reply.
        expect: The reply must contain one of these (empty: any reply will do).
        failure_markers: Texts the bot says only when something failed.
        silent: No reply is expected (an agent has the conversation).
        seconds: How long the answer took (over WeChat's 5 s it is lost).
    """
    if status != 200:
        return None, f"HTTP {status}"
    if seconds > WECHAT_TIMEOUT:
        return None, f"answered after {seconds:.1f} s: WeChat gives up after {WECHAT_TIMEOUT:.0f} s"
    try:
        text = account.reply_text(body)
    except ValueError as error:
        return None, str(error)
    if silent:
        if text is None:
            return None, None
        return text, f"a reply while an agent has the conversation: {text[:80]}"
    if text is None:
        return None, "no passive reply: the answer went to the customer-service API (fallback)"
    for marker in failure_markers:
        if marker and marker in text:
            return text, f"the bot apologised: {text[:80]}"
    if expect and not any(e in text for e in expect):
        return text, f"unexpected reply (wanted {' / '.join(expect)}): {text[:80]}"
    return text, None
