"""Service-level targets of the human desk, from ``DESK_SLA_*`` (see walletbot/settings.py).

Read by the desk's timers (walletbot/desk/sla.py) and by the action server,
which tells the user the estimated wait at handoff. Bad values are refused
with the variable's name, so a typo stops the server at start-up instead of
silently switching a timer off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

# Suffix of DESK_SLA_<SUFFIX> (lower case), as in Settings.sla, and its meaning for errors.
_KEYS = {
    "queue_minutes": ("three positive numbers of minutes for urgent,high,normal tickets, "
                      "e.g. 5,15,30"),
    "reply_minutes": "a positive number of minutes, e.g. 10",
    "wait_notice_minutes": "a positive number of minutes, e.g. 5",
    "tick_seconds": "a number of seconds from 0.05 to 600, e.g. 15",
    "fallback_minutes": "a positive number of minutes, e.g. 5",
}
MAX_TICK_SECONDS = 600.0
MIN_TICK_SECONDS = 0.05


def duration_text(minutes: float) -> str:
    """``"10 分钟"``; under a minute in seconds (tests run with seconds)."""
    if minutes < 1:
        return f"{max(1, round(minutes * 60))} 秒"
    return f"{minutes:g} 分钟"


@dataclass(frozen=True)
class ServiceLevels:
    """The desk's targets and timer settings.

    Attributes:
        queue_minutes: Minutes a queued ticket may wait for an agent, for
            priority 1 (urgent), 2 (high) and 3 (normal); past it the ticket
            is overdue.
        reply_minutes: Minutes a claimed ticket may go without its agent's
            first reply before it returns to the queue.
        wait_notice_minutes: Least minutes between two wait updates to a user.
        tick_seconds: How often the timers run (each replica; one fires each timer).
        fallback_minutes: Handling minutes per ticket assumed for the wait
            estimate while there is too little recent history (a placeholder:
            the sources give no figure).
    """

    queue_minutes: Tuple[float, float, float] = (5.0, 15.0, 30.0)
    reply_minutes: float = 10.0
    wait_notice_minutes: float = 5.0
    tick_seconds: float = 15.0
    fallback_minutes: float = 5.0

    def queue_target(self, priority: int) -> timedelta:
        """How long a ticket of this priority may wait in the queue."""
        index = min(max(int(priority), 1), 3) - 1
        return timedelta(minutes=self.queue_minutes[index])

    @property
    def queue_targets(self) -> Dict[int, timedelta]:
        """``{priority: target}`` for priorities 1 to 3."""
        return {priority: self.queue_target(priority) for priority in (1, 2, 3)}

    @property
    def reply_target(self) -> timedelta:
        """How long a claim may stay without the agent's reply."""
        return timedelta(minutes=self.reply_minutes)

    @property
    def wait_notice_interval(self) -> timedelta:
        """Least time between two wait updates to one user."""
        return timedelta(minutes=self.wait_notice_minutes)

    @classmethod
    def parse(cls, values: Mapping[str, Any], *, names: Optional[Mapping[str, str]] = None,
              base: Optional["ServiceLevels"] = None) -> "ServiceLevels":
        """Levels from ``values`` by key (``queue_minutes`` …); missing or blank keys keep ``base``.

        Args:
            values: Raw values (strings from the environment, or numbers).
            names: What to call each key in an error (e.g. ``DESK_SLA_QUEUE_MINUTES``).
            base: The values of keys not given (the defaults by default).

        Raises:
            ValueError: A value is not what its key needs; the message names it.
        """
        base = base or cls()
        names = names or {}
        found: Dict[str, Any] = {}
        for key, meaning in _KEYS.items():
            raw = values.get(key)
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            parse: Callable[[Any], Any] = _minutes_triple if key == "queue_minutes" else _number
            value = parse(raw)
            if value is None or (key == "tick_seconds" and not
                                 MIN_TICK_SECONDS <= value <= MAX_TICK_SECONDS):
                raise ValueError(f"{names.get(key, key)} must be {meaning} (got {raw!r})")
            found[key] = value
        return cls(**{key: found.get(key, getattr(base, key)) for key in _KEYS})

    @classmethod
    def from_settings(cls, config: Any) -> "ServiceLevels":
        """The levels of a :class:`walletbot.settings.Settings` (its ``sla`` values)."""
        return cls.parse(config.sla, names={key: f"DESK_SLA_{key.upper()}" for key in _KEYS})

    @classmethod
    def current(cls) -> "ServiceLevels":
        """The levels the environment sets now (config/dev.env outside production)."""
        from walletbot import settings

        return cls.from_settings(settings.current())

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any]) -> "ServiceLevels":
        """The environment's levels, with ``sla_<key>`` credentials (tests) over them."""
        given = {key: credentials.get(f"sla_{key}") for key in _KEYS}
        return cls.parse(given, names={key: f"sla_{key}" for key in _KEYS}, base=cls.current())


def _number(raw: Any) -> Optional[float]:
    if isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _minutes_triple(raw: Any) -> Optional[Tuple[float, float, float]]:
    parts = raw.split(",") if isinstance(raw, str) else raw
    try:
        numbers = tuple(_number(part.strip() if isinstance(part, str) else part) for part in parts)
    except TypeError:
        return None
    if len(numbers) != 3 or any(n is None for n in numbers):
        return None
    return numbers  # type: ignore[return-value]


def service_level_problem(config: Any) -> Optional[str]:
    """Why the ``DESK_SLA_*`` values of ``config`` are refused, or None."""
    try:
        ServiceLevels.from_settings(config)
    except ValueError as error:
        return str(error)
    return None
