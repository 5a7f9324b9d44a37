"""The queue as the operations metrics see it: how many tickets wait, since when.

Read by the Prometheus scrape of a Rasa server (walletbot/ops/metrics.py),
so it is one query over the ``status`` index. Same conventions as
:mod:`walletbot.store.tickets`: keyword-only, ``conn`` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from walletbot.store.schema import UTCDateTime, tickets


@dataclass(frozen=True)
class QueueFigures:
    """Tickets waiting for an agent, and when the longest-waiting one entered the queue."""

    length: int
    oldest_since: Optional[datetime]


def queue_figures(*, conn: Connection) -> QueueFigures:
    """The queue now (a requeued ticket waits since it went back: ``queued_at``)."""
    since = sa.func.coalesce(tickets.c.queued_at, tickets.c.created_at, type_=UTCDateTime())
    length, oldest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(since, type_=UTCDateTime()))
        .where(tickets.c.status == "queued")
    ).one()
    return QueueFigures(length=int(length or 0), oldest_since=oldest)
