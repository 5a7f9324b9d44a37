"""Escalation to a human agent: open (or find) the ticket, tell the user, pause the bot."""

from __future__ import annotations

import logging
from typing import List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from walletbot.handoff import wording
from walletbot.handoff.escalation import escalation_reason, wait_text
from walletbot.handoff.service import Escalation, HandoffService, default_handoff
from walletbot.store.service import WalletUnavailable

from actions.common import UsesWallet, conversation_of, current_user

logger = logging.getLogger(__name__)

def tell_user(
    dispatcher: CollectingDispatcher, escalation: Escalation, service: HandoffService
) -> None:
    """The ticket number and the wait, or when agents are back."""
    dispatcher.utter_message(text=wait_text(escalation, hours=service.hours, now=service.clock()))


class UsesHandoff(UsesWallet):
    """Mixin: the handoff service passed in, or the process-wide one."""

    _handoff: Optional[HandoffService] = None

    @property
    def handoff(self) -> HandoffService:
        """The handoff service."""
        return self._handoff or default_handoff()

    @property
    def service(self):  # the wallet service the handoff service uses
        return self._service or self.handoff.wallet

    async def escalate(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        *,
        category: str,
        priority: int,
        freeze: bool = False,
    ) -> Optional[Escalation]:
        """Opens the ticket and tells the user; None (after an apology) if the DB is down."""
        try:
            user = await current_user(tracker, self.service)
            escalation = await self.handoff.escalate(
                conversation=conversation_of(tracker),
                category=category,
                priority=priority,
                events=tracker.events,
                user_id=None if user is None else user.user_id,
                freeze=freeze,
            )
        except WalletUnavailable:
            dispatcher.utter_message(text=wording.HANDOFF_UNAVAILABLE)
            return None
        return escalation


class ActionHandoff(UsesHandoff, Action):
    """Hands the conversation to the human queue and pauses the bot."""

    def __init__(self, handoff: Optional[HandoffService] = None) -> None:
        self._handoff = handoff

    def name(self) -> Text:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        category, priority = escalation_reason(tracker.events)
        escalation = await self.escalate(dispatcher, tracker, category=category, priority=priority)
        if escalation is None:
            return []
        tell_user(dispatcher, escalation, self.handoff)
        return [ConversationPaused()]
