"""The supervisor's figures: computed once, shown by the dashboard and ``walletbot report``.

:func:`collect` reads the wallet DB (tickets, their events, scores, agents'
presence: :mod:`walletbot.store.report`) and Rasa's SQL tracker store (through
:mod:`walletbot.trainer.review`, the reader and the flags of ``walletbot
review``) and returns one JSON-ready dict. The dashboard's ``api/dashboard``
returns that dict as it is; ``walletbot report`` renders the same dict as text
or CSV (:mod:`walletbot.desk.report_format`).

Definitions (a test checks each one exactly):

* **Period**: ``days`` calendar days in the service time zone (settings
  ``service_timezone``, HANDOFF_TIMEZONE, Asia/Shanghai), today included: from
  local midnight ``days - 1`` days ago to the next local midnight. ``days=1``
  is today. Every figure below counts what happened in the period, except the
  "now" figures (queue, overdue now, agents online, load).
* **Conversation**: one session of one tracker (its events split at
  ``session_started``, as ``walletbot review`` splits them) with at least one
  ``user`` event. It belongs to the day of its first user event. The tracker
  is read from a day before the period, so a session that began before
  midnight is not counted again on the next day.
* **User turn**: a typed user message, i.e. a ``user`` event with text that is
  not a ``/intent`` button payload (:func:`walletbot.trainer.review.user_message`),
  in the day of its timestamp.
* **Fallback**: a user turn that ``walletbot review`` flags ``fallback``: NLU
  fell back (``nlu_fallback``) or the bot's next action was a fallback action
  (``utter_ask_rephrase``, ``action_default_fallback``, …). **Fallback rate** =
  fallbacks / user turns. **Low confidence**: flagged ``low_confidence`` (best
  intent below ``min_confidence``, 0.5, and not a fallback).
* **Handoff**: a ticket opened (``created_at``) in the period, by its category.
* **Contained**: a conversation for which no ticket of its channel and sender
  was opened between its first user event and the start of the sender's next
  session. **Containment** = contained / conversations. A conversation still
  going on without a ticket counts as contained until it gets one.
* **Wait**: each stretch a ticket spent in the queue, from ``opened`` or
  ``requeued`` (or ``transferred`` back to the queue, i.e. without a target)
  to the next ``claimed``, ``assigned`` or ``transferred`` to an agent; it
  counts in the period of its end. **Handling time**: from a ticket's first
  ``claimed``/``assigned`` to its ``resolved``, for tickets resolved in the
  period. Averages are means, rounded to 0.1 s; **p90** is the nearest rank,
  the ``ceil(0.9 n)``-th smallest value.
* **CSAT**: scores (1-5) of the ``feedback`` rows tied to a ticket, given in
  the period; the average is rounded to two places.
* **Overdue**: tickets with an ``overdue`` event in the period; **overdue now**:
  queued tickets whose ``overdue_at`` is set.
* **Agents online**: ``agent_presence`` rows seen within ``DESK_PRESENCE_SECONDS``
  (the same window auto-assignment and the wait estimate use); **load**: each
  agent's assigned tickets now.
* **Unanswered questions**: the period's user turns flagged ``fallback`` or
  ``low_confidence``, one item per distinct text and similar texts grouped
  exactly as the review export groups them (:func:`~walletbot.trainer.review.aggregate`,
  :func:`~walletbot.trainer.review.group_items`); the :data:`TOP_QUESTIONS`
  groups with the most messages.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time as clock, timedelta, timezone as tz
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from walletbot import settings
from walletbot.conversation import ConversationId, conversation_key
from walletbot.store.report import ReportRows, report_rows
from walletbot.store.service import WalletService
from walletbot.trainer import review
from walletbot.trainer.cluster import DEFAULT_THRESHOLD
from walletbot.trainer.review import DEFAULT_MIN_CONFIDENCE, EventRow, Flagged

TOP_QUESTIONS = 20
DASHBOARD_DAYS = (1, 7)
MAX_DAYS = 90
TRACKER_LOOKBACK = timedelta(days=1)
# As the console (desk.js CATEGORY) names them.
CATEGORY_LABELS = {
    "request_human": "用户要求人工", "fallback": "机器人未能理解",
    "account_compromised": "账户安全", "complain": "投诉", "transaction": "交易核查",
}
_QUEUE_IN = ("opened", "requeued")
_TAKEN = ("claimed", "assigned", "transferred")


class TrackerUnavailable(RuntimeError):
    """The tracker store could not be read; the message says why (no password)."""


@dataclass(frozen=True)
class Period:
    """``days`` local calendar days ending today: ``[start, end)`` in UTC, and the dates."""

    days: int
    timezone: str
    start: datetime
    end: datetime
    dates: Tuple[date, ...]

    @classmethod
    def ending_today(cls, days: int, *, now: datetime, timezone: str) -> "Period":
        """The period of ``days`` days whose last day is ``now``'s local date.

        Raises:
            ValueError: ``days`` is not a whole number from 1 to :data:`MAX_DAYS`.
        """
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise ValueError(f"days must be a whole number from 1 to {MAX_DAYS}, got {days!r}")
        zone, name = _zone(timezone)
        today = now.astimezone(zone).date()
        dates = tuple(today - timedelta(days=n) for n in range(days - 1, -1, -1))
        start = datetime.combine(dates[0], clock(0), tzinfo=zone).astimezone(tz.utc)
        end = datetime.combine(today + timedelta(days=1), clock(0), tzinfo=zone).astimezone(tz.utc)
        return cls(days, name, start, end, dates)

    @property
    def zone(self) -> Any:
        return _zone(self.timezone)[0]

    def day_of(self, moment: datetime) -> Optional[date]:
        """The local date of ``moment`` if it lies in the period, else None."""
        if not self.start <= moment < self.end:
            return None
        return moment.astimezone(self.zone).date()

    def day_of_timestamp(self, timestamp: float) -> Optional[date]:
        return self.day_of(datetime.fromtimestamp(timestamp, tz.utc))

    def local(self, moment: datetime) -> str:
        return moment.astimezone(self.zone).isoformat()


def _zone(name: str) -> Tuple[Any, str]:
    """The time zone called ``name``; UTC (and says so) when it is unknown."""
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name), name
    except Exception:  # unknown or empty name: UTC, named as such in the report
        return tz.utc, "UTC"


# --- the tracker store ---------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    """A session with a user event: whose, when its first user event came, when the next began."""

    key: ConversationId
    started: float
    until: float


@dataclass(frozen=True)
class TrackerRows:
    """What the figures take from the tracker store."""

    conversations: Tuple[Conversation, ...]
    turns: Tuple[float, ...]
    flagged: Tuple[Flagged, ...]


def tracker_rows(events: Iterable[EventRow], *,
                 min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> TrackerRows:
    """Conversations, typed user turns and flagged messages of ``events`` (stored order)."""
    events = list(events)
    sessions = list(review.conversations(events))
    conversations: List[Conversation] = []
    turns: List[float] = []
    for n, session in enumerate(sessions):
        users = [e for e in session if e.type_name == "user"]
        turns += [e.timestamp for e in users if review.user_message(e) is not None]
        if not users:
            continue
        following = sessions[n + 1] if n + 1 < len(sessions) else None
        same_sender = following is not None and following[0].sender_id == session[0].sender_id
        conversations.append(Conversation(
            key=conversation_key(session[0].sender_id), started=users[0].timestamp,
            until=following[0].timestamp if same_sender else math.inf,
        ))
    flagged = review.flag_messages(events, min_confidence=min_confidence)
    return TrackerRows(tuple(conversations), tuple(turns), tuple(flagged))


def missing_sqlite_file(url: str) -> Optional[str]:
    """The file of a SQLite ``url`` when it does not exist (connecting would create it empty).

    Raises:
        ValueError: ``url`` is not a database URL.
    """
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except Exception as error:
        raise ValueError(f"not a database URL ({type(error).__name__})") from None
    database = parsed.database or ""
    if parsed.drivername.startswith("sqlite") and database and database != ":memory:" \
            and not database.startswith("file:") and not Path(database).exists():
        return database
    return None


def _check_readable(url: str) -> None:
    try:
        missing = missing_sqlite_file(url)
    except ValueError as error:
        raise TrackerUnavailable(f"TRACKER_DB_URL is {error}") from None
    if missing:
        raise TrackerUnavailable(f"the tracker store {missing} does not exist (TRACKER_DB_URL)")


def read_events(url: str, *, since: float) -> List[EventRow]:
    """The tracker store's events from ``since`` (Unix time), as ``walletbot review`` reads them.

    Raises:
        TrackerUnavailable: Bad URL, no database, no ``events`` table, a DB error.
    """
    _check_readable(url)
    try:
        return list(review.read_events(url=url, since=since))
    except LookupError as error:  # no events table: the message names the URL without password
        raise TrackerUnavailable(str(error)) from None
    except Exception as error:  # SQLAlchemy's errors: down, refused, no such database
        raise TrackerUnavailable(f"cannot read the tracker store ({type(error).__name__})") from None


# --- the figures ---------------------------------------------------------------


def _rate(part: int, whole: int) -> Optional[float]:
    return round(part / whole, 4) if whole else None


def p90(values: Sequence[float]) -> Optional[float]:
    """The nearest-rank 90th percentile: the ``ceil(0.9 n)``-th smallest value."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(0.9 * len(ordered))) - 1]


