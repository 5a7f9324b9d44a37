"""Reading a 1–5 satisfaction score from what the user typed or clicked."""

from __future__ import annotations

import re
from typing import Optional

from walletbot.nlu.normalize import normalize_text

# Longest first: "非常不满意" must not be read as "满意".
_WORDS = [
    ("非常不满意", 1), ("很不满意", 1), ("极差", 1), ("很差", 1), ("太差", 1),
    ("不满意", 2), ("不太满意", 2),
    ("一般", 3), ("还行", 3), ("凑合", 3),
    ("非常满意", 5), ("很满意", 5), ("超级满意", 5), ("完美", 5),
    ("满意", 4), ("不错", 4), ("挺好", 4), ("好评", 5),
]
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_SCORE = re.compile(r"(?<!\d)([1-5])(?!\d)")
_CN_SCORE = re.compile(r"([一二两三四五])\s*(?:分|星|颗星)")


def parse_score(text: str, entity: Optional[str] = None) -> Optional[int]:
    """A 1–5 score from a button payload entity or typed text, else None."""
    for candidate in (entity, text):
        if candidate is None:
            continue
        candidate = normalize_text(str(candidate))
        stars = candidate.count("★")
        if 1 <= stars <= 5:
            return stars
        match = _SCORE.search(candidate)
        if match:
            return int(match.group(1))
        match = _CN_SCORE.search(candidate)
        if match:
            return _CN_DIGITS[match.group(1)]
        if candidate in _CN_DIGITS:
            return _CN_DIGITS[candidate]
        for word, score in sorted(_WORDS, key=lambda w: -len(w[0])):
            if word in candidate:
                return score
    return None
