"""Fixtures for action tests: a real SQLite wallet DB and hand-built trackers."""

from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker

from walletbot.store.db import make_engine
from walletbot.store.service import WalletService

NOW = datetime(2026, 11, 24, 4, 0, tzinfo=timezone.utc)


@pytest.fixture
def service(tmp_path) -> WalletService:
    """A wallet service on a fresh SQLite file seeded with the demo data."""
    url = f"sqlite:///{tmp_path / 'wallet.db'}"
    return WalletService(engine_factory=lambda: make_engine(url))


@pytest.fixture
def clock():
    return lambda: NOW


def make_tracker(
    *,
    sender: str = "zhangsan",
    channel: str = "rest",
    text: str = "",
    intent: str = "check_transaction",
    entities: Optional[List[Dict[str, Any]]] = None,
    slots: Optional[Dict[str, Any]] = None,
    active_loop: Optional[str] = None,
) -> Tracker:
    """A tracker of the conversation ``channel:sender``, its latest user message from ``channel``."""
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 1.0},
        "entities": entities or [],
    }
    events = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": text, "parse_data": latest, "input_channel": channel},
    ]
    return Tracker(
        sender_id=sender if ":" in sender else f"{channel}:{sender}",
        slots=dict(slots or {}),
        latest_message=latest,
        events=events,
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )
