"""What the operations metrics and logs need from inside Rasa and Rasa SDK.

- Rasa server (:func:`install`, from ``walletbot.rasa_compat.install()``):
  the processor's intent for each logged user message goes to
  :func:`walletbot.ops.metrics.parsed`, which counts NLU fallbacks of the
  turn pipeline's turns (the HTTP API's injected messages have no turn and
  are not counted). Rasa keeps the parse inside
  ``MessageProcessor._handle_message_with_tracker``; nothing outside sees it.
- Action server (:func:`install_sdk`, from walletbot/server.py): every
  action call runs with the conversation id and turn id in the log context
  (walletbot/ops/logs.py), and an action that raises is counted by name and
  logged by name, exception type and place. ``ActionExecutionRejection`` (a
  form rejecting its slot) and an unknown action name are Rasa SDK's normal
  answers, not errors of an action.

  Rasa SDK's own error handler answers a failed call with the request body
  echoed back (``request_body``: the whole tracker, the user's messages
  included), and the Rasa server logs that answer at ERROR as the cause of
  the failure. Through the SDK's plugin hook for its Sanic app, the action
  server answers ``{"error": "<exception type>"}`` instead.

The wrappers keep the original as ``__wrapped__``.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import PurePath
from typing import Any, Dict, Optional, Tuple

import pluggy

logger = logging.getLogger(__name__)

_installed = {"rasa": False, "sdk": False}


def install() -> None:
    """Rasa server: the NLU result of each turn's message reaches the metrics. Idempotent."""
    if _installed["rasa"]:
        return
    from rasa.core.processor import MessageProcessor

    MessageProcessor._handle_message_with_tracker = _reporting_intent(  # type: ignore[assignment]
        MessageProcessor._handle_message_with_tracker)
    _installed["rasa"] = True


def _reporting_intent(original: Any) -> Any:
    from walletbot.ops import metrics

    async def _handle_message_with_tracker(self: Any, message: Any, tracker: Any) -> None:
        await original(self, message, tracker)
        latest = getattr(tracker, "latest_message", None)
        metrics.parsed((getattr(latest, "intent", None) or {}).get("name"))

    _handle_message_with_tracker.__wrapped__ = original  # type: ignore[attr-defined]
    return _handle_message_with_tracker


def ids_of(action_call: Any) -> Tuple[Optional[str], Optional[str]]:
    """``(conversation id, turn id)`` of an action call: the tracker's sender and latest user message."""
    tracker = action_call.get("tracker") if isinstance(action_call, dict) else None
    if not isinstance(tracker, dict):
        return None, None
    sender = tracker.get("sender_id")
    turn = None
    for event in reversed(tracker.get("events") or []):
        if isinstance(event, dict) and event.get("event") == "user":
            turn = event.get("message_id")
            break
    return (sender if isinstance(sender, str) else None,
            turn if isinstance(turn, str) else None)


def install_sdk() -> None:
    """Action server: log context per call, errors counted, no request echoed. Idempotent."""
    if _installed["sdk"]:
        return
    from rasa_sdk.executor import ActionExecutor
    from rasa_sdk.plugin import plugin_manager

    ActionExecutor.run = _observed(ActionExecutor.run)  # type: ignore[assignment]
    manager = plugin_manager()
    if not manager.has_plugin(_SDK_PLUGIN):
        manager.register(_SdkApp(), name=_SDK_PLUGIN)
    _installed["sdk"] = True


def _place(error: BaseException) -> str:
    """``file:line in function`` where ``error`` was raised (code, never data)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{'/'.join(PurePath(last.filename).parts[-2:])}:{last.lineno} in {last.name}"


async def _failed_call(request: Any, exception: BaseException) -> Any:
    from sanic import response
    from sanic.exceptions import SanicException

    if isinstance(exception, SanicException):  # 400, 404, 405...: their status and reason
        return response.json({"error": str(exception)}, status=exception.status_code)
    return response.json({"error": type(exception).__name__}, status=500)


class _SdkApp:
    """Rasa SDK's hook for its Sanic app: the error answer without the request echoed."""

    @pluggy.HookimplMarker("rasa_sdk")
    def attach_sanic_app_extensions(self, app: Any) -> None:
        # Registered after Rasa SDK's own handler of Exception, so it replaces it.
        app.exception(Exception)(_failed_call)


_SDK_PLUGIN = "walletbot-action-errors"


def _observed(original: Any) -> Any:
    from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException

    from walletbot.conversation import ConversationId
    from walletbot.ops import logs, metrics

    async def run(self: Any, action_call: Dict[str, Any]) -> Any:
        sender, turn = ids_of(action_call)
        parsed = ConversationId.parse(sender)
        name = action_call.get("next_action") if isinstance(action_call, dict) else None
        with logs.context(conversation_id=sender, turn_id=turn,
                          channel=parsed.channel if parsed else None):
            try:
                return await original(self, action_call)
            except (ActionExecutionRejection, ActionNotFoundException):
                raise
            except Exception as error:
                metrics.action_failed(name, self.actions)
                # Type and place, not the exception's text: it can quote the tracker.
                logger.error("action %s raised %s at %s",
                             name if name in self.actions else "unknown",
                             type(error).__name__, _place(error))
                logger.debug("action failure detail", exc_info=True)
                raise

    run.__wrapped__ = original  # type: ignore[attr-defined]
    return run
