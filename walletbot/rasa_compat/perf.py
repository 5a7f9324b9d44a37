"""Speed-ups for hot paths inside Rasa 3.6, installed explicitly at server start.

``install()`` is called by ``walletbot.rasa_compat.install()`` from the server
entry point (``python -m walletbot.server``, walletbot/server.py), before
Rasa's CLI runs; nothing else installs them.

1. ``Event.resolve_by_type`` walks every ``Event`` subclass recursively for
   each event it deserialises; a tracker is rebuilt from all its events on
   every turn, so this alone took about a fifth of a turn's time in a 150-turn
   conversation (measured with cProfile, see bench/RESULTS.md). The lookup is
   memoised per type name; a name not found yet is looked up again next time,
   so event classes imported later are still found.

2. Garbage collection: a loaded Rasa server holds about half a million Python
   objects (TensorFlow, spaCy, jieba, the model's graph), all of them long
   lived. Every full (generation 2) collection walks all of them, which took
   240-280 ms on the project's machine, about every 10-30 turns: the ~300 ms
   p95/p99 tail of even a bare Rasa server at one user (bench/RESULTS.md).
   Once a model is loaded and in service, the heap is collected once and then
   frozen (``gc.freeze()``: those objects move to a permanent generation that
   the collector no longer scans); objects created later (trackers, requests)
   are collected as before.

   Model swaps (``PUT /model``) free the old model. Frozen objects are still
   freed by reference counting, but a frozen reference cycle never is: had
   the heap stayed frozen, every swap would have kept the old model's cycles
   for good (with the current model, measured: only ~90 objects per swap,
   pykwalify schema rules of Rasa's YAML validation; a model whose objects
   refer to each other, as TensorFlow/Keras ones do, would leave far more;
   tests/walletbot/rasa_compat/test_model_swap.py). So every load starts with
   ``gc.unfreeze()``, and the collect-and-freeze waits until the loaded agent
   is in service: both callers (``rasa.core.run.load_agent_on_start`` at
   start-up, ``PUT /model`` in ``rasa.server``) store the result of
   ``load_agent`` in ``app.ctx.agent`` without an ``await`` in between, so a
   ``loop.call_soon`` callback scheduled as the load returns runs after that
   assignment, when the old agent is no longer referenced and its cycles are
   garbage. A failed load freezes again too (the old model keeps serving).
   Objects still alive at that moment (a request still running on the old
   model, open connections) are frozen with the rest and freed at the next
   load's unfreeze at the latest: the permanent generation never holds more
   than one freeze's worth of survivors. While a model loads (a second or
   so), the heap is not frozen; collecting all of it once makes a swap about
   0.4 s slower (measured with the current model: 0.45-0.7 s before, 0.8-1.1 s
   now), a fair price for a rare operation.

3. Every action-server response is checked against Rasa's response schema
   with ``jsonschema.validate``, which first validates the (constant) schema
   itself against the JSON-Schema meta-schema and builds a new validator:
   about 20 % of the server's main-thread samples in a lookup-heavy benchmark
   (py-spy), most of it in the meta-schema check. The schema is now
   checked and its validator built once per action class; every response is
   still validated the same way and an invalid one raises the same
   ``ValidationError`` with the same message. Each event is checked against the
   one branch of the event schema its ``event`` names (``_EventDispatch``),
   which is equivalent and 0.6 ms an event cheaper.

4. ``Domain.is_empty`` compares the domain with ``Domain.empty()``, which
   builds a whole new domain (default intents, actions, slots and their
   validation) on every call; the processor asks before parsing every
   message (``_check_for_unseen_features``): 0.2 ms, about a tenth of the
   NLU parse. The empty domain's dictionary is built once and compared with
   as before (``as_dict()`` is the domain's stored dictionary).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Type, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

_installed = False
# Model loads currently awaiting (see _freeze_unless_loading).
_loads_in_progress = 0


def freeze_heap() -> int:
    """Collects garbage, then exempts every surviving object from future collections.

    Returns the number of frozen objects.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def freezing_after(load: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Wraps an async model loader: unfreezes the heap first, freezes it once the caller has the result.

    The freeze is a ``call_soon`` callback, so it runs after the code that
    awaited the load has stored the new agent (see the module docstring).
    """
    if getattr(load, "_walletbot_freezes", False):
        return load

    @functools.wraps(load)
    async def unfreeze_load_then_freeze(*args: Any, **kwargs: Any) -> T:
        global _loads_in_progress
        # The model in service was frozen when it was loaded: unfrozen, its
        # reference cycles can be collected once the new model replaces it.
        gc.unfreeze()
        _loads_in_progress += 1
        try:
            return await load(*args, **kwargs)
        finally:
            _loads_in_progress -= 1
            asyncio.get_running_loop().call_soon(_freeze_unless_loading)

    unfreeze_load_then_freeze._walletbot_freezes = True  # type: ignore[attr-defined]
    return unfreeze_load_then_freeze


def _freeze_unless_loading() -> None:
    # A load still awaiting (two PUT /model at once) would have its
    # predecessor frozen while that is being replaced; it freezes when it ends.
    if _loads_in_progress:
        return
    frozen = freeze_heap()
    logger.debug("Froze %d objects after loading the model.", frozen)


def _memoise_resolve_by_type() -> None:
    from rasa.shared.core import events

    original = events.Event.resolve_by_type
    cache: Dict[str, Type[Any]] = {}

    def resolve_by_type(type_name: str, default: Optional[Type[Any]] = None) -> Optional[Type[Any]]:
        found = cache.get(type_name)
        if found is not None:
            return found
        result = original(type_name, default)
        if result is not None and result is not default:
            cache[type_name] = result
        return result

    events.Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[assignment]


class _EventDispatch:
    """A response check that validates each event against its own branch only.

    Rasa's event schema is ``oneOf`` 23 branches, each fixing ``event`` to one
    constant: every event is validated against all 23, about 0.6 ms an event
    (2.4 ms for a form's four-event answer, bench/RESULTS.md). An event whose
    ``event`` equals one branch's constant fails every other branch on that
    constant, so ``oneOf`` holds exactly when the event holds against the
    common part and that one branch. ``valid`` answers True only then (and the
    rest of the response holds): anything it does not answer True for goes
    through the full schema, which decides and words the error.
    """

    def __init__(self, schema: Dict[str, Any], cls: Any) -> None:
        self.outer = None
        self.branches: Dict[str, Any] = {}
        properties = schema.get("properties") or {}
        events = properties.get("events") or {}
        event = events.get("items") or {}
        branches = event.get("oneOf") or []
        constants = [((b.get("properties") or {}).get("event") or {}).get("const")
                     for b in branches]
        if set(events) != {"type", "items"} or events.get("type") != "array" \
                or not branches or any(not isinstance(c, str) for c in constants) \
                or len(set(constants)) != len(constants) \
                or "event" not in event.get("required", []):
            return  # not the shape this was written for: the full schema alone
        common = {key: value for key, value in event.items() if key != "oneOf"}
        self.branches = {constant: cls({**common, "allOf": [branch]})
                         for constant, branch in zip(constants, branches)}
        self.outer = cls({**schema, "properties": {**properties, "events": {"type": "array"}}})

    def valid(self, result: Any) -> bool:
        if self.outer is None or not self.outer.is_valid(result):
            return False
        for event in result.get("events", ()):
            if not isinstance(event, dict):
                return False
            name = event.get("event")
            branch = self.branches.get(name) if isinstance(name, str) else None
            if branch is None or not branch.is_valid(event):
                return False
        return True


def _cache_action_result_validator() -> None:
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    validators: Dict[type, Any] = {}

    def validator(action: RemoteAction) -> Any:
        found = validators.get(type(action))
        if found is None:
            # What jsonschema.validate does on every call.
            schema = action.action_response_format_spec()
            cls = validator_for(schema)
            cls.check_schema(schema)
            found = validators[type(action)] = (cls(schema), _EventDispatch(schema, cls))
        return found

    def _validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
        full, dispatch = validator(self)
        if isinstance(result, dict) and dispatch.valid(result):
            return True
        error = best_match(full.iter_errors(result))
        if error is None:
            return True
        # Rasa's own message (rasa/core/actions/action.py).
        error.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error

    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[assignment]


def _empty_domain_built_once() -> None:
    from rasa.shared.core.domain import Domain

    empty: Dict[str, Any] = {}

    def is_empty(self: Domain) -> bool:
        if not empty:
            empty["data"] = Domain.empty().as_dict()
        return self.as_dict() == empty["data"]

    is_empty.__wrapped__ = Domain.is_empty  # type: ignore[attr-defined]
    Domain.is_empty = is_empty  # type: ignore[assignment]


def _freeze_after_model_load() -> None:
    # `rasa run` loads the model in a before_server_start listener
    # (rasa.core.run.load_agent_on_start) through `rasa.core.agent.load_agent`,
    # looked up at call time; install() runs before Rasa's CLI does anything
    # (walletbot/server.py). PUT /model (rasa.server) uses the same function.
    import rasa.core.agent

    rasa.core.agent.load_agent = freezing_after(rasa.core.agent.load_agent)


def install() -> None:
    """Installs the speed-ups. Idempotent."""
    global _installed
    if _installed:
        return
    _memoise_resolve_by_type()
    _freeze_after_model_load()
    _cache_action_result_validator()
    _empty_domain_built_once()
    _installed = True