def _durations(values: Sequence[float]) -> Dict[str, Any]:
    if not values:
        return {"count": 0, "average_seconds": None, "p90_seconds": None}
    return {"count": len(values), "average_seconds": round(sum(values) / len(values), 1),
            "p90_seconds": round(float(p90(values)), 1)}


def _ticket_times(rows: ReportRows, period: Period) -> Tuple[List[float], List[float], set]:
    """Waits and handling times (seconds) ending in the period, and tickets overdue in it."""
    waits: List[float] = []
    handling: List[float] = []
    overdue = set()
    queued_since: Dict[int, datetime] = {}
    first_taken: Dict[int, datetime] = {}
    for event in rows.events:  # per ticket, oldest first
        ticket, at = event.ticket_id, event.created_at
        inside = period.start <= at < period.end
        back_to_queue = event.event == "transferred" and not event.target
        if event.event in _QUEUE_IN or back_to_queue:
            queued_since.setdefault(ticket, at)
        elif event.event in _TAKEN:
            since = queued_since.pop(ticket, None)
            if since is not None and inside:
                waits.append((at - since).total_seconds())
            if event.event != "transferred":
                first_taken.setdefault(ticket, at)
        elif event.event == "resolved":
            queued_since.pop(ticket, None)
            if ticket in first_taken and inside:
                handling.append((at - first_taken[ticket]).total_seconds())
        elif event.event == "overdue" and inside:
            overdue.add(ticket)
    return waits, handling, overdue


