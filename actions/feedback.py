"""Satisfaction scores after a handoff, and suggestions."""

from __future__ import annotations

from typing import List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from walletbot.handoff import wording
from walletbot.handoff.csat import parse_score
from walletbot.handoff.service import HandoffService
from walletbot.privacy import mask_pii
from walletbot.store.service import WalletUnavailable

from actions.common import conversation_of
from actions.handoff import UsesHandoff

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
            await self.handoff.rate_latest(conversation=conversation_of(tracker), score=score)
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
                await self.handoff.suggest(conversation=conversation_of(tracker),
                                           text=mask_pii(text)[:2000])
            except WalletUnavailable:
                pass  # the thanks still goes out
        return []
