"""The conversation as an agent reads it: from tracker events, PII masked."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Optional

from walletbot.privacy import mask_pii

MAX_LINES = 60


def _time(timestamp: Optional[float]) -> Optional[str]:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(float(timestamp), tz=timezone.utc).isoformat(timespec="seconds")


def _user_text(event: Dict[str, Any]) -> Optional[str]:
    text = event.get("text")
    if not text:
        return None
    if text.startswith("/"):
        # A button payload: show what the button said if the channel kept it.
        title = (event.get("metadata") or {}).get("button_title")
        return title or None
    return text


def transcript_lines(
    events: Iterable[Dict[str, Any]], *, limit: int = MAX_LINES
) -> List[Dict[str, Any]]:
    """User, bot and agent messages of a conversation, oldest first.

    Args:
        events: Tracker events as dicts (rasa-sdk ``tracker.events`` or Rasa's
            ``tracker.current_state()["events"]``).
        limit: Keep only the last ``limit`` lines.

    Returns:
        ``[{"role": "user"|"bot"|"agent", "text": masked text, "time": ISO UTC}]``;
        payload-only user turns (``/intent``) are left out, agent replies are
        bot events carrying ``metadata.agent``.
    """
    lines: List[Dict[str, Any]] = []
    for event in events:
        kind = event.get("event")
        if kind == "user":
            text = _user_text(event)
            role = "user"
        elif kind == "bot":
            text = event.get("text")
            agent = (event.get("metadata") or {}).get("agent")
            role = "agent" if agent else "bot"
        else:
            continue
        if not text:
            continue
        line = {"role": role, "text": mask_pii(text), "time": _time(event.get("timestamp"))}
        if role == "agent":
            line["agent"] = (event.get("metadata") or {}).get("agent_name") or agent
        lines.append(line)
    return lines[-limit:]


def summary_line(lines: List[Dict[str, Any]], *, width: int = 60) -> str:
    """The user's last words before the escalation, for the queue view."""
    for line in reversed(lines):
        if line["role"] == "user":
            text = " ".join(line["text"].split())
            return text if len(text) <= width else text[: width - 1] + "…"
    return ""
