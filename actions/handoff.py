"""Escalation to a human agent: open (or find) the ticket, tell the user, pause the bot."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from walletbot.handoff import wording
from walletbot.handoff.hours import when_text
from walletbot.handoff.service import Escalation, HandoffService, default_handoff
from walletbot.store.rows import PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_URGENT
from walletbot.store.service import WalletUnavailable

from actions.common import UsesWallet, current_user

logger = logging.getLogger(__name__)

# The bot's offer the user accepted decides why the conversation is escalated.
_CONTEXT: Dict[str, Tuple[str, int]] = {
    "utter_offer_overdue_check": ("transaction", PRIORITY_HIGH),
    "utter_offer_human": ("transaction", PRIORITY_NORMAL),
    "utter_offer_human_after_fallback": ("fallback", PRIORITY_NORMAL),
    "utter_complain": ("complain", PRIORITY_HIGH),
    # The knowledge base has no answer; the agent sees the question in the transcript.
    "utter_wallet_unsupported": ("request_human", PRIORITY_NORMAL),
    "utter_confirm_freeze": ("account_compromised", PRIORITY_URGENT),
    "utter_freeze_declined": ("account_compromised", PRIORITY_URGENT),
}


def escalation_reason(events: List[Dict[str, Any]]) -> Tuple[str, int]:
    """Category and priority from the bot's last offer before the latest user turn."""
    seen_user = False
    for event in reversed(events):
        kind = event.get("event")
        if kind == "user":
            if seen_user:
                break
            seen_user = True
        elif kind == "action" and seen_user:
            name = event.get("name")
            if name in _CONTEXT:
                return _CONTEXT[name]
            if name not in ("action_listen", None):
                break
    return "request_human", PRIORITY_NORMAL


def tell_user(
    dispatcher: CollectingDispatcher, escalation: Escalation, service: HandoffService
) -> None:
    """The ticket number and the wait, or when agents are back."""
    ticket = escalation.ticket
    if not escalation.open_now:
        text = wording.HANDOFF_CLOSED.format(
            ticket=ticket.number, hours=service.hours.describe(),
            opens=when_text(escalation.opens_at, service.clock(), service.hours.tz),
        )
    elif ticket.status == "assigned":
        text = wording.HANDOFF_ASSIGNED.format(ticket=ticket.number)
    elif escalation.position <= 1:
        text = wording.HANDOFF_NEXT.format(ticket=ticket.number)
    else:
        text = wording.HANDOFF_QUEUED.format(ticket=ticket.number, ahead=escalation.position - 1)
    dispatcher.utter_message(text=text)


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
                channel=tracker.get_latest_input_channel() or "rest",
                sender_id=tracker.sender_id,
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
