"""Service hours of the human agents (configurable; the sources give none)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Optional
from zoneinfo import ZoneInfo

_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class ServiceHours:
    """Daily hours when agents answer, in one time zone.

    ``start == end`` (e.g. ``00:00-24:00``) means around the clock.
    """

    start: time
    end: Optional[time]  # None: until midnight
    tz: ZoneInfo

    @classmethod
    def parse(cls, spec: str, tz: str = "Asia/Shanghai") -> "ServiceHours":
        """``"09:00-21:00"`` (or ``"00:00-24:00"``) in the zone ``tz``.

        Raises:
            ValueError: The spec is not ``HH:MM-HH:MM`` or the zone is unknown.
        """
        match = _SPAN.match(spec or "")
        if not match:
            raise ValueError(f"service hours {spec!r}: expected HH:MM-HH:MM, e.g. 09:00-21:00")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if not (0 <= h1 < 24 and 0 <= m1 < 60 and 0 <= h2 <= 24 and 0 <= m2 < 60) or (
            h2 == 24 and m2
        ):
            raise ValueError(f"service hours {spec!r}: times out of range")
        try:
            zone = ZoneInfo(tz)
        except Exception:
            raise ValueError(f"unknown time zone {tz!r}, e.g. Asia/Shanghai") from None
        return cls(start=time(h1, m1), end=None if h2 == 24 else time(h2, m2), tz=zone)

    @property
    def always_open(self) -> bool:
        """Whether agents answer around the clock."""
        return self.start == time(0, 0) and self.end is None

    def is_open(self, now: datetime) -> bool:
        """Whether agents answer at ``now`` (timezone-aware)."""
        local = now.astimezone(self.tz).time()
        if self.end is None:
            return local >= self.start
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # spans midnight

    def next_opening(self, now: datetime) -> datetime:
        """When agents next start answering (``now`` if open)."""
        if self.is_open(now):
            return now
        local = now.astimezone(self.tz)
        opening = local.replace(hour=self.start.hour, minute=self.start.minute,
                                second=0, microsecond=0)
        if opening <= local:
            opening += timedelta(days=1)
        return opening

    def describe(self) -> str:
        """E.g. ``"每天 09:00–21:00"``."""
        end = "24:00" if self.end is None else self.end.strftime("%H:%M")
        return f"每天 {self.start.strftime('%H:%M')}–{end}"


def when_text(opening: datetime, now: datetime, tz: ZoneInfo) -> str:
    """``"今天 09:00"`` / ``"明天 09:00"`` in the service time zone."""
    local_open, local_now = opening.astimezone(tz), now.astimezone(tz)
    days = (local_open.date() - local_now.date()).days
    day = {0: "今天", 1: "明天"}.get(days, local_open.strftime("%m月%d日"))
    return f"{day} {local_open.strftime('%H:%M')}"


def utc(dt: datetime) -> datetime:
    """``dt`` in UTC."""
    return dt.astimezone(timezone.utc)
