"""Satisfaction scores after a handoff, and suggestions."""

from __future__ import annotations

import re
from typing import List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from walletbot.handoff import wording
from walletbot.handoff.service import HandoffService
from walletbot.nlu.normalize import normalize_text
from walletbot.privacy import mask_pii
from walletbot.store.service import WalletUnavailable

from actions.handoff import UsesHandoff

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


class ActionStoreCsat(UsesHandoff, Action):
    """Stores the user's 1–5 score for the handoff that just ended."""

    def __init__(self, handoff: Optional[HandoffService] = None) -> None:
        self._handoff = handoff

    def name(self) -> Text:
        return "action_store_csat"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        entity = next(tracker.get_latest_entity_values("csat_score"), None)
        score = parse_score(tracker.latest_message.get("text") or "", entity)
        if score is None:
            dispatcher.utter_message(text=wording.ASK_CSAT_AGAIN)
            return []
        try:
            await self.handoff.rate_latest(
                channel=tracker.get_latest_input_channel() or "rest",
                sender_id=tracker.sender_id, score=score,
            )
        except WalletUnavailable:
            pass  # the thanks still goes out; the score is lost, which the log shows
        dispatcher.utter_message(text=wording.CSAT_THANKS if score >= 4 else wording.CSAT_SORRY)
        return []


class ActionRecordSuggestion(UsesHandoff, Action):
    """Keeps the user's suggestion (masked) for the product team (the thanks is a rule)."""

    def __init__(self, handoff: Optional[HandoffService] = None) -> None:
        self._handoff = handoff

    def name(self) -> Text:
        return "action_record_suggestion"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        text = (tracker.latest_message.get("text") or "").strip()
        if text and not text.startswith("/"):
            try:
                await self.handoff.suggest(
                    channel=tracker.get_latest_input_channel() or "rest",
                    sender_id=tracker.sender_id, text=mask_pii(text)[:2000],
                )
            except WalletUnavailable:
                pass  # the thanks still goes out
        return []
