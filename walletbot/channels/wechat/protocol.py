"""WeChat's callback protocol: signatures, timestamps, safe XML, safe-mode crypto.

Everything here builds on wechatpy (its signer, ``WeChatCrypto``,
``parse_message`` and ``replies``); this module adds what wechatpy leaves out:
constant-time signature comparison, refusal of stale timestamps, and XML
parsing that rejects DTDs, entities and XML bombs (defusedxml) before wechatpy's
own parser sees the text.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import Callable, Dict, Mapping, Optional

from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.messages import BaseMessage
from wechatpy.replies import TextReply
from wechatpy.utils import WeChatSigner

from walletbot.channels.wechat.format import cdata_safe

logger = logging.getLogger(__name__)

# Bodies WeChat sends are a few kB; anything larger is not from WeChat.
MAX_BODY_BYTES = 64 * 1024
# WeChat's timestamps are seconds; requests older (or newer) than this are refused.
MAX_CLOCK_SKEW = 300


class RequestRejected(Exception):
    """A callback that must not be processed.

    Attributes:
        status: the HTTP status to answer with (403 forged/stale, 400 malformed).
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sign(*parts: str) -> str:
    """WeChat's SHA-1 signature of ``parts`` (sorted, concatenated), via wechatpy."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def signature_matches(expected: str, given: Optional[str]) -> bool:
    """Constant-time comparison of two hex signatures."""
    if not given:
        return False
    return hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("ascii", "replace"))


def _safe_fromstring(raw: bytes):  # type: ignore[no-untyped-def]
    """Parses ``raw`` refusing DTDs, entity declarations and external references."""
    try:
        from defusedxml import DefusedXmlException
        from defusedxml.ElementTree import ParseError, fromstring
    except ImportError:  # pragma: no cover - exercised by test_stdlib_guard_*
        return _stdlib_guarded_fromstring(raw)
    try:
        return fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise RequestRejected(400, f"forbidden XML construct: {type(error).__name__}") from error
    except ParseError as error:
        raise RequestRejected(400, f"malformed XML: {error}") from error


def _stdlib_guarded_fromstring(raw: bytes):  # type: ignore[no-untyped-def]
    """Fallback when defusedxml is missing: expat with any DOCTYPE refused.

    Without a DTD there are no entity declarations, so nothing can expand or
    be fetched; this is defusedxml's ``forbid_dtd`` rule.
    """
    import xml.etree.ElementTree as ElementTree
    from xml.parsers import expat

    def refuse(*_args: object) -> None:
        raise RequestRejected(400, "forbidden XML construct: DTD")

    guard = expat.ParserCreate()
    guard.StartDoctypeDeclHandler = refuse
    guard.EntityDeclHandler = refuse
    guard.ExternalEntityRefHandler = refuse
    try:
        guard.Parse(raw, True)
        return ElementTree.fromstring(raw)
    except (expat.ExpatError, ElementTree.ParseError) as error:
        raise RequestRejected(400, f"malformed XML: {error}") from error


def parse_fields(raw: bytes) -> Dict[str, str]:
    """The top-level fields of a WeChat ``<xml>`` document, parsed safely.

    Raises:
        RequestRejected: 413 for an oversized body, 400 for a DTD, entity,
            malformed XML or a root other than ``<xml>``.
    """
    if len(raw) > MAX_BODY_BYTES:
        raise RequestRejected(413, "body too large")
    if not raw.strip():
        raise RequestRejected(400, "empty body")
    root = _safe_fromstring(raw)
    if root.tag != "xml":
        raise RequestRejected(400, "root element is not <xml>")
    return {child.tag: (child.text or "") for child in root}


class WeChatProtocol:
    """Verifies and decodes WeChat callbacks; encodes passive replies.

    Plaintext mode (no ``aes_key``): the query's ``signature`` signs the
    token, timestamp and nonce. Safe mode: ``msg_signature`` also signs the
    encrypted body, which is decrypted with the EncodingAESKey; replies are
    encrypted the same way.
    """

    def __init__(
        self,
        token: str,
        app_id: str = "",
        aes_key: Optional[str] = None,
        *,
        max_clock_skew: int = MAX_CLOCK_SKEW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Creates the protocol for one Official Account.

        Args:
            token: the Token set in the Official Account's server configuration.
            app_id: the AppID (safe mode checks it inside each decrypted body).
            aes_key: the 43-character EncodingAESKey; empty means plaintext mode.
            max_clock_skew: seconds a timestamp may differ from now.
            clock: wall clock in seconds (tests pass a fake one).

        Raises:
            ValueError: a missing token or a malformed EncodingAESKey.
        """
        if not token:
            raise ValueError("the WeChat token is empty: set WECHAT_TOKEN")
        self.token = token
        self.app_id = app_id
        self.max_clock_skew = max_clock_skew
        self._clock = clock
        self.crypto: Optional[WeChatCrypto] = None
        if aes_key:
            if len(aes_key) != 43:
                raise ValueError(
                    "WECHAT_AES_KEY must be the 43-character EncodingAESKey of the "
                    "Official Account (or empty for plaintext mode)"
                )
            if not app_id:
                raise ValueError("safe mode needs the AppID: set WECHAT_APP_ID")
            try:
                self.crypto = WeChatCrypto(token, aes_key, app_id)
            except Exception as error:
                raise ValueError(f"WECHAT_AES_KEY is not a valid EncodingAESKey: {error}") from error

    @property
    def safe_mode(self) -> bool:
        """Whether bodies and replies are encrypted."""
        return self.crypto is not None

    def check_timestamp(self, timestamp: Optional[str]) -> None:
        """Refuses a missing, malformed or stale timestamp (403)."""
        try:
            value = int(timestamp or "")
        except ValueError:
            raise RequestRejected(403, "missing or malformed timestamp") from None
        if abs(self._clock() - value) > self.max_clock_skew:
            raise RequestRejected(403, "stale timestamp")

    def verify_url(self, args: Mapping[str, str]) -> str:
        """Checks a GET URL verification and returns the ``echostr`` to echo.

        Raises:
            RequestRejected: 403 for a wrong, missing or stale signature.
        """
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        self.check_timestamp(timestamp)
        if not signature_matches(sign(self.token, timestamp, nonce), args.get("signature")):
            raise RequestRejected(403, "wrong signature")
        return args.get("echostr", "")

    def decode(self, args: Mapping[str, str], body: bytes) -> BaseMessage:
        """Verifies a POSTed callback and parses its message.

        Args:
            args: the query parameters (``signature`` / ``msg_signature``,
                ``timestamp``, ``nonce``, ``encrypt_type``).
            body: the raw request body.

        Returns:
            wechatpy's message or event object.

        Raises:
            RequestRejected: 403 when the signature is wrong, missing or stale;
                400/413 when the body is malformed, unsafe or undecryptable.
        """
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        self.check_timestamp(timestamp)
        if self.crypto is None:
            if not signature_matches(sign(self.token, timestamp, nonce), args.get("signature")):
                raise RequestRejected(403, "wrong signature")
            fields = parse_fields(body)
            xml = body
        else:
            msg_signature = args.get("msg_signature")
            if not msg_signature:
                raise RequestRejected(403, "missing msg_signature (safe mode)")
            fields = parse_fields(body)
            encrypted = fields.get("Encrypt", "")
            if not encrypted:
                raise RequestRejected(403, "no signed <Encrypt> in a safe-mode body")
            if not signature_matches(sign(self.token, timestamp, nonce, encrypted), msg_signature):
                raise RequestRejected(403, "wrong msg_signature")
            try:
                plain = self.crypto.decrypt_message(
                    {"Encrypt": encrypted}, msg_signature.strip().lower(), timestamp, nonce
                )
            except Exception as error:
                raise RequestRejected(400, f"cannot decrypt: {type(error).__name__}") from error
            xml = plain.encode("utf-8")
            fields = parse_fields(xml)
        if not fields.get("MsgType") or not fields.get("FromUserName"):
            raise RequestRejected(400, "no MsgType or FromUserName")
        try:
            # Safe now: parse_fields refused any DTD, so nothing can expand.
            return parse_message(xml.decode("utf-8"))
        except Exception as error:
            raise RequestRejected(400, f"unparseable message: {type(error).__name__}") from error

    def text_reply(self, message: BaseMessage, content: str) -> str:
        """The passive text reply XML (plaintext) answering ``message``."""
        reply = TextReply(message=message, content=cdata_safe(content), time=int(self._clock()))
        return reply.render()

    def encode(self, reply_xml: str, nonce: str) -> str:
        """The reply body: ``reply_xml`` as is, or encrypted in safe mode."""
        if self.crypto is None:
            return reply_xml
        return self.crypto.encrypt_message(reply_xml, nonce or "walletbot", str(int(self._clock())))
