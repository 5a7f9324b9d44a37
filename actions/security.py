"""A compromised account: freeze it at once and open an urgent ticket."""

from __future__ import annotations

from typing import List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from walletbot.handoff import wording
from walletbot.handoff.service import HandoffService
from walletbot.store.rows import PRIORITY_URGENT

from actions.handoff import UsesHandoff, tell_user


class ActionFreezeAccount(UsesHandoff, Action):
    """After the user confirmed: freezes the account and escalates with top priority.

    An unidentified user cannot be frozen from the chat (anyone could ask);
    the urgent ticket still goes out so an agent verifies and freezes.
    """

    def __init__(self, handoff: Optional[HandoffService] = None) -> None:
        self._handoff = handoff

    def name(self) -> Text:
        return "action_freeze_account"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        escalation = await self.escalate(
            dispatcher, tracker, category="account_compromised", priority=PRIORITY_URGENT,
            freeze=True,
        )
        if escalation is None:
            return []
        if escalation.frozen:
            dispatcher.utter_message(text=wording.ACCOUNT_FROZEN)
        else:
            dispatcher.utter_message(text=wording.FREEZE_NEEDS_IDENTITY)
        tell_user(dispatcher, escalation, self.handoff)
        return [ConversationPaused()]
