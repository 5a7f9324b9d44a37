"""Tells text that says nothing (``sdfghjkl``, ``哈哈哈哈``, ``？？？``) from text that does.

A linear model spreads its probability over the labels it knows, whatever the
input; keyboard mashing and bare interjections must instead reach the
two-stage fallback. The checks are deliberately narrow:

- nothing but punctuation, symbols or emoji;
- Latin letters only, and no letter group is a word seen in training or a
  run of valid pinyin syllables (``qazwsx`` is neither; ``tixian`` and
  ``refund`` are);
- nothing but interjections and particles (啊、哈、嗯、哦、的 …) whose
  squeezed form (``嗯嗯嗯`` -> ``嗯``) was never a training message, so
  ``嗯嗯`` stays an answer when the training data says so.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import FrozenSet, Iterable, Optional

_LETTER_GROUP = re.compile(r"[a-z]+")
_HAN = re.compile(r"[\u3400-\u9fff]")
_DIGIT = re.compile(r"[0-9]")
INTERJECTIONS = frozenset("啊阿哈呵嘿嗯恩哦噢喔呃额唉哎诶欸嗨吖呀哇的了吗嘛呢吧")
# English words common enough that a message made of them is a sentence, even
# when the training data happens not to contain them.
COMMON_ENGLISH = frozenset(
    "i me my you your we it is are am was be do does did can could will would should "
    "how what why when where who which the a an to of in on for with from at by and or "
    "not no yes ok okay please help hi hello hey thanks thank bye".split()
)


@functools.lru_cache(maxsize=1)
def pinyin_syllables() -> FrozenSet[str]:
    """Every toneless pinyin syllable pypinyin knows (about 420)."""
    from pypinyin.contrib.tone_convert import to_normal
    from pypinyin.pinyin_dict import pinyin_dict

    syllables = set()
    for readings in pinyin_dict.values():
        for reading in readings.split(","):
            syllables.add(to_normal(reading))
    return frozenset(s for s in syllables if s.isascii() and s.isalpha())


def is_pinyin(group: str) -> bool:
    """Whether ``group`` splits into valid pinyin syllables (``chongzhi``)."""
    syllables = pinyin_syllables()
    reachable = [True] + [False] * len(group)
    for end in range(1, len(group) + 1):
        for start in range(max(0, end - 6), end):
            if reachable[start] and group[start:end] in syllables:
                reachable[end] = True
                break
    return reachable[-1]


def squeeze(text: str) -> str:
    """Runs of one repeated character folded to one character."""
    return re.sub(r"(.)\1+", r"\1", text)


def _mashed_digits(digits: str) -> bool:
    """``000000``, ``8888888``, ``1234567``: five or more digits typed as a pattern."""
    if len(digits) < 5:
        return False
    steps = {(int(b) - int(a)) % 10 for a, b in zip(digits, digits[1:])}
    return steps in ({0}, {1}, {9})


def _symbols_key(text: str) -> str:
    return squeeze("".join(c for c in text if not c.isspace()))


def _meaningful(char: str) -> bool:
    return unicodedata.category(char)[0] in "LN"


class UnclearText:
    """Decides whether a (normalised) message carries no request at all."""

    def __init__(self, known_words: Iterable[str], known_messages: Iterable[str]) -> None:
        self.known_words = frozenset(known_words) | COMMON_ENGLISH
        self.known_messages = frozenset(known_messages)

    @classmethod
    def from_training(cls, texts: Iterable[str]) -> "UnclearText":
        """Latin words and squeezed messages of the training data."""
        words, messages = set(), set()
        for text in texts:
            lowered = text.lower()
            words.update(_LETTER_GROUP.findall(lowered))
            messages.add(squeeze("".join(c for c in lowered if _meaningful(c))))
            messages.add(_symbols_key(lowered))
        return cls(words, messages)

    def reason(self, text: str) -> Optional[str]:
        """Why ``text`` says nothing, or ``None`` when it may say something."""
        content = "".join(c for c in text.lower() if _meaningful(c))
        if not content:
            if _symbols_key(text.lower()) in self.known_messages:
                return None  # "★★★★★" when the training data rates with stars
            return "no letters or digits"
        if _HAN.search(content):
            if set(content) <= INTERJECTIONS and squeeze(content) not in self.known_messages:
                return "only interjections"
            return None
        if content.isdigit() and _mashed_digits(content):
            return "repeated or consecutive digits"
        if _DIGIT.search(content):
            # Digits may be an amount or an order number: the classifier decides.
            return None
        groups = _LETTER_GROUP.findall(text.lower())
        if groups and not any(g in self.known_words or is_pinyin(g) for g in groups):
            return "no known word and no pinyin"
        return None
