"""Prometheus metrics of the Rasa servers and the action server, and their listener.

Every metric is defined here; the code that sees an event calls one of the
small ``record`` functions below (one line at the event). Labels are bounded:
a channel (``rest``, ``web``, ``wechat``), a turn outcome, a handoff reason
(a ticket category), an action name the action server registered, a reason
from a fixed list. Never a sender id or any text. README, "Metrics", lists
every name.

Where they are served: each process runs its own listener, a
``prometheus_client`` HTTP server in a thread on ``METRICS_HOST:METRICS_PORT``
(the action server: ``ACTION_METRICS_PORT``), 127.0.0.1 by default. A
separate listener rather than a ``/metrics`` route on the Rasa port, because

- nginx proxies path prefixes of the Rasa port to the replicas: a route there
  is one ``location`` edit away from being public, and a port nginx never
  proxies to cannot be;
- it is the same for both kinds of server (the action server's Sanic app is
  Rasa SDK's, with no place for our routes);
- a scrape never waits behind turns on the event loop, and the queue figures'
  database read happens in the scrape's own thread, never on the loop.

With two replicas each has its own port (``METRICS_PORT``, ``METRICS_PORT_2``
in config/prod/prod.env). Nothing here runs at import time but defining the
metrics; the listener and the queue collector start in
:mod:`walletbot.ops.observe`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Collection, Iterator, Optional, Tuple

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

from walletbot.store.queue_stats import QueueFigures
from walletbot.store.rows import CHANNELS, TICKET_CATEGORIES

logger = logging.getLogger(__name__)

# How a message left the turn pipeline (walletbot/turns/pipeline.py).
OUTCOMES = ("answered", "paused", "refused", "rate_limited", "failed")
# Outcomes that ran (or tried) the bot: the latency histogram's turns.
TIMED_OUTCOMES = ("answered", "failed")
# Why a WeChat answer went out through the customer-service API.
WECHAT_REASONS = ("over_budget", "long_reply")
FALLBACK_INTENT = "nlu_fallback"
OTHER = "other"

TURNS = Counter(
    "walletbot_turns", "User messages handled by the turn pipeline, by channel and outcome.",
    ["channel", "outcome"])
# 10 ms (a refused or cached turn) to 10 s (WeChat's budget is 4 s).
TURN_SECONDS = Histogram(
    "walletbot_turn_duration_seconds",
    "Time from a message entering the turn pipeline to its answer, for turns that ran the bot.",
    ["channel"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
NLU_FALLBACKS = Counter(
    "walletbot_nlu_fallbacks", "User messages the NLU did not understand (intent nlu_fallback).",
    ["channel"])
HANDOFFS_OPENED = Counter(
    "walletbot_handoffs_opened", "Handoff tickets opened (action server), by channel and reason.",
    ["channel", "reason"])
HANDOFFS_RESOLVED = Counter(
    "walletbot_handoffs_resolved", "Handoff tickets an agent resolved on the desk, by channel.",
    ["channel"])
ACTION_ERRORS = Counter(
    "walletbot_action_errors", "Custom actions that raised in the action server, by action.",
    ["action"])
RATE_LIMITED = Counter(
    "walletbot_rate_limited_messages",
    "Messages refused by the per-conversation rate limit, by channel.", ["channel"])
# 1 ms to 5 s: waiting for one of the process's turn slots (walletbot/rasa_compat/admission.py).
TURN_QUEUE_SECONDS = Histogram(
    "walletbot_turn_queue_seconds",
    "Time a user turn waited for one of the process's turn slots (TURN_CONCURRENCY).",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
WECHAT_API_REPLIES = Counter(
    "walletbot_wechat_customer_service_replies",
    "WeChat answers that needed the customer-service API: over the reply budget, or too "
    "long for one passive reply.", ["reason"])


def _channel(channel: Any) -> str:
    return channel if channel in CHANNELS else OTHER


# --- turns ---------------------------------------------------------------------


@dataclass
class Turn:
    """The turn the running task handles (for its outcome and NLU result)."""

    channel: str
    started: float
    outcome: str = "answered"

    def seconds(self) -> float:
        """Seconds since the message entered the pipeline."""
        return time.perf_counter() - self.started


_TURN: ContextVar[Optional[Turn]] = ContextVar("walletbot_metrics_turn", default=None)


@contextlib.contextmanager
def turn(channel: str) -> Iterator[Turn]:
    """Counts and times one message through the pipeline (outcome: ``answered`` unless told)."""
    record = Turn(_channel(channel), time.perf_counter())
    token = _TURN.set(record)
    try:
        yield record
    except BaseException:
        record.outcome = "failed"
        raise
    finally:
        _TURN.reset(token)
        TURNS.labels(record.channel, record.outcome).inc()
        if record.outcome in TIMED_OUTCOMES:
            TURN_SECONDS.labels(record.channel).observe(time.perf_counter() - record.started)


def turn_outcome(outcome: str) -> None:
    """Sets the current turn's outcome (one of :data:`OUTCOMES`)."""
    record = _TURN.get()
    if record is not None and outcome in OUTCOMES:
        record.outcome = outcome


