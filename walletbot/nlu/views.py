"""Text views the intent classifier learns from.

A view turns a (normalised) message into a string whose character n-grams are
the features of one block of the linear model:

- ``chars``: the text itself, lower-cased. It carries Chinese words, English
  words and digits as typed.
- ``pinyin``: the toneless pinyin of every Chinese character, followed by any
  Latin letters, with spaces, digits and punctuation removed. Homophone typos
  from pinyin input methods (充植 / 充值 -> ``chongzhi``) and pinyin typed
  without characters (``chong zhi``, ``chong2zhi2``) meet the training
  examples here.

Views are pure functions of the text, so training and live messages see the
same features.
"""

from __future__ import annotations

import functools
import re
from typing import Callable, Dict

_NOT_A_LETTER = re.compile(r"[^a-z]+")
_HAN = re.compile(r"[\u3400-\u9fff]")


def chars_view(text: str) -> str:
    """The text, lower-cased, with runs of white space folded to one space."""
    return " ".join(text.lower().split())


@functools.lru_cache(maxsize=1)
def _pinyin() -> Callable[..., list]:
    from pypinyin import Style, lazy_pinyin

    return functools.partial(lazy_pinyin, style=Style.NORMAL, errors="default", v_to_u=False)


def pinyin_view(text: str) -> str:
    """Toneless pinyin of the Chinese characters plus Latin letters, no separators.

    ``充植方式`` and ``chongzhi fangshi`` both give ``chongzhifangshi``.
    """
    lowered = text.lower()
    if _HAN.search(lowered):
        lowered = "".join(_pinyin()(lowered))
    return _NOT_A_LETTER.sub("", lowered)


VIEWS: Dict[str, Callable[[str], str]] = {
    "chars": chars_view,
    "pinyin": pinyin_view,
}
