"""Masking of personal data in free text: card, ID-card and phone numbers, passwords, codes.

Used wherever text enters or leaves the bot (user messages and their metadata,
agent replies, ticket transcripts and the webhook notification, feedback
comments, the ``walletbot review`` export). What users really type is messy,
so matching happens on a *folded view* of the text, never on the raw string:

- full-width and other Unicode digits and letters become ASCII (``１３８``,
  ``ＷＤ``), the ideographic space U+3000 and non-breaking spaces become
  spaces, every kind of dash becomes ``-`` and middle dots ``.``;
- traditional characters become simplified ones (``密碼`` → ``密码``);
- Chinese numerals (``六二二二〇…``, ``幺``, ``两``) count as digits where a
  long enough run of them could be a card or phone number.

Every folding step maps one character to one character, so an index into the
view is the same index into the original: masks are found in the view and
applied to the original text, and whatever is not masked stays exactly as
the user typed it.

Separators between digits (spaces, dots, dashes, underscores, slashes, up to
three in a row) do not hide a number: ``6222.0202.0011.2233.445`` is a card.
Because separators also sit between *different* numbers (``1000 138 1234
5678``), a run of digit groups is split into the numbers that explain most of
its digits (:func:`_best_spans`), whole groups only.

What the bot needs is never masked: order numbers (two letters + 12 digits,
any case and spacing), amounts with a currency sign or unit, and dates are
protected before anything else is looked for; four-digit "尾号" and the
masked output itself never match again (masking is idempotent).

Output shapes (relied on by tests and by agents reading transcripts):
cards and ID numbers keep their last four characters
(``***************3445``), mobile numbers keep the first three and last
four digits (``138****5678``), passwords and codes become ``******``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

from walletbot.nlu.normalize import to_simplified

SECRET_MASK = "******"

# --- the folded view ------------------------------------------------------------

# Chinese numerals as digits; 〇 and the look-alike ○ are zero, 幺 is how a
# "1" is read out in phone numbers, 两 a spoken "2"; financial numerals too.
CHINESE_DIGITS = {
    "〇": "0", "○": "0", "零": "0", "一": "1", "幺": "1", "壹": "1", "二": "2", "两": "2",
    "贰": "2", "三": "3", "叁": "3", "四": "4", "肆": "4", "五": "5", "伍": "5", "六": "6",
    "陆": "6", "七": "7", "柒": "7", "八": "8", "捌": "8", "九": "9", "玖": "9",
}
_CN = "".join(CHINESE_DIGITS)
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")
_DOTS = frozenset("\u00b7\u2022\u2219\u22c5\u30fb\uff65")
# Invisible characters (pasted from apps) count as a space between digits.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff")


@functools.lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    """One character's matching form: always exactly one character."""
    if char.isascii():
        return char
    if char in _INVISIBLE:
        return " "
    digit = unicodedata.decimal(char, None)  # full-width, Arabic-Indic, bold… digits
    if digit is not None:
        return str(digit)
    folded = unicodedata.normalize("NFKC", char)
    if len(folded) != 1:
        folded = char
    if folded in _DASHES:
        return "-"
    if folded in _DOTS:
        return "."
    if folded.isascii():
        return folded
    simplified = to_simplified(folded)
    return simplified if len(simplified) == 1 else folded


def fold(text: str) -> str:
    """The matching view of ``text``: half-width, simplified, same length.

    ``fold(text)[i]`` stands for ``text[i]`` for every ``i``, which is what
    lets masks found in the view be applied to the original.
    """
    return "".join(_fold_char(c) for c in text)


# --- patterns (all run on the folded view) -------------------------------------

_SEP = r"[ \t._/\\-]"      # what users put between digits
_GAP = _SEP + "{0,3}"
_ORDER_PREFIXES = ("TU", "WD", "TR", "RF")  # the wallet's order types (see data/nlu)

