"""Signature checks, timestamps, safe XML and safe-mode crypto, without HTTP."""

import time

import pytest
from wechatpy.crypto import WeChatCrypto

from walletbot.channels.wechat import protocol as wechat_protocol
from walletbot.channels.wechat.protocol import (
    RequestRejected,
    WeChatProtocol,
    _stdlib_guarded_fromstring,
    parse_fields,
    signature_matches,
)

from .doubles import AES_KEY, APP_ID, TOKEN, sign, text_xml, xml_fields

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<xml><ToUserName>a</ToUserName><FromUserName>o1</FromUserName><MsgType>text</MsgType>
<Content>&lol4;</Content><MsgId>1</MsgId><CreateTime>1</CreateTime></xml>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>a</ToUserName><FromUserName>o1</FromUserName><MsgType>text</MsgType>
<Content>&xxe;</Content><MsgId>1</MsgId><CreateTime>1</CreateTime></xml>"""
MALFORMED = b"<xml><ToUserName>a</ToUserName><MsgType>text</MsgType"


def plain_args(timestamp=None, nonce="n1"):
    ts = str(timestamp if timestamp is not None else int(time.time()))
    return {"signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce}


def test_signature_comparison_is_exact():
    good = sign(TOKEN, "1", "2")
    assert signature_matches(good, good)
    assert signature_matches(good, good.upper())  # hex case does not matter
    assert not signature_matches(good, good[:-1] + ("0" if good[-1] != "0" else "1"))
    assert not signature_matches(good, "")
    assert not signature_matches(good, None)
    assert not signature_matches(good, "签名")


def test_url_verification():
    protocol = WeChatProtocol(TOKEN)
    assert protocol.verify_url({**plain_args(), "echostr": "e123"}) == "e123"
    with pytest.raises(RequestRejected) as rejected:
        protocol.verify_url({**plain_args(), "signature": "0" * 40, "echostr": "e"})
    assert rejected.value.status == 403


@pytest.mark.parametrize("timestamp", ["", "abc", -301, 400])
def test_stale_or_missing_timestamps_are_refused(timestamp):
    if isinstance(timestamp, int):  # relative to now, computed when the test runs
        timestamp = str(int(time.time()) + timestamp)
    protocol = WeChatProtocol(TOKEN)
    args = {"signature": sign(TOKEN, timestamp, "n"), "timestamp": timestamp, "nonce": "n"}
    with pytest.raises(RequestRejected) as rejected:
        protocol.decode(args, text_xml("o1", "hi", 1).encode())
    assert rejected.value.status == 403


def test_plaintext_message_is_decoded():
    message = WeChatProtocol(TOKEN).decode(plain_args(), text_xml("o_user", "怎么提现", 42).encode())
    assert (message.type, message.source, message.content, message.id) == ("text", "o_user", "怎么提现", 42)


def test_wrong_token_is_refused():
    args = plain_args()
    with pytest.raises(RequestRejected) as rejected:
        WeChatProtocol("another-token").decode(args, text_xml("o1", "hi", 1).encode())
    assert rejected.value.status == 403


@pytest.mark.parametrize("body", [BOMB, XXE, MALFORMED, b"", b"<notxml/>", b"<xml><MsgType>text</MsgType></xml>"])
def test_unsafe_or_malformed_bodies_are_refused(body):
    with pytest.raises(RequestRejected) as rejected:
        WeChatProtocol(TOKEN).decode(plain_args(), body)
    assert rejected.value.status == 400


def test_oversized_bodies_are_refused():
    body = text_xml("o1", "长" * 30000, 1).encode()
    with pytest.raises(RequestRejected) as rejected:
        parse_fields(body)
    assert rejected.value.status == 413


@pytest.mark.parametrize("body", [BOMB, XXE, MALFORMED])
def test_stdlib_guard_refuses_what_defusedxml_refuses(body):
    # The fallback used when defusedxml is not installed.
    with pytest.raises(RequestRejected) as rejected:
        _stdlib_guarded_fromstring(body)
    assert rejected.value.status == 400


def test_stdlib_guard_parses_plain_messages():
    root = _stdlib_guarded_fromstring(text_xml("o1", "你好 & <b>", 7).encode())
    assert {c.tag: c.text for c in root}["Content"] == "你好 & <b>"


def test_safe_parser_parses_plain_documents():
    # defusedxml when installed, else the stdlib guard.
    assert wechat_protocol._safe_fromstring(b"<xml><A>1</A></xml>").find("A").text == "1"


def test_safe_mode_round_trip():
    protocol = WeChatProtocol(TOKEN, APP_ID, AES_KEY)
    wechat = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    ts, nonce = str(int(time.time())), "abc"
    encrypted = xml_fields(wechat.encrypt_message(text_xml("o_safe", "安全模式", 9), nonce, ts))
    body = f"<xml><ToUserName>gh</ToUserName><Encrypt>{encrypted['Encrypt']}</Encrypt></xml>".encode()
    args = {"timestamp": ts, "nonce": nonce, "encrypt_type": "aes", "msg_signature": encrypted["MsgSignature"]}
    message = protocol.decode(args, body)
    assert (message.source, message.content) == ("o_safe", "安全模式")

    reply = protocol.encode(protocol.text_reply(message, "收到]]>了"), nonce)
    outer = xml_fields(reply)
    plain = wechat.decrypt_message(reply, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"])
    fields = xml_fields(plain)
    assert fields["Content"] == "收到]]>了"
    assert (fields["ToUserName"], fields["MsgType"]) == ("o_safe", "text")

    # The body is signed: a changed ciphertext or a missing msg_signature is refused.
    with pytest.raises(RequestRejected) as rejected:
        protocol.decode({**args, "msg_signature": sign(TOKEN, ts, nonce)}, body)
    assert rejected.value.status == 403
    with pytest.raises(RequestRejected) as rejected:
        protocol.decode({k: v for k, v in args.items() if k != "msg_signature"}, body)
    assert rejected.value.status == 403
    # A plaintext body with a valid plaintext signature is not accepted in safe mode.
    with pytest.raises(RequestRejected):
        protocol.decode(plain_args(), text_xml("o1", "hi", 1).encode())


def test_safe_mode_refuses_another_apps_ciphertext():
    other = WeChatCrypto(TOKEN, AES_KEY, "wx_other_app")
    ts, nonce = str(int(time.time())), "n"
    encrypted = xml_fields(other.encrypt_message(text_xml("o1", "hi", 1), nonce, ts))
    body = f"<xml><Encrypt>{encrypted['Encrypt']}</Encrypt></xml>".encode()
    args = {"timestamp": ts, "nonce": nonce, "msg_signature": encrypted["MsgSignature"]}
    with pytest.raises(RequestRejected) as rejected:
        WeChatProtocol(TOKEN, APP_ID, AES_KEY).decode(args, body)
    assert rejected.value.status == 400


@pytest.mark.parametrize("kwargs, needle", [
    ({"token": ""}, "WECHAT_TOKEN"),
    ({"token": TOKEN, "app_id": APP_ID, "aes_key": "short"}, "43-character"),
    ({"token": TOKEN, "app_id": "", "aes_key": AES_KEY}, "WECHAT_APP_ID"),
])
def test_configuration_errors_say_what_to_set(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        WeChatProtocol(**kwargs)
