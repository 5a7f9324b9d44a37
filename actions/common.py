"""Helpers every action family shares: who the user is, the wallet service, the clock."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Optional

from rasa_sdk import Tracker

from walletbot.store.rows import User
from walletbot.transactions.identity import binding_channel
from walletbot.store.service import WalletService, default_service


def is_production() -> bool:
    """The production profile identifies users only by trusted channels."""
    return os.environ.get("WALLETBOT_ENV", "dev") == "production"


def utcnow() -> datetime:
    """The clock; tests pass a fixed one."""
    return datetime.now(timezone.utc)


async def current_user(tracker: Tracker, service: WalletService) -> Optional[User]:
    """The wallet user behind this conversation, or None if not identified."""
    channel = binding_channel(tracker.get_latest_input_channel(), production=is_production())
    if channel is None:
        return None
    return await service.user_for(channel=channel, sender_id=tracker.sender_id)


class UsesWallet:
    """Mixin: the wallet service passed in, or the process-wide one."""

    _service: Optional[WalletService] = None

    @property
    def service(self) -> WalletService:
        """The wallet service."""
        return self._service or default_service()