def _agents(rows: ReportRows, *, now: datetime, accounts: Mapping[str, Any]) -> List[Dict[str, Any]]:
    seen = {p.login: p for p in rows.presence}
    window = settings.current().desk_presence_seconds
    online = {login for login, p in seen.items()
              if (now - p.last_seen_at).total_seconds() <= window}
    out = []
    for login in sorted(online | set(rows.load)):
        account = accounts.get(login)
        out.append({
            "login": login,
            "name": getattr(account, "name", None) or login,
            "online": login in online,
            "available": login in online and seen[login].available,
            "load": rows.load.get(login, 0),
            "max_tickets": getattr(account, "max_tickets", None),
        })
    return sorted(out, key=lambda a: (not a["online"], a["login"]))


def _unanswered(flagged: Sequence[Flagged], period: Period, *,
                similarity: float) -> List[Dict[str, Any]]:
    wanted = (review.FALLBACK, review.LOW_CONFIDENCE)
    messages = [m for m in flagged if period.day_of_timestamp(m.timestamp) is not None
                and any(r in m.reasons for r in wanted)]
    items = review.group_items(review.aggregate(messages), similarity=similarity)
    groups: Dict[int, List[review.ReviewItem]] = {}
    for item in items:  # by group, most frequent text first: the group's leader
        groups.setdefault(item.group, []).append(item)
    out = []
    for group, members in groups.items():
        reasons: Counter = Counter()
        for item in members:
            reasons.update({r: n for r, n in item.reasons.items() if r in wanted})
        out.append({
            "group": group,
            "text": members[0].text,
            "count": sum(i.count for i in members),
            "variants": len(members),
            "examples": [i.text for i in members[1:4]],
            "reasons": {r: reasons[r] for r in wanted if reasons[r]},
            "predicted": members[0].predicted,
            "last_seen": period.local(datetime.fromtimestamp(
                max(i.last_seen for i in members), tz.utc)),
        })
    out.sort(key=lambda g: (-g["count"], g["group"]))
    return out[:TOP_QUESTIONS]


