"""What a user message must pass before the bot sees it, and the fixed answers.

- personal data typed by users (card, ID-card, phone numbers, passwords) is
  masked before the message reaches NLU, the tracker store or any log, and the
  user is reminded not to send it; so are the strings of its metadata;
- empty, over-long and control-character-only messages get a clear answer;
- a message that starts with ``/`` is a payload only when the bot offered it
  (see :func:`as_text`); anything else is text like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from walletbot.privacy import mask_pii

PII_REMINDER = (
    "温馨提示：为了您的账户安全，请不要在对话中发送银行卡号、身份证号、手机号、密码或验证码，"
    "我们已自动隐藏这些信息。OK钱包的客服也不会向您索要密码或验证码。"
)
RATE_LIMITED = "您发送消息的速度有点快，请稍等片刻再发，我会继续为您服务。"
TOO_LONG = "您的消息太长了（超过{limit}字），请简要描述您的问题。"
EMPTY = "请输入您的问题，例如“怎么提现”或“帮我查一下订单”。"
FAILED = "抱歉，系统暂时出现故障，暂时无法处理您的消息，请稍后再试。给您带来不便，非常抱歉。"

MAX_MESSAGE_CHARS = 2000
MAX_METADATA_CHARS = 200
MAX_METADATA_DEPTH = 3
PAYLOAD_PREFIX = "/"
# Rasa reads a message that starts with "/" as an intent with entities and
# skips NLU. Text that only looks like a payload keeps its meaning for the
# reader but not for Rasa.
TEXT_SLASH = "／"


def mask_incoming(text: str) -> Tuple[str, bool]:
    """The text with personal data masked, and whether anything was masked."""
    masked = mask_pii(text)
    return masked, masked != text


@dataclass(frozen=True)
class Verdict:
    """What to do with an incoming message: ``text`` to process, or ``reply`` at once."""

    text: Optional[str] = None
    reply: Optional[str] = None
    masked: bool = False


def check_text(text: Any, *, max_chars: int = MAX_MESSAGE_CHARS) -> Verdict:
    """The message cleaned of control characters, or the answer to a bad one (no masking yet)."""
    if not isinstance(text, str) or not text.strip():
        return Verdict(reply=EMPTY)
    if len(text) > max_chars:
        return Verdict(reply=TOO_LONG.format(limit=max_chars))
    # Control characters other than line breaks carry nothing a user means.
    cleaned = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable()).strip()
    if not cleaned:
        return Verdict(reply=EMPTY)
    return Verdict(text=cleaned)


def as_text(cleaned: str) -> Verdict:
    """``cleaned`` as typed text: masked, and never read by Rasa as a payload."""
    if cleaned.startswith(PAYLOAD_PREFIX):
        cleaned = TEXT_SLASH + cleaned[len(PAYLOAD_PREFIX):]
    masked, changed = mask_incoming(cleaned)
    return Verdict(text=masked, masked=changed)


def mask_metadata(metadata: Any, *, depth: int = 0) -> Dict[str, Any]:
    """Client metadata with every string masked and shortened; odd values dropped."""
    if not isinstance(metadata, Mapping) or depth > MAX_METADATA_DEPTH:
        return {}
    clean: Dict[str, Any] = {}
    for key, value in list(metadata.items())[:50]:
        if not isinstance(key, str):
            continue
        key = mask_pii(key[:MAX_METADATA_CHARS])
        if isinstance(value, str):
            clean[key] = mask_pii(value[:MAX_METADATA_CHARS])
        elif isinstance(value, (bool, int, float)) or value is None:
            clean[key] = value
        elif isinstance(value, Mapping):
            clean[key] = mask_metadata(value, depth=depth + 1)
    return clean
