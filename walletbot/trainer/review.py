"""Mining the SQL tracker store for messages the bot handled poorly.

A user message is flagged when
  * NLU fell back (intent ``nlu_fallback``) or the bot's next action was a
    fallback (``action_default_fallback``, ``utter_ask_rephrase``, …): ``fallback``;
  * its best intent's confidence is below ``min_confidence``: ``low_confidence``;
  * the conversation was escalated after it (``action_handoff``, a pause,
    the user asking for a human): ``escalated`` — the user's last real
    question before the escalation is flagged;
  * the user rated the service 1 or 2 (slot or entity ``csat_score``):
    ``low_csat`` — again the last real question before the rating.

Rasa's SQL tracker store keeps one row per event in the table ``events``
(``sender_id``, ``type_name``, ``timestamp``, ``intent_name``,
``action_name``, ``data`` JSON); that is all this module reads.

Texts are masked again as they are read (:func:`walletbot.privacy.mask_pii`):
conversations stored before masking covered some form of a card or phone
number, or a password, must not reach the export a trainer opens and shares.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from walletbot.privacy import mask_pii
from walletbot.trainer.evaluation import FALLBACK_INTENT, full_label_of

FALLBACK = "fallback"
LOW_CONFIDENCE = "low_confidence"
ESCALATED = "escalated"
LOW_CSAT = "low_csat"
REASONS = (FALLBACK, LOW_CONFIDENCE, ESCALATED, LOW_CSAT)

FALLBACK_ACTIONS = frozenset({
    "action_default_fallback", "action_two_stage_fallback", "utter_ask_rephrase",
    "utter_default", "utter_offer_human_after_fallback",
})
_ESCALATION_ACTION_RE = re.compile(r"^action_(handoff|human_handoff|escalat|transfer_to_human)")
ESCALATION_INTENTS = frozenset({"request_human"})
# Replies that are not questions of their own: never blamed for an escalation or a rating.
META_INTENTS = frozenset({
    "greet", "goodbye", "thanks", "affirm", "deny", "request_human", "rate_service",
    FALLBACK_INTENT,
})
LOW_CSAT_SCORES = (1, 2)
DEFAULT_MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class EventRow:
    """One row of the ``events`` table."""

    sender_id: str
    type_name: str
    timestamp: float
    intent_name: Optional[str]
    action_name: Optional[str]
    data: Dict[str, Any]


@dataclass
class Flagged:
    """One user message and why it was flagged."""

    sender_id: str
    text: str
    timestamp: float
    predicted: str
    confidence: float
    reasons: List[str] = field(default_factory=list)


def read_events(*, url: str, since: Optional[float] = None) -> Iterator[EventRow]:
    """The tracker store's events, per conversation in stored order.

    Args:
        url: SQLAlchemy URL of the tracker store (``TRACKER_DB_URL``).
        since: only events at or after this Unix time.
    """
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    events = sa.table(
        "events", sa.column("id"), sa.column("sender_id"), sa.column("type_name"),
        sa.column("timestamp"), sa.column("intent_name"), sa.column("action_name"),
        sa.column("data"),
    )
    query = sa.select(
        events.c.sender_id, events.c.type_name, events.c.timestamp,
        events.c.intent_name, events.c.action_name, events.c.data,
    ).order_by(events.c.sender_id, events.c.id)
    if since is not None:
        query = query.where(events.c.timestamp >= since)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("events"):
                raise LookupError(f"{_safe_url(url)} has no 'events' table: is it Rasa's SQL "
                                  "tracker store (TRACKER_DB_URL)?")
            for row in conn.execute(query):
                try:
                    data = json.loads(row.data) if row.data else {}
                except ValueError:
                    data = {}
                yield EventRow(
                    sender_id=row.sender_id, type_name=row.type_name,
                    timestamp=float(row.timestamp or 0.0), intent_name=row.intent_name,
                    action_name=row.action_name, data=data,
                )
    finally:
        engine.dispose()


def _safe_url(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def _csat(event: EventRow) -> Optional[int]:
    """The CSAT score an event sets, if any."""
    values: List[Any] = []
    if event.type_name == "slot" and event.data.get("name") == "csat_score":
        values.append(event.data.get("value"))
    if event.type_name == "user":
        for entity in (event.data.get("parse_data") or {}).get("entities") or []:
            if entity.get("entity") == "csat_score":
                values.append(entity.get("value"))
    for value in values:
        try:
            return int(float(str(value)))
        except (TypeError, ValueError):
            continue
    return None


def _is_escalation(event: EventRow) -> bool:
    if event.type_name == "pause":
        return True
    if event.type_name == "action" and event.action_name:
        return bool(_ESCALATION_ACTION_RE.match(event.action_name))
    return event.type_name == "user" and event.intent_name in ESCALATION_INTENTS


def conversations(events: Iterable[EventRow]) -> Iterator[List[EventRow]]:
    """Events grouped by sender and split at session starts."""
    current: List[EventRow] = []
    sender = None
    for event in events:
        if event.sender_id != sender or event.type_name == "session_started":
            if current:
                yield current
            current, sender = [], event.sender_id
        current.append(event)
    if current:
        yield current


def user_message(event: EventRow) -> Optional[Flagged]:
    """The typed message of a ``user`` event (masked), or None for a button payload or no text."""
    text = str(event.data.get("text") or "").strip()
    if not text or text.startswith("/"):
        return None  # button payloads are not language
    text = mask_pii(text)
    parse = event.data.get("parse_data") or {}
    label, confidence, fell_back = full_label_of(parse)
    if not label:
        label = event.intent_name or ""
    flagged = Flagged(sender_id=event.sender_id, text=text, timestamp=event.timestamp,
                      predicted=label, confidence=confidence)
    if fell_back or event.intent_name == FALLBACK_INTENT:
        flagged.reasons.append(FALLBACK)
    return flagged


def flag_messages(
    events: Iterable[EventRow], *, min_confidence: float = DEFAULT_MIN_CONFIDENCE
) -> List[Flagged]:
    """Every user message with at least one reason to review it."""
    out: List[Flagged] = []
    for conversation in conversations(events):
        messages: List[Tuple[Flagged, Optional[str]]] = []  # with the event's intent
        awaiting_action: Optional[Flagged] = None
        for event in conversation:
            if event.type_name == "user":
                message = user_message(event)
                if message is not None:
                    if message.confidence < min_confidence and message.predicted:
                        message.reasons.append(LOW_CONFIDENCE)
                    messages.append((message, event.intent_name))
                awaiting_action = message
            elif event.type_name == "action" and event.action_name != "action_listen":
                if awaiting_action is not None and event.action_name in FALLBACK_ACTIONS \
                        and FALLBACK not in awaiting_action.reasons:
                    awaiting_action.reasons.append(FALLBACK)
                awaiting_action = None
            score = _csat(event)
            reason = ESCALATED if _is_escalation(event) else \
                LOW_CSAT if score in LOW_CSAT_SCORES else None
            if reason:
                target = next(
                    (m for m, intent in reversed(messages)
                     if (intent or m.predicted) not in META_INTENTS
                     and m.timestamp <= event.timestamp),
                    None,
                )
                if target is not None and reason not in target.reasons:
                    target.reasons.append(reason)
        for message, _ in messages:
            if FALLBACK in message.reasons and LOW_CONFIDENCE in message.reasons:
                message.reasons.remove(LOW_CONFIDENCE)  # a fallback says it already
        out += [m for m, _ in messages if m.reasons]
    return out


@dataclass
class ReviewItem:
    """Flagged messages with the same text, with counts."""

    text: str
    count: int
    senders: int
    reasons: Dict[str, int]
    predicted: str
    confidence: float
    first_seen: float
    last_seen: float
    group: int = 0


def aggregate(flagged: Sequence[Flagged]) -> List[ReviewItem]:
    """One item per distinct text (compared after folding width, case, punctuation)."""
    from walletbot.trainer.sources import example_key

    buckets: Dict[str, List[Flagged]] = {}
    for message in flagged:
        buckets.setdefault(example_key(message.text), []).append(message)
    items = []
    for messages in buckets.values():
        reasons: Counter = Counter(r for m in messages for r in m.reasons)
        items.append(ReviewItem(
            text=Counter(m.text for m in messages).most_common(1)[0][0],
            count=len(messages),
            senders=len({m.sender_id for m in messages}),
            reasons={r: reasons[r] for r in REASONS if reasons[r]},
            predicted=Counter(m.predicted for m in messages).most_common(1)[0][0],
            confidence=sum(m.confidence for m in messages) / len(messages),
            first_seen=min(m.timestamp for m in messages),
            last_seen=max(m.timestamp for m in messages),
        ))
    return sorted(items, key=lambda i: (-i.count, i.text))


def group_items(items: List[ReviewItem], *, similarity: float) -> List[ReviewItem]:
    """Numbers similar items' groups (most frequent first leads) and sorts by group.

    The review export and the desk's dashboard (its top unanswered questions)
    both group this way, so a group on the dashboard is a group in the file.
    """
    from walletbot.trainer.cluster import group_texts

    for item, group in zip(items, group_texts([i.text for i in items], threshold=similarity)):
        item.group = group
    items.sort(key=lambda i: (i.group, -i.count, i.text))
    return items