def figures(
    period: Period, rows: ReportRows, tracker: TrackerRows, *, now: datetime,
    accounts: Optional[Mapping[str, Any]] = None, similarity: float = DEFAULT_THRESHOLD,
) -> Dict[str, Any]:
    """The report as a JSON-ready dict (see the module docstring for each figure)."""
    days = {d: {"conversations": 0, "contained": 0, "handoffs": 0, "user_turns": 0,
                "fallbacks": 0} for d in period.dates}
    opened_by_key: Dict[Tuple[str, str], List[float]] = {}
    for ticket in rows.opened:
        day = period.day_of(ticket.created_at)
        if day is None:  # pragma: no cover - the query selects the period
            continue
        opened_by_key.setdefault((ticket.channel, ticket.sender_id), []).append(
            ticket.created_at.timestamp())
        days[day]["handoffs"] += 1
    for conversation in tracker.conversations:
        day = period.day_of_timestamp(conversation.started)
        if day is None:
            continue
        days[day]["conversations"] += 1
        opened = opened_by_key.get((conversation.key.channel, conversation.key.sender), [])
        if not any(conversation.started <= at < conversation.until for at in opened):
            days[day]["contained"] += 1
    for timestamp in tracker.turns:
        day = period.day_of_timestamp(timestamp)
        if day is not None:
            days[day]["user_turns"] += 1
    low_confidence = 0
    for message in tracker.flagged:
        day = period.day_of_timestamp(message.timestamp)
        if day is None:
            continue
        if review.FALLBACK in message.reasons:
            days[day]["fallbacks"] += 1
        if review.LOW_CONFIDENCE in message.reasons:
            low_confidence += 1
    total = {key: sum(d[key] for d in days.values())
             for key in ("conversations", "contained", "handoffs", "user_turns", "fallbacks")}

    categories = Counter(t.category for t in rows.opened)
    waits, handling, overdue = _ticket_times(rows, period)
    scores = [s.score for s in rows.scores]
    agents = _agents(rows, now=now, accounts=accounts or {})
    return {
        "days": period.days,
        "timezone": period.timezone,
        "start": period.local(period.start),
        "end": period.local(period.end),
        "generated_at": period.local(now),
        "conversations": total["conversations"],
        "contained": total["contained"],
        "containment_rate": _rate(total["contained"], total["conversations"]),
        "user_turns": total["user_turns"],
        "fallbacks": total["fallbacks"],
        "fallback_rate": _rate(total["fallbacks"], total["user_turns"]),
        "low_confidence": low_confidence,
        "handoffs": {
            "total": total["handoffs"],
            "by_reason": [
                {"category": c, "label": CATEGORY_LABELS.get(c, c), "count": n}
                for c, n in sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
        },
        "wait": _durations(waits),
        "handling": _durations(handling),
        "csat": {
            "count": len(scores),
            "average": round(sum(scores) / len(scores), 2) if scores else None,
            "distribution": {str(s): scores.count(s) for s in range(1, 6)},
        },
        "overdue": {"in_period": len(overdue), "now": rows.overdue_now},
        "queued_now": rows.queued_now,
        "agents": {"online": sum(a["online"] for a in agents), "list": agents,
                   "window_seconds": settings.current().desk_presence_seconds},
        "by_day": [{"date": d.isoformat(), **counts} for d, counts in days.items()],
        "unanswered": _unanswered(tracker.flagged, period, similarity=similarity),
    }


async def collect(
    *,
    wallet: WalletService,
    tracker_url: str,
    days: int,
    accounts: Optional[Mapping[str, Any]] = None,
    now: Optional[datetime] = None,
    timezone: Optional[str] = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    similarity: float = DEFAULT_THRESHOLD,
) -> Dict[str, Any]:
    """The report of the last ``days`` days (the dashboard's JSON, the CLI's figures).

    The database and the tracker store are read, and the texts grouped, off the
    event loop.

    Args:
        wallet: The wallet DB.
        tracker_url: SQLAlchemy URL of Rasa's tracker store (TRACKER_DB_URL).
        days: 1 (today) to :data:`MAX_DAYS`.
        accounts: Agents by login (``name``, ``max_tickets``), for the names.
        now: The current time (tests); timezone: the service time zone
            (settings ``service_timezone`` by default).

    Raises:
        ValueError: Bad ``days``.
        TrackerUnavailable: The tracker store cannot be read.
        WalletUnavailable: The wallet DB failed.
    """
    if timezone is None:
        from walletbot import settings

        timezone = settings.current().service_timezone
    now = now or datetime.now(tz.utc)
    period = Period.ending_today(days, now=now, timezone=timezone)
    rows = await wallet.run(report_rows, start=period.start, end=period.end)

    def from_tracker() -> Dict[str, Any]:
        events = read_events(tracker_url, since=(period.start - TRACKER_LOOKBACK).timestamp())
        tracker = tracker_rows(events, min_confidence=min_confidence)
        return figures(period, rows, tracker, now=now, accounts=accounts, similarity=similarity)

    return await asyncio.get_running_loop().run_in_executor(None, from_tracker)


def write_review_export(
    *, tracker_url: str, since: float, path: Path,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE, similarity: float = DEFAULT_THRESHOLD,
) -> Path:
    """Writes the file ``walletbot review`` writes (messages since ``since``) to ``path``.

    Raises:
        TrackerUnavailable: The tracker store cannot be read.
    """
    from walletbot.trainer import review_file

    flagged = review.flag_messages(read_events(tracker_url, since=since),
                                   min_confidence=min_confidence)
    items = review.group_items(review.aggregate(flagged), similarity=similarity)
    return review_file.write(items, path=path)
