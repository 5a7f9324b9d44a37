"""Session start that keeps a conversation with an open ticket paused.

Rasa starts a new session after ``session_expiration_time`` of silence, which
would silently un-pause a user who has waited long in the human queue: the
bot would then talk over the agent. If the conversation's ticket is still
open, the new session starts paused too.
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from walletbot.handoff.service import HandoffService
from walletbot.transactions.service import WalletUnavailable

from actions.handoff import UsesHandoff

logger = logging.getLogger(__name__)


class ActionSessionStart(UsesHandoff, Action):
    """Rasa's session start (slots carried over) plus the handoff pause."""

    def __init__(self, handoff: Optional[HandoffService] = None) -> None:
        self._handoff = handoff

    def name(self) -> Text:
        return "action_session_start"

    @staticmethod
    def _carried_slots(tracker: Tracker) -> List[EventType]:
        return [
            SlotSet(key, value) for key, value in tracker.slots.items()
            if value is not None and key != "session_started_metadata"
        ]

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        events: List[Any] = [SessionStarted()]
        if (domain.get("session_config") or {}).get("carry_over_slots_to_new_session", True):
            events.extend(self._carried_slots(tracker))
        channel = tracker.get_latest_input_channel() or "rest"
        try:
            ticket = await self.handoff.open_ticket(channel=channel, sender_id=tracker.sender_id)
        except WalletUnavailable:
            ticket = None  # better a talking bot than a lost session
        if ticket is not None:
            events.append(ConversationPaused())
        events.append(ActionExecuted("action_listen"))
        return events
