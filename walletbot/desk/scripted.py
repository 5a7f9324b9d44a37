"""A scripted day at the desk: conversations and tickets at chosen times.

The dashboard's acceptance test and ``scripts/desk_screenshots.py`` describe
a day (who said what when, which tickets were opened, claimed, resolved and
rated when) and this module writes it where the servers keep it: the
conversations into a SQLite tracker store through Rasa's own
``SQLTrackerStore`` (the rows ``walletbot review`` and the dashboard read),
the tickets, their events, scores and agents' presence into the wallet DB.
It only writes what it is told; it computes no figure. No server uses it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from walletbot.store.tickets import add_event
from walletbot.store.schema import agent_presence, feedback, tickets


@dataclass(frozen=True)
class Say:
    """A user message and what NLU made of it (``fell_back``: FallbackClassifier's ``nlu_fallback``)."""

    text: str
    intent: str = "faq"
    confidence: float = 0.95
    fell_back: bool = False


@dataclass(frozen=True)
class Reply:
    """The bot's next action, and the text it said (if any)."""

    action: str
    text: str = ""


@dataclass(frozen=True)
class AgentSays:
    """A human agent's message, kept in the tracker as the relay keeps it (a bot event)."""

    text: str
    login: str
    name: str


PAUSE = "pause"
Turn = Union[Say, Reply, AgentSays, str]


def _parse(say: Say) -> Dict[str, Any]:
    top = {"name": say.intent, "confidence": say.confidence}
    ranking = [top, {"name": "greet", "confidence": round(max(0.0, 1 - say.confidence) / 2, 3)}]
    if say.fell_back:
        top = {"name": "nlu_fallback", "confidence": 0.3}
        ranking = [top] + ranking
    return {"text": say.text, "intent": top, "intent_ranking": ranking, "entities": []}


def session(start: datetime, turns: Sequence[Turn], *, gap: float = 20.0) -> List[Any]:
    """Rasa events of one session from ``start`` (aware), one turn every ``gap`` seconds."""
    from rasa.shared.core.events import (
        ActionExecuted, BotUttered, ConversationPaused, SessionStarted, UserUttered,
    )

    at = start.timestamp()
    events: List[Any] = [ActionExecuted("action_session_start", timestamp=at),
                         SessionStarted(timestamp=at), ActionExecuted("action_listen", timestamp=at)]
    for n, turn in enumerate(turns, 1):
        stamp = at + n * gap
        if isinstance(turn, Say):
            parse = _parse(turn)
            events.append(UserUttered(turn.text, parse["intent"], [], parse, timestamp=stamp))
        elif isinstance(turn, Reply):
            events.append(ActionExecuted(turn.action, timestamp=stamp))
            if turn.text:
                events.append(BotUttered(turn.text, timestamp=stamp))
            events.append(ActionExecuted("action_listen", timestamp=stamp))
        elif isinstance(turn, AgentSays):
            events.append(BotUttered(turn.text, metadata={"agent": turn.login,
                                                          "agent_name": turn.name},
                                     timestamp=stamp))
        elif turn == PAUSE:
            events.append(ConversationPaused(timestamp=stamp))
        else:
            raise ValueError(f"unknown turn {turn!r}")
    return events


def write_conversations(path: Path, conversations: Mapping[str, Sequence[Any]]) -> str:
    """Saves each tracker id's events into the SQLite tracker store at ``path``; returns its URL."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))
    try:
        for sender, events in conversations.items():
            tracker = DialogueStateTracker.from_events(sender, list(events))
            asyncio.run(store.save(tracker))
    finally:
        store.engine.dispose()
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class Ticket:
    """A ticket's life: opened, then (optionally) overdue, claimed, replied to, resolved, rated."""

    channel: str
    sender_id: str
    category: str
    opened_at: datetime
    priority: int = 3
    summary: Optional[str] = None
    user_id: Optional[str] = None
    agent: Optional[str] = None
    claimed_at: Optional[datetime] = None
    # The agent's reply after the claim (first and latest): without one, the
    # desk's service-level timer would send a claimed ticket back to the queue.
    replied_at: Optional[datetime] = None
    resolved_at: Optional[datetime] = None
    overdue_at: Optional[datetime] = None
    score: Optional[int] = None
    scored_at: Optional[datetime] = None
    transcript: Sequence[Dict[str, Any]] = field(default_factory=tuple)


def add_ticket(*, conn: Connection, ticket: Ticket) -> int:
    """Writes the ticket, its events and its score; returns its id."""
    status = "resolved" if ticket.resolved_at else "assigned" if ticket.claimed_at else "queued"
    last = ticket.resolved_at or ticket.claimed_at or ticket.overdue_at or ticket.opened_at
    result = conn.execute(sa.insert(tickets).values(
        channel=ticket.channel, sender_id=ticket.sender_id, user_id=ticket.user_id,
        category=ticket.category, priority=ticket.priority, status=status,
        agent=ticket.agent if ticket.claimed_at else None, summary=ticket.summary,
        transcript=json.dumps(list(ticket.transcript), ensure_ascii=False),
        created_at=ticket.opened_at, updated_at=last, resolved_at=ticket.resolved_at,
        queued_at=ticket.opened_at, claimed_at=ticket.claimed_at,
        first_reply_at=ticket.replied_at, agent_replied_at=ticket.replied_at,
        # Still overdue only while it waits (a claim clears the mark, as claim_ticket does).
        overdue_at=ticket.overdue_at if status == "queued" else None,
    ))
    ticket_id = int(result.inserted_primary_key[0])
    steps = [(ticket.opened_at, "opened", "system", None)]
    if ticket.overdue_at:
        steps.append((ticket.overdue_at, "overdue", "system", None))
    if ticket.claimed_at:
        steps.append((ticket.claimed_at, "claimed", ticket.agent, ticket.agent))
    if ticket.resolved_at:
        steps.append((ticket.resolved_at, "resolved", ticket.agent, None))
    for at, event, actor, target in sorted(steps, key=lambda s: s[0]):
        add_event(conn=conn, ticket_id=ticket_id, event=event, actor=actor, target=target,
                  reason=ticket.category if event == "opened" else None, at=at)
    if ticket.score is not None:
        conn.execute(sa.insert(feedback).values(
            ticket_id=ticket_id, channel=ticket.channel, sender_id=ticket.sender_id,
            score=ticket.score, created_at=ticket.scored_at or ticket.resolved_at or last))
    return ticket_id


def add_tickets(*, conn: Connection, tickets: Sequence[Ticket]) -> List[int]:
    """Writes several tickets (one transaction); returns their ids."""
    return [add_ticket(conn=conn, ticket=t) for t in tickets]


def set_presence(*, conn: Connection, login: str, seen: datetime, available: bool = True) -> None:
    """Records that ``login`` was at the desk at ``seen``."""
    conn.execute(sa.delete(agent_presence).where(agent_presence.c.login == login))
    conn.execute(sa.insert(agent_presence).values(login=login, last_seen_at=seen,
                                                  available=available))

