"""Noticing that a custom action failed during a turn.

Rasa's processor logs, and otherwise swallows, an exception of a custom action
(e.g. the action server is down) and goes on predicting, so the user may get a
misleading follow-up instead of the answer. The failure is caught from that
log record, for the turn (asyncio task context) that caused it.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, List, Optional

_turn_failures: ContextVar[Optional[List[str]]] = ContextVar("walletbot_turn_failures", default=None)
# rasa/core/processor.py, _run_action
_FAILURE_PREFIX = "Encountered an exception while running action"


class _ActionFailureWatch(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        failures = _turn_failures.get()
        message = str(record.msg)
        if failures is not None and message.startswith(_FAILURE_PREFIX):
            failures.append(message)


def watch_action_failures() -> None:
    """Hooks the watch into Rasa's processor log. Idempotent."""
    processor_log = logging.getLogger("rasa.core.processor")
    if not any(isinstance(h, _ActionFailureWatch) for h in processor_log.handlers):
        processor_log.addHandler(_ActionFailureWatch(level=logging.ERROR))


@contextmanager
def action_failures() -> Iterator[List[str]]:
    """The custom-action failures Rasa logs inside this block (this task only)."""
    watch_action_failures()
    failures: List[str] = []
    token = _turn_failures.set(failures)
    try:
        yield failures
    finally:
        _turn_failures.reset(token)
