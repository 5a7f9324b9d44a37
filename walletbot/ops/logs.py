"""Structured logs: one JSON object a line, with the conversation and turn ids.

``LOG_FORMAT=json`` (the production default; development keeps Rasa's text
lines) gives every log line of the Rasa server and of the action server the
fields ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` and, when
the line belongs to a turn, ``conversation_id``, ``turn_id`` and ``channel``
(plus ``exception`` for a traceback). The ids come from a context variable:
the turn pipeline sets it for each user message (:func:`context`), the action
server for each action call (walletbot/rasa_compat/observe.py); the turn id
is the user message's id in the tracker, so one id follows a turn from the
Rasa server into the action server.

No message text is logged above DEBUG (walletbot's own log calls name kinds
and ids, never what was written), and every line still goes through
:func:`walletbot.privacy.mask_pii`, so a card number that reached a log call
anyway (an exception's text, a library's message) is masked.

Rasa's CLI sets up logging itself (coloredlogs on the root logger, Sanic's own
handlers), after walletbot's entry point has run; :func:`use_json` therefore
hooks in right after they have: Rasa's plugin hook ``configure_commandline``
(run once its CLI configured logging), Rasa SDK's ``configure_colored_logging``
(the action server's second set-up), and Sanic's logging defaults, which the
Rasa server's Sanic app applies when it is built.
"""

from __future__ import annotations

import contextlib
import json
import logging
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, Optional

import pluggy

from walletbot.privacy import mask_pii

SANIC_LOGGERS = ("sanic.root", "sanic.error", "sanic.access")
_PLUGIN_NAME = "walletbot-json-logs"


@dataclass(frozen=True)
class LogContext:
    """What a log line of a turn carries."""

    conversation_id: Optional[str] = None
    turn_id: Optional[str] = None
    channel: Optional[str] = None


_CONTEXT: ContextVar[LogContext] = ContextVar("walletbot_log_context", default=LogContext())


def current() -> LogContext:
    """The running task's log context (empty outside a turn)."""
    return _CONTEXT.get()


@contextlib.contextmanager
def context(*, conversation_id: Optional[str], turn_id: Optional[str],
            channel: Optional[str] = None) -> Iterator[LogContext]:
    """Log lines inside carry these ids (this task and the tasks it starts)."""
    value = LogContext(conversation_id, turn_id, channel)
    token = _CONTEXT.set(value)
    try:
        yield value
    finally:
        _CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        line: Dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_pii(record.getMessage()),
        }
        ids = current()
        for key in ("conversation_id", "turn_id", "channel"):
            value = getattr(ids, key)
            if value is not None:
                line[key] = value
        # Sanic's access records: method and path only (a query string can hold a token).
        request = getattr(record, "request", None)
        if isinstance(request, str):
            line["request"] = request.split("?", 1)[0]
            line["status"] = getattr(record, "status", None)
        if record.exc_info:
            line["exception"] = mask_pii(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = mask_pii(record.exc_text)
        return json.dumps(line, ensure_ascii=False, default=str)


def json_everywhere() -> None:
    """Every handler of the root logger and of Sanic's loggers formats JSON from now on."""
    formatter = JsonFormatter()
    logging.captureWarnings(True)  # Python's warnings become log lines too
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(formatter)
    for name in SANIC_LOGGERS:
        sanic_logger = logging.getLogger(name)
        for handler in sanic_logger.handlers:
            handler.setFormatter(formatter)
        if not sanic_logger.handlers:
            # Rasa SDK cuts them off from the root (propagate False) without a handler
            # of their own: their lines would reach stderr through logging's last resort.
            sanic_logger.propagate = True


def _sanic_defaults_to_json() -> None:
    # The Rasa server's Sanic app applies these (dictConfig) when Rasa builds it,
    # after the CLI hook below has run; the dict is changed in place because
    # sanic.app imported it by name.
    from sanic.log import LOGGING_CONFIG_DEFAULTS

    for formatter in LOGGING_CONFIG_DEFAULTS.get("formatters", {}).values():
        formatter.clear()
        formatter["()"] = f"{__name__}.JsonFormatter"


class _RasaHooks:
    """Rasa's plugin hook that runs right after its CLI configured logging."""

    @pluggy.HookimplMarker("rasa")
    def configure_commandline(self, cmdline_arguments: Any) -> None:
        json_everywhere()
        return None  # not an endpoints file (Rasa takes the first non-None answer)


def _then_json(configure: Any) -> Any:
    def configure_colored_logging(*args: Any, **kwargs: Any) -> None:
        configure(*args, **kwargs)
        json_everywhere()

    configure_colored_logging.__wrapped__ = configure  # type: ignore[attr-defined]
    return configure_colored_logging


def use_json(*, action_server: bool) -> None:
    """JSON log lines for this server process, from the moment Rasa's CLI has set up logging.

    ``rasa run actions`` goes through Rasa's CLI too (so the hook runs), then
    Rasa SDK installs coloredlogs again: its ``configure_colored_logging``
    (looked up on its module when called) is followed by the same switch.
    """
    _sanic_defaults_to_json()
    from rasa.plugin import plugin_manager

    manager = plugin_manager()
    if not manager.has_plugin(_PLUGIN_NAME):
        manager.register(_RasaHooks(), name=_PLUGIN_NAME)
    if action_server:
        from rasa_sdk import utils as sdk_utils

        if not hasattr(sdk_utils.configure_colored_logging, "__wrapped__"):
            sdk_utils.configure_colored_logging = _then_json(sdk_utils.configure_colored_logging)
