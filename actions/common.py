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
    """The wallet user behind this conversation, or None if not identified."""
    binding = binding_of(tracker.sender_id, production=settings.is_production())
    if binding is None:
        return None
    return await service.user_for(channel=binding.channel, sender_id=binding.sender)


class UsesWallet:
    """Mixin: the wallet service passed in, or the process-wide one."""

    _service: Optional[WalletService] = None

    @property
    def service(self) -> WalletService:
        """The wallet service."""
        return self._service or default_service()