def rate_limited(channel: str) -> None:
    """A message over its conversation's rate limit."""
    RATE_LIMITED.labels(_channel(channel)).inc()
    turn_outcome("rate_limited")


def parsed(intent: Optional[str]) -> None:
    """The NLU's intent for the current turn's message (Rasa's processor, via rasa_compat)."""
    record = _TURN.get()
    if record is not None and intent == FALLBACK_INTENT:
        NLU_FALLBACKS.labels(record.channel).inc()


def turn_admitted(waited: float) -> None:
    """A user turn got its slot after ``waited`` seconds in the queue."""
    TURN_QUEUE_SECONDS.observe(waited)


# --- handoffs, actions, WeChat ---------------------------------------------------


def handoff_opened(channel: str, reason: str) -> None:
    """A new handoff ticket (not an escalation that found one open)."""
    HANDOFFS_OPENED.labels(_channel(channel), reason if reason in TICKET_CATEGORIES else OTHER).inc()


def handoff_resolved(channel: str) -> None:
    """An agent resolved a ticket."""
    HANDOFFS_RESOLVED.labels(_channel(channel)).inc()


def action_failed(action: Any, known: Collection[str]) -> None:
    """A custom action raised; ``known``: the names the action server registered."""
    ACTION_ERRORS.labels(action if isinstance(action, str) and action in known else "unknown").inc()


def wechat_customer_service_reply(reason: str) -> None:
    """A WeChat answer (or its rest) sent through the customer-service API."""
    WECHAT_API_REPLIES.labels(reason if reason in WECHAT_REASONS else OTHER).inc()


def initialise(*, action_server: bool) -> None:
    """Creates every series this process can report at 0, so rates start from a sample."""
    if action_server:
        for channel in CHANNELS:
            for reason in TICKET_CATEGORIES:
                HANDOFFS_OPENED.labels(channel, reason)
        return
    for channel in CHANNELS:
        for outcome in OUTCOMES:
            TURNS.labels(channel, outcome)
        TURN_SECONDS.labels(channel)
        NLU_FALLBACKS.labels(channel)
        RATE_LIMITED.labels(channel)
        HANDOFFS_RESOLVED.labels(channel)
    for reason in WECHAT_REASONS:
        WECHAT_API_REPLIES.labels(reason)


# --- the queue, read at scrape time ---------------------------------------------


class QueueCollector:
    """Queue length and oldest wait, read from the wallet DB when Prometheus scrapes.

    One indexed query, at most once per ``max_age`` seconds (replicas and
    several scrapers share the figures). A DB failure never breaks the scrape:
    ``walletbot_wallet_db_up`` is 0 and the queue gauges are left out (no
    sample is better than a false 0).

    Args:
        read: Returns the figures (blocking; runs in the scrape's thread).
        max_age: Seconds a reading is reused.
        clock: Monotonic seconds; tests pass their own.
        now: The wall clock the wait is measured against.
    """

    def __init__(self, read: Callable[[], QueueFigures], *, max_age: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.read = read
        self.max_age = max_age
        self.clock = clock
        self.now = now
        self._lock = threading.Lock()
        self._cached: Optional[Tuple[float, QueueFigures]] = None
        self._last_warning = float("-inf")

    @staticmethod
    def _families() -> Tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("walletbot_wallet_db_up",
                              "Whether the last read of the queue from the wallet DB worked."),
            GaugeMetricFamily("walletbot_queue_length", "Handoff tickets waiting for an agent."),
            GaugeMetricFamily("walletbot_queue_oldest_wait_seconds",
                              "How long the longest-waiting queued ticket has waited (0: none)."),
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Registering asks for the names: without this it would collect (read the DB).
        return iter(self._families())

    def _figures(self) -> QueueFigures:
        with self._lock:
            at = self.clock()
            if self._cached is not None and at - self._cached[0] < self.max_age:
                return self._cached[1]
            figures = self.read()
            self._cached = (at, figures)
            return figures

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up, length, oldest = self._families()
        try:
            figures = self._figures()
        except Exception as error:  # any DB or driver error: the scrape goes on
            if self.clock() - self._last_warning >= 60:
                self._last_warning = self.clock()
                logger.warning("queue metrics: wallet DB not readable: %s", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        length.add_metric([], figures.length)
        yield length
        waited = 0.0
        if figures.oldest_since is not None:
            waited = max((self.now() - figures.oldest_since).total_seconds(), 0.0)
        oldest.add_metric([], waited)
        yield oldest


_queue_watched = False


def watch_queue(read: Callable[[], QueueFigures], registry: CollectorRegistry = REGISTRY) -> None:
    """Adds the queue gauges to this process's metrics (once)."""
    global _queue_watched
    if not _queue_watched:
        registry.register(QueueCollector(read))
        _queue_watched = True


# --- the listener ----------------------------------------------------------------


def serve(host: str, port: int, registry: CollectorRegistry = REGISTRY) -> Optional[Any]:
    """Starts this process's metrics listener (a daemon thread); None if it could not.

    A taken port costs the metrics, never the bot: it is logged and the server
    starts without them.
    """
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        logger.warning("metrics listener not started on %s:%d: %s", host, port, error)
        return None
    logger.info("metrics on http://%s:%d/metrics", host, port)
    return server
