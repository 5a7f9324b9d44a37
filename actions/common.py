"""Helpers every action family shares: who the user is, the wallet service, the clock."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from rasa_sdk import Tracker

from walletbot import settings
from walletbot.conversation import ConversationId, conversation_key
from walletbot.store.rows import User
from walletbot.store.service import WalletService, default_service
from walletbot.transactions.identity import binding_of


def utcnow() -> datetime:
    """The clock; tests pass a fixed one."""
    return datetime.now(timezone.utc)


def conversation_of(tracker: Tracker) -> ConversationId:
    """The conversation the action runs in (an unscoped id counts as REST)."""
    return conversation_key(tracker.sender_id)


async def current_user(tracker: Tracker, service: WalletService) -> Optional[User]:
    """The wallet user behind this conversation, or None if not identified.

    Read once per action call: rasa_sdk asks a form's ``required_slots``
    three times in one validation (extraction, validation, next slot), and
    the user lookup was a third of the action server's CPU. The tracker is
    the call's own (rasa_sdk builds one per request), so the next call reads
    again; a failed read is not kept.
    """
    binding = binding_of(tracker.sender_id, production=settings.is_production())
    if binding is None:
        return None
    key = (id(service), binding.channel, binding.sender)
    known = tracker.__dict__.setdefault("_walletbot_users", {})
    if key not in known:
        known[key] = (service, await service.user_for(channel=binding.channel,
                                                      sender_id=binding.sender))
    return known[key][1]


class UsesWallet:
    """Mixin: the wallet service passed in, or the process-wide one."""

    _service: Optional[WalletService] = None

    @property
    def service(self) -> WalletService:
        """The wallet service."""
        return self._service or default_service()