# Order numbers: unbroken two letters + 12 digits, or a known prefix with any
# spacing; an unknown prefix with spacing only when no other digits follow
# (so "is 2026 1118 1381 2345 678", a card, is not taken for an order number).
_ORDER = re.compile(
    r"(?<![A-Za-z])(?:"
    r"[A-Za-z]{2}[0-9]{12}(?![0-9])"
    rf"|(?:{'|'.join(_ORDER_PREFIXES)}){_GAP}[0-9](?:{_GAP}[0-9]){{11}}(?![0-9])"
    rf"|[A-Za-z]{{2}}{_GAP}[0-9](?:{_GAP}[0-9]){{11}}(?!{_GAP}[0-9])"
    r")",
    re.IGNORECASE,
)
# Dates with - / . between year, month and day (2026-11-18, 2026.11.18).
_DATE = re.compile(
    r"(?<![0-9])(?<![0-9][-./])(?:19|20)[0-9]{2}([-./])(?:0?[1-9]|1[0-2])\1"
    r"(?:0?[1-9]|[12][0-9]|3[01])(?![0-9])(?![-./][0-9])"
)
_NUMBER = r"[0-9]{1,10}(?:,[0-9]{3})*(?:\.[0-9]{1,2})?"
# Amounts: a currency sign before or a unit after (¥500, 1,000.00元, 200块).
# Next to other digit groups ("6222 … 445元") a unit alone does not make an
# amount of the last group: the run is read as a whole (see _best_spans).
_CURRENCY = rf"(?:[¥$]|RMB|CNY)[ \t]?{_NUMBER}(?![0-9])"
_UNIT = rf"{_NUMBER}[ \t]?(?:元|块|圆|RMB|CNY)"
_AMOUNT = re.compile(rf"{_CURRENCY}|(?<![0-9.,])(?<![0-9]{_SEP}){_UNIT}", re.IGNORECASE)
# After a password or code keyword the secret ends where any amount starts.
_LOOSE_AMOUNT = re.compile(rf"{_CURRENCY}|(?<![0-9.,]){_UNIT}", re.IGNORECASE)

# What may stand between a keyword and the secret: 是/为/就是/改成了/：/:/=/is/nothing.
_CONNECT = (
    r"[ \t]*(?:(?:就|也|还|都|应该|改|设|设置|修改|重置|换)?(?:是|为|成)了?[ \t]*:?"
    r"|is(?![a-z'])[ \t]*:?|[:=])?[ \t]*[\"'“‘「『(\[<]?"
)
_PASSWORD_KEY_CN = r"(?:密[ \t]?码|口令)"
_PASSWORD_KEY_EN = (
    r"(?<![a-z0-9_])(?:password|passwd|passcode|pwd|pin(?:[ \t]?(?:number|code))?)"
    r"(?![a-z0-9_])[ \t]?码?"
)
_CODE_KEY = r"(?:验证码|短信码|动态码|校验码|确认码|安全码)"
_CODE_KEY_EN = r"(?<![a-z0-9_])(?:code|otp)(?![a-z0-9_])"
_CN_KEYS = re.compile(rf"({_PASSWORD_KEY_CN}|{_CODE_KEY})({_CONNECT})", re.IGNORECASE)
_EN_KEYS = re.compile(rf"({_PASSWORD_KEY_EN})({_CONNECT})", re.IGNORECASE)
_DIGITS_ONLY_KEYS = re.compile(rf"({_CODE_KEY_EN})({_CONNECT})", re.IGNORECASE)
# A number right before one of these is a quantity (6-20位, 60秒, 3次), not a secret.
_COUNTERS = frozenset("位个次遍条天分秒小元块岁号月年日倍%")
_D = f"[0-9{_CN}]"
_SPACED_DIGITS = re.compile(rf"{_D}(?:{_GAP}{_D}){{3,11}}")
_CODE_DIGITS = re.compile(rf"{_D}(?:{_GAP}{_D}){{3,7}}(?!{_GAP}{_D})")
_ASCII_TOKEN = re.compile(r"[!-~]{3,64}")

# A run of digit groups: digits with up to three separators between them,
# and perhaps the X of an ID number at the end.
_RUN = re.compile(rf"[0-9](?:{_GAP}[0-9])*(?:{_GAP}[Xx](?![A-Za-z]))?")
_GROUP = re.compile(r"[0-9]+[Xx]?|[Xx]")
_CN_RUN = re.compile(rf"[0-9{_CN}](?:{_GAP}[0-9{_CN}])*")
_BLOCKED = "\x00"  # stands in the digit view for protected or already masked characters


@dataclass(frozen=True)
class Mask:
    """``text[start:end]`` is to be replaced by ``replacement``."""

    start: int
    end: int
    replacement: str


def protected_spans(view: str) -> List[Tuple[int, int]]:
    """Order numbers, dates and amounts in the view: never masked, never part of a number."""
    spans = [m.span() for pattern in (_ORDER, _DATE, _AMOUNT) for m in pattern.finditer(view)]
    return sorted(spans)


def _overlaps(start: int, end: int, spans: Sequence[Tuple[int, int]]) -> Optional[int]:
    """The start of the first protected span inside ``[start, end)`` (None if none)."""
    firsts = [max(s, start) for s, e in spans if s < end and e > start]
    return min(firsts) if firsts else None


# --- passwords and codes -------------------------------------------------------


