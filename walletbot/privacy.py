"""Masking of personal data in free text (card, ID-card and phone numbers, passwords).

Used wherever user text is kept: ticket transcripts, the agent desk, logs.
Order numbers (two letters + 12 digits) are not personal data and stay readable.
"""

from __future__ import annotations

import re

# Digits possibly grouped by spaces or dashes; no digit or letter right before
# (so order numbers like WD202611180002 never match) and no digit right after.
_DIGITS = r"(?<![0-9A-Za-z])(?:\d[ -]?){%d,%d}\d(?!\d)"
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_CARD = re.compile(_DIGITS % (12, 18))          # 13–19 digits
_PHONE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)")
# A password-like token (printable ASCII) right after 密码/口令/验证码/password.
_SECRET = re.compile(
    r"((?:支付|登录|登陆|银行卡|卡)?(?:密码|口令|验证码|校验码)|(?<![A-Za-z])(?:password|passwd|pin)(?![A-Za-z]))"
    r"(\s*(?:是|为|:|：|=)?\s*)([!-~]{3,64})",
    re.IGNORECASE,
)


def _keep_last4(match: re.Match) -> str:
    chars = re.sub(r"[^0-9Xx]", "", match.group(0))
    return "*" * (len(chars) - 4) + chars[-4:]


def _phone(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group(0))[-11:]
    return digits[:3] + "****" + digits[-4:]


def _secret(match: re.Match) -> str:
    return f"{match.group(1)}{match.group(2)}******"


def mask_pii(text: str) -> str:
    """The text with personal data masked.

    - 18-character ID-card numbers and 13–19 digit card numbers keep their
      last four digits: ``6222020200112233445`` → ``***************3445``;
    - mainland mobile numbers keep the first three and last four digits;
    - whatever follows 密码 / 验证码 / password is replaced by ``******``.

    Args:
        text: Free text typed by a user.

    Returns:
        The masked text (unchanged if there is nothing to mask).
    """
    if not text:
        return text
    text = _SECRET.sub(_secret, text)
    text = _ID_CARD.sub(_keep_last4, text)
    text = _PHONE.sub(_phone, text)
    text = _CARD.sub(_keep_last4, text)
    return text


def contains_pii(text: str) -> bool:
    """Whether :func:`mask_pii` would change the text."""
    return bool(text) and mask_pii(text) != text
