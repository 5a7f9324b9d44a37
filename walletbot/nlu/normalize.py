"""Length-preserving normalisation of Chinese user text.

Every function here maps a text to one of exactly the same length, character by
character. Rasa stores entity annotations as character offsets into the original
text, so a normaliser that changed the length would silently corrupt them.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Callable, Optional

# Ideographic space and other wide punctuation that NFKC maps to ASCII.
_KEEP_AS_IS = frozenset("，。！？；：、“”‘’（）《》【】")


@functools.lru_cache(maxsize=None)
def _char_to_halfwidth(char: str) -> str:
    if char in _KEEP_AS_IS:
        # Chinese punctuation carries meaning for jieba; keep it.
        return char
    folded = unicodedata.normalize("NFKC", char)
    return folded if len(folded) == 1 else char


@functools.lru_cache(maxsize=1)
def _opencc_t2s() -> Optional[Callable[[str], str]]:
    try:
        import opencc
    except ImportError:  # pragma: no cover - opencc is a pinned dependency
        return None
    return opencc.OpenCC("t2s").convert


def to_halfwidth(text: str) -> str:
    """Folds full-width letters, digits and symbols (ＷＤ２０２６) to ASCII."""
    return "".join(_char_to_halfwidth(c) for c in text)


def to_simplified(text: str) -> str:
    """Converts traditional characters to simplified ones, keeping the length."""
    convert = _opencc_t2s()
    if convert is None or text.isascii():
        return text
    converted = convert(text)
    if len(converted) == len(text):
        return converted
    # OpenCC's phrase tables occasionally change length; fall back to single
    # characters, which always map one-to-one.
    return "".join(c if len(s := convert(c)) != 1 else s for c in text)


def normalize_text(text: str) -> str:
    """Half-width and simplified form of ``text``, with the same length."""
    return to_simplified(to_halfwidth(text))