def _secret_end(view: str, text: str, start: int, digits_only: bool) -> int:
    """Where the secret that starts at ``start`` ends (``start`` if there is none)."""
    candidates = [_CODE_DIGITS.match(view, start)] if digits_only else [
        _SPACED_DIGITS.match(view, start), _ASCII_TOKEN.match(view, start)]
    end = max((m.end() for m in candidates if m), default=start)
    # Full-width punctuation right after the secret (，。！) is the sentence's, not the secret's.
    while end > start and not text[end - 1].isascii() and not view[end - 1].isalnum():
        end -= 1
    return end


def _keyword_matches(view: str) -> Iterator[Tuple[re.Match, bool, bool]]:
    """``(match, digits only, English)`` for every password or code keyword in the view."""
    for pattern, digits_only, english in ((_CN_KEYS, False, False), (_EN_KEYS, False, True),
                                          (_DIGITS_ONLY_KEYS, True, True)):
        for match in pattern.finditer(view):
            yield match, digits_only, english


def _secret_masks(view: str, text: str, protected: Sequence[Tuple[int, int]]) -> List[Mask]:
    """The secrets after 密码/口令/PIN/password and 验证码/code, as ``******``.

    The keyword and what joins it to the secret stay, so the reader still
    knows what was there: ``支付密码是******``. After an English keyword
    with nothing between ("password reset", "pin isn't accepted"), only a
    token with a digit is taken for a secret: English words follow such
    keywords all the time.
    """
    masks: List[Mask] = []
    stops = sorted(protected + [m.span() for m in _LOOSE_AMOUNT.finditer(view)])
    for match, digits_only, english in _keyword_matches(view):
        start = match.end()
        end = _secret_end(view, text, start, digits_only)
        blocked = _overlaps(start, end, stops)
        if blocked is not None:  # an order number or an amount is not the secret
            end = blocked
            while end > start and re.match(_SEP, view[end - 1]):
                end -= 1
        elif end < len(view) and view[end] in _COUNTERS:
            continue
        if end - start < 3 or any(m.start < end and start < m.end for m in masks):
            continue
        if english and not match.group(2).strip() and not re.search(r"[0-9]", view[start:end]):
            continue
        masks.append(Mask(start, end, SECRET_MASK))
    return masks


# --- card, ID-card and phone numbers --------------------------------------------


def _with_chinese_digits(view: List[str]) -> None:
    """Reads runs of Chinese numerals long enough to be a phone or card number as digits.

    Needs 11 digits and at least three Chinese numerals, so that ordinary
    words next to a number (第一, 一下) are left alone.
    """
    joined = "".join(view)
    for match in _CN_RUN.finditer(joined):
        chars = match.group(0)
        digits = sum(1 for c in chars if c.isdigit() or c in CHINESE_DIGITS)
        if digits >= 11 and sum(1 for c in chars if c in CHINESE_DIGITS) >= 3:
            for i in range(match.start(), match.end()):
                view[i] = CHINESE_DIGITS.get(view[i], view[i])


def _is_mobile(digits: str) -> bool:
    return len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789"


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _plausible_date(date: str) -> bool:
    """``YYMMDD`` or ``YYYYMMDD`` with a real month and day."""
    month, day = int(date[-4:-2]), int(date[-2:])
    return 1 <= month <= 12 and 1 <= day <= 31


def _plausible_id(digits: str) -> bool:
    """Region code and birth date of a 15- or 18-character ID number look right."""
    if digits[0] not in "12345678":
        return False
    if len(digits) == 15:
        return _plausible_date(digits[6:12])
    return len(digits) == 18 and digits[6:8] in ("19", "20") and _plausible_date(digits[6:14])


@dataclass(frozen=True)
class _Number:
    kind: str  # "phone" or "last4"
    score: int  # plausibility, to choose between readings covering as many digits
    skip: int = 0  # leading digits that are a country code, left as typed


def _classify(digits: str, merged: bool) -> Optional[_Number]:
    """What a span of digit groups is, if personal data.

    One unbroken group is read generously (13–19 digits are a card, longer
    ones several numbers typed together); a span joined across separators
    only as a mobile number, a 16–19 digit card or a plausible ID number,
    because separators also sit between unrelated numbers.
    """
    upper = digits.upper()
    if "X" in upper[:-1]:
        return None
    if upper.endswith("X"):
        return _Number("last4", 2) if len(digits) == 18 else None
    if _is_mobile(digits):
        return _Number("phone", 3)
    for prefix in ("86", "0086"):  # +86 138…, 0086-138…, +86138 1234 5678
        if digits.startswith(prefix) and _is_mobile(digits[len(prefix):]):
            return _Number("phone", 3, skip=len(prefix))
    n = len(digits)
    if not merged:
        return _Number("last4", 1) if n >= 13 else None
    if 16 <= n <= 19:
        return _Number("last4", (2 if _luhn(digits) or _plausible_id(digits) else 0)
                       + (1 if digits[0] in "3456" else 0))
    if n == 15 and _plausible_id(digits):
        return _Number("last4", 1)
    return None


