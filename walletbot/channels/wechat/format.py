"""Turning the bot's messages into WeChat text, and the channel's fixed wording.

WeChat shows plain text only (no buttons in a passive reply or a customer
service text message), so buttons become numbered options and a later reply
that is just that number is mapped back to the button's payload. Long texts
are split at WeChat's size limit, on line boundaries where possible.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence

# WeChat's limit for one text message (passive reply and customer-service
# text): 2048 bytes of UTF-8.
MAX_TEXT_BYTES = 2048

WELCOME_TEXT = (
    "您好，欢迎关注 OK钱包！我是智能客服，可以帮您：\n"
    "· 解答注册、充值、提现、账户安全等常见问题\n"
    "· 查询您自己的充值、提现、转账、退款订单（可直接发送订单号，如 WD202611180002）\n"
    "· 在账户被盗或异常时协助冻结账户\n"
    "· 需要时为您转接人工客服（回复“转人工”）\n"
    "请直接输入您的问题，例如“提现一般几天到账”。"
)
UNSUPPORTED_TEXT = (
    "抱歉，我目前只能看懂文字消息，暂时无法识别图片、语音、视频、位置等内容。"
    "请用文字描述您的问题，我会尽力为您解答。"
)
BUTTON_HINT = "（回复对应数字即可选择）"

_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
_CHOICE = re.compile(r"^(\d{1,2})[.、。]?$")


@dataclass
class FormattedTurn:
    """The bot's messages of one turn as WeChat text.

    Attributes:
        texts: one text per bot message, buttons rendered as numbered options.
        choices: payloads of the numbered options, option ``n`` at index ``n-1``.
    """

    texts: List[str] = field(default_factory=list)
    choices: List[str] = field(default_factory=list)

    def chunks(self, limit: int = MAX_TEXT_BYTES) -> List[str]:
        """All texts joined by blank lines, split into WeChat-sized messages."""
        joined = "\n\n".join(t for t in self.texts if t.strip())
        return split_text(joined, limit) if joined.strip() else []


def utf8_len(text: str) -> int:
    """Length of ``text`` in UTF-8 bytes, the unit of WeChat's limits."""
    return len(text.encode("utf-8"))


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> List[str]:
    """Splits ``text`` into parts of at most ``limit`` UTF-8 bytes.

    Parts end at line breaks where possible; a single line longer than the
    limit is cut between characters (never inside a character).

    Args:
        text: the text to send.
        limit: maximum size of one part in UTF-8 bytes.

    Returns:
        The parts, without leading or trailing blank lines; empty for blank text.
    """
    if limit < 4:
        raise ValueError("limit must allow at least one UTF-8 character")
    parts: List[str] = []
    current = ""
    for line in text.strip().split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if utf8_len(candidate) <= limit:
            current = candidate
            continue
        if current.strip():
            parts.append(current.strip("\n"))
        current = ""
        while utf8_len(line) > limit:
            head = _cut(line, limit)
            parts.append(head)
            line = line[len(head):]
        current = line
    if current.strip():
        parts.append(current.strip("\n"))
    return parts


def _cut(line: str, limit: int) -> str:
    """The longest prefix of ``line`` within ``limit`` bytes."""
    size = 0
    for index, char in enumerate(line):
        size += utf8_len(char)
        if size > limit:
            return line[:index]
    return line


def render_buttons(
    text: Optional[str], buttons: Sequence[Dict[str, Any]], start: int = 1
) -> str:
    """A text with the buttons as numbered options ("1. 转人工").

    Args:
        text: the message text shown above the options (may be empty).
        buttons: Rasa buttons (``title``, ``payload``, optionally ``url``).
        start: the number of the first option.

    Returns:
        The message text, the numbered options and a hint how to choose.
    """
    lines = [text.strip()] if text and text.strip() else []
    for number, button in enumerate(buttons, start=start):
        title = str(button.get("title") or button.get("payload") or "").strip()
        url = button.get("url")
        lines.append(f"{number}. {title}：{url}" if url else f"{number}. {title}")
    if buttons:
        lines.append(BUTTON_HINT)
    return "\n".join(lines)


def button_payload(button: Dict[str, Any]) -> str:
    """What choosing ``button`` sends to the bot: its payload, else its title."""
    return str(button.get("payload") or button.get("title") or "")


def format_turn(messages: Iterable[Dict[str, Any]]) -> FormattedTurn:
    """Renders a turn's bot messages (as Rasa's ``CollectingOutputChannel`` keeps them).

    Options are numbered across the whole turn, so a digit always means one
    option. Images and attachments become links; a custom payload is shown
    only through its ``text`` field.
    """
    turn = FormattedTurn()
    for message in messages:
        parts: List[str] = []
        buttons = message.get("buttons") or message.get("quick_replies") or []
        text = message.get("text") or ""
        if buttons:
            parts.append(render_buttons(text, buttons, start=len(turn.choices) + 1))
            turn.choices.extend(button_payload(b) for b in buttons)
        elif text.strip():
            parts.append(text.strip())
        if message.get("image"):
            parts.append(image_text(str(message["image"])))
        if message.get("attachment"):
            parts.append(attachment_text(message["attachment"]))
        custom = message.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get("text"), str):
            parts.append(custom["text"].strip())
        text_out = "\n".join(p for p in parts if p)
        if text_out:
            turn.texts.append(text_out)
    return turn


def image_text(url: str) -> str:
    """An image as a text link."""
    return f"图片：{url}"


def attachment_text(attachment: Any) -> str:
    """An attachment as text (a link where it has one)."""
    if isinstance(attachment, dict):
        url = attachment.get("url") or (attachment.get("payload") or {}).get("src")
        if url:
            return f"附件：{url}"
        return f"附件：{json.dumps(attachment, ensure_ascii=False)}"
    return f"附件：{attachment}"


def choice_payload(text: str, choices: Sequence[str]) -> Optional[str]:
    """The payload of the option ``text`` picks ("2", "２", "2."), if any."""
    match = _CHOICE.match(text.strip().translate(_FULLWIDTH_DIGITS))
    if not match:
        return None
    number = int(match.group(1))
    if 1 <= number <= len(choices) and choices[number - 1]:
        return choices[number - 1]
    return None


def cdata_safe(text: str) -> str:
    """``text`` safe inside wechatpy's ``<![CDATA[...]]>`` (no early ``]]>``)."""
    return text.replace("]]>", "]]]]><![CDATA[>")
