"""Rule-based extraction of order numbers, transaction types and amounts.

These three entities have a fixed shape (an order number is a prefix and 12
digits; a type is one of a closed set of words; an amount is a number with a
currency marker), so rules are more reliable than a statistical tagger trained
on a few hundred lines. A bare number is an amount only where the context says
so: right after a transaction word (``提现了3000``), after the word for amount,
or as a standalone Chinese numeral in hundreds or more (``两千五``). The rules run on a spaCy ``Doc`` built by a blank
Chinese pipeline with the jieba segmenter: spaCy's ``Matcher`` and
``PhraseMatcher`` give token-aware matching (``提现`` does not match inside an
unrelated word), and spans give character offsets for Rasa.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional

from walletbot.nlu import vocab
from walletbot.nlu.normalize import normalize_text

_ORDER_ID_RE = re.compile(rf"^{vocab.ORDER_ID_PATTERN}$")
_ORDER_START_RE = re.compile(r"(?i)^(?:tu|wd|tr|rf)\d*$")
_DIGITS_RE = re.compile(r"^\d+$")
_CN_NUMERAL_RE = re.compile(r"^[零〇一二两三四五六七八九十百千万亿点]+$")
_ARABIC_NUMBER_RE = re.compile(r"^\d+(?:[.,]\d+)*(?:\.\d+)?$")
# jieba's HMM sometimes glues the currency word to what follows ("元到");
# this catches a number + currency word whatever the segmentation.
_AMOUNT_IN_TEXT_RE = re.compile(r"(?<![A-Za-z\d.])[¥￥]?\d+(?:\.\d+)?\s*(?:元|块钱|块)")
# "两千五", "三百": a Chinese numeral with a magnitude, standing on its own
# (jieba splits it unpredictably: "两 / 千五"), not followed by a unit.
_CN_AMOUNT_IN_TEXT_RE = re.compile(
    r"(?<![零〇一二两三四五六七八九十百千万亿点\d第])"
    r"[一二两三四五六七八九十]+[百千万][零〇一二两三四五六七八九十百千万]*"
    r"(?=$|[\s，。,.!！?？；;、的吧啊呢哈嘛])"
)


@dataclass(frozen=True)
class EntityMatch:
    """One extracted entity, with offsets into the original text."""

    entity: str
    value: str
    start: int
    end: int
    text: str

    def as_rasa(self) -> Dict[str, Any]:
        """The entity as the dict Rasa puts into ``message.entities``."""
        return {
            "entity": self.entity,
            "value": self.value,
            "start": self.start,
            "end": self.end,
            "confidence_entity": 1.0,
        }


def normalize_order_id(raw: str) -> Optional[str]:
    """Canonical order number (``WD202611180002``), or None if ``raw`` is not one.

    Accepts any case, spaces, hyphens and full-width characters.
    """
    compact = re.sub(r"[\s\-_]", "", normalize_text(raw)).upper()
    return compact if _ORDER_ID_RE.match(compact) else None


def parse_amount(raw: str) -> Optional[str]:
    """Numeric string for an amount (``五百块`` -> ``500``, ``¥1,000`` -> ``1000``)."""
    text = raw.strip()
    for marker in sorted(
        vocab.CURRENCY_PREFIXES + vocab.CURRENCY_SUFFIXES + vocab.TYPO_CURRENCY_SUFFIXES,
        key=len, reverse=True,
    ):
        text = text.replace(marker, "")
    text = text.replace(",", "").strip()
    if not text:
        return None
    if _ARABIC_NUMBER_RE.match(text):
        number = float(text)
    elif _CN_NUMERAL_RE.match(text):
        import cn2an

        try:
            number = float(cn2an.cn2an(text, "smart"))
        except (ValueError, KeyError):
            return None
    else:
        return None
    if number <= 0:
        return None
    return f"{number:.2f}".rstrip("0").rstrip(".")


class WalletEntityRules:
    """spaCy-based matcher for ``order_id``, ``tx_type`` and ``amount``.

    Building the pipeline costs about a second (jieba's dictionary), so build
    one instance and reuse it.
    """

    def __init__(self) -> None:
        import jieba
        import spacy
        from spacy.matcher import Matcher, PhraseMatcher

        # jieba must keep our words whole, or the phrase matcher cannot see them.
        for words in vocab.TX_TYPE_SYNONYMS.values():
            for word in words:
                if " " not in word:
                    jieba.add_word(word, freq=20000)
        # Without this jieba fuses "59.9元到" into "59.9 / 元到".
        for word in ("元", "块", "块钱"):
            jieba.add_word(word, freq=200000)

        self._nlp = spacy.blank(
            "zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}}
        )
        vocab_ = self._nlp.vocab

        self._types = PhraseMatcher(vocab_, attr="LOWER")
        for canonical, words in vocab.TX_TYPE_SYNONYMS.items():
            self._types.add(canonical, [self._nlp.make_doc(w) for w in words])

        currency_before = {"TEXT": {"IN": list(vocab.CURRENCY_PREFIXES)}}
        currency_after = {"LOWER": {"IN": [s.lower() for s in vocab.CURRENCY_SUFFIXES]}}
        arabic = {"TEXT": {"REGEX": _ARABIC_NUMBER_RE.pattern}}
        chinese = {"TEXT": {"REGEX": _CN_NUMERAL_RE.pattern}}
        # jieba often keeps "五百块" or "500元" as one token.
        fused = {
            "TEXT": {
                "REGEX": r"^(?:\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千万亿点]+)"
                r"(?:元|块钱|块|圆|rmb|RMB)$"
            }
        }
        self._amounts = Matcher(vocab_)
        self._amounts.add(
            "amount",
            [
                [currency_before, arabic],
                [currency_before, arabic, currency_after],
                [arabic, currency_after],
                [chinese, currency_after],
                [fused],
                [currency_before, fused],
            ],
        )
        self._typo_amounts = Matcher(vocab_)
        self._typo_amounts.add(
            "amount", [[arabic, {"TEXT": {"IN": list(vocab.TYPO_CURRENCY_SUFFIXES)}}]]
        )
        # "金额是1000": a bare number right after the word for amount.
        self._keyed_amounts = Matcher(vocab_)
        self._keyed_amounts.add(
            "amount",
            [
                [{"TEXT": {"IN": ["金额", "金额是", "一共", "共"]}}, {"TEXT": {"IN": ["是", "为", ":", "："]}, "OP": "?"}, arabic],
            ],
        )
        self._orders = Matcher(vocab_)
        self._orders.add(
            "order_id",
            [
                [{"TEXT": {"REGEX": _ORDER_START_RE.pattern}}]
                + [{"TEXT": {"REGEX": r"^[\d\-_]+$"}, "OP": "?"}] * 4,
            ],
        )

    def extract(self, text: str) -> List[EntityMatch]:
        """All entities in ``text``; offsets refer to ``text`` itself."""
        if not text or not text.strip():
            return []
        doc = self._nlp(normalize_text(text))
        found = (
            self._order_ids(doc) + self._tx_types(doc) + self._amount_spans(doc)
        )
        return [
            EntityMatch(m.entity, m.value, m.start, m.end, text[m.start : m.end])
            for m in _without_overlaps(found)
        ]

    def _order_ids(self, doc: Any) -> List[EntityMatch]:
        matches = []
        for _, start, end in self._orders(doc):
            span = doc[start:end]
            value = normalize_order_id(span.text)
            if value:
                matches.append(
                    EntityMatch("order_id", value, span.start_char, span.end_char, span.text)
                )
        # Typed without any space inside a longer token (e.g. "单号wd2026...")?
        for token in doc:
            for hit in re.finditer(r"(?i)(?:tu|wd|tr|rf)\d{12}", token.text):
                start = token.idx + hit.start()
                matches.append(
                    EntityMatch("order_id", hit.group().upper(), start, start + 14, hit.group())
                )
        return matches

    def _tx_types(self, doc: Any) -> List[EntityMatch]:
        strings = self._nlp.vocab.strings
        return [
            EntityMatch(
                "tx_type",
                strings[match_id],
                doc[start:end].start_char,
                doc[start:end].end_char,
                doc[start:end].text,
            )
            for match_id, start, end in self._types(doc)
        ]

    def _amount_spans(self, doc: Any) -> List[EntityMatch]:
        matches = []
        spans = [doc[start:end] for _, start, end in self._amounts(doc)]
        spans += [doc[end - 1 : end] for _, _, end in self._keyed_amounts(doc)]
        # "800快 / 到了": 快 is "soon" when a verb follows.
        spans += [doc[start:end] for _, start, end in self._typo_amounts(doc)
                  if end == len(doc) or doc[end].text not in ("到", "了", "点", "要", "就")]
        spans += self._numbers_after_a_tx_word(doc)
        for span in spans:
            value = parse_amount(span.text)
            if value:
                matches.append(
                    EntityMatch("amount", value, span.start_char, span.end_char, span.text)
                )
        for regex in (_AMOUNT_IN_TEXT_RE, _CN_AMOUNT_IN_TEXT_RE):
            for hit in regex.finditer(doc.text):
                value = parse_amount(hit.group())
                if value:
                    matches.append(
                        EntityMatch("amount", value, hit.start(), hit.end(), hit.group())
                    )
        return matches

    def _numbers_after_a_tx_word(self, doc: Any) -> List[Any]:
        """``提现了3000``, ``转账800给朋友``, ``充值的500``: a number right after a transaction word."""
        spans = []
        for _, _, end in self._types(doc):
            index = end + 1 if end < len(doc) and doc[end].text in ("了", "的") else end
            if index >= len(doc) or not _ARABIC_NUMBER_RE.match(doc[index].text):
                continue
            following = doc[index + 1].text if index + 1 < len(doc) else ""
            if following not in vocab.NON_MONEY_UNITS:
                spans.append(doc[index : index + 1])
        return spans


def _without_overlaps(matches: Iterable[EntityMatch]) -> List[EntityMatch]:
    """Keeps order ids first, then the longest match, where matches overlap."""
    kept: List[EntityMatch] = []
    ranked = sorted(
        matches,
        key=lambda m: (m.entity != "order_id", -(m.end - m.start), m.start),
    )
    for match in ranked:
        if all(match.end <= k.start or match.start >= k.end for k in kept):
            kept.append(match)
    return sorted(kept, key=lambda m: m.start)