Group = Tuple[int, int, str]  # start, end in the text, its digits
Score = Tuple[int, int, int]  # digits covered, plausibility, minus the number of masks


def _best_spans(groups: Sequence[Group]) -> List[Tuple[int, int, _Number]]:
    """The readings of a run of digit groups that cover the most digits.

    Dynamic programming over the groups: each group is left alone or starts a
    span of whole groups read by :func:`_classify`; ties go to the more
    plausible reading (a card passing Luhn, a real birth date), then to
    fewer masks.
    """
    count = len(groups)
    best: List[Tuple[Score, List[Tuple[int, int, _Number]]]] = [((0, 0, 0), [])] * (count + 1)
    for i in range(count - 1, -1, -1):
        choice = best[i + 1]
        digits = ""
        for j in range(i, count):
            digits += groups[j][2]
            if j > i and len(digits) > 19:
                break
            number = _classify(digits, merged=j > i)
            if number is None:
                continue
            rest_score, rest = best[j + 1]
            score = (rest_score[0] + len(digits), rest_score[1] + number.score, rest_score[2] - 1)
            if score > choice[0]:
                choice = (score, [(i, j, number)] + rest)
        best[i] = choice
    return best[0][1]


def _render(digits: str, number: _Number) -> str:
    if number.kind == "phone":
        phone = digits[number.skip:]
        return digits[:number.skip] + phone[:3] + "****" + phone[-4:]
    return "*" * (len(digits) - 4) + digits[-4:]


def _number_masks(view: List[str]) -> List[Mask]:
    """Card, ID-card and mobile numbers in the digit view, in any spacing."""
    _with_chinese_digits(view)
    joined = "".join(view)
    masks: List[Mask] = []
    for run in _RUN.finditer(joined):
        groups = [(run.start() + g.start(), run.start() + g.end(), g.group(0))
                  for g in _GROUP.finditer(run.group(0))]
        for i, j, number in _best_spans(groups):
            digits = "".join(g[2] for g in groups[i:j + 1])
            # A country code (+86, 0086) stays as typed: masking starts at the mobile number.
            positions = [k for g in groups[i:j + 1] for k in range(g[0], g[1])]
            start = positions[number.skip]
            masks.append(Mask(start, groups[j][1], _render(digits, number)[number.skip:]))
    return masks


# --- the public API ---------------------------------------------------------------


def find_masks(text: str) -> List[Mask]:
    """Everything to mask in ``text``, as non-overlapping spans of the original, in order."""
    view = fold(text)
    protected = protected_spans(view)
    secrets = _secret_masks(view, text, protected)
    digit_view = list(view)
    for start, end in protected + [(m.start, m.end) for m in secrets]:
        digit_view[start:end] = _BLOCKED * (end - start)
    return sorted(secrets + _number_masks(digit_view), key=lambda m: m.start)


def apply_masks(text: str, masks: Sequence[Mask]) -> str:
    """``text`` with each span replaced; everything between is the original."""
    out, at = [], 0
    for mask in masks:
        out += [text[at:mask.start], mask.replacement]
        at = mask.end
    out.append(text[at:])
    return "".join(out)


def mask_pii(text: str) -> str:
    """The text with personal data masked.

    - card numbers (13–19 digits unbroken, 16–19 across separators) and ID
      numbers (15 or 18 characters, final X) keep their last four:
      ``6222 0202 0011 2233 445`` → ``***************3445``;
    - mainland mobile numbers (+86/0086 left as typed) keep the first three
      and last four digits: ``138****5678``;
    - what follows 密码/口令/PIN/password or 验证码/短信码/动态码/校验码/code
      (after 是/为/就是/：/: or nothing) is replaced by ``******``;
    - full-width, traditional, spaced, dotted, dashed and Chinese-numeral
      forms of all of these are recognised (see the module docstring);
    - order numbers, amounts and dates stay as typed.

    Args:
        text: Free text typed by a user or an agent.

    Returns:
        The masked text (the very same string if there is nothing to mask).
    """
    if not text:
        return text
    masks = find_masks(text)
    return apply_masks(text, masks) if masks else text


def contains_pii(text: str) -> bool:
    """Whether :func:`mask_pii` would change the text."""
    return bool(text) and mask_pii(text) != text
