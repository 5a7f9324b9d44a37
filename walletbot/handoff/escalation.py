"""Why a conversation is escalated, and what the user is told about the wait."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Tuple

from walletbot.handoff import wording
from walletbot.handoff.hours import ServiceHours, when_text
from walletbot.handoff.service import Escalation
from walletbot.store.rows import PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_URGENT

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


def wait_text(escalation: Escalation, *, hours: ServiceHours, now: datetime) -> str:
    """The ticket number, the place and the estimated wait, or when agents are back."""
    ticket = escalation.ticket
    if not escalation.open_now:
        text = wording.HANDOFF_CLOSED.format(
            ticket=ticket.number, hours=hours.describe(),
            opens=when_text(escalation.opens_at, now, hours.tz),
        )
    elif ticket.status == "assigned":
        text = wording.HANDOFF_ASSIGNED.format(ticket=ticket.number)
    elif escalation.position <= 1:
        text = wording.HANDOFF_NEXT.format(ticket=ticket.number,
                                           minutes=max(1, escalation.wait_minutes))
    else:
        text = wording.HANDOFF_QUEUED.format(ticket=ticket.number, ahead=escalation.position - 1,
                                             minutes=max(1, escalation.wait_minutes))
    return text
