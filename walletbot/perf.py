"""Speed-ups for hot paths inside Rasa 3.6, installed explicitly at server start.

``Event.resolve_by_type`` walks every ``Event`` subclass recursively for each
event it deserialises; a tracker is rebuilt from all its events on every
turn, so this alone took about a fifth of a turn's time in a 150-turn
conversation (measured with cProfile, see bench/RESULTS.md). The lookup is
memoised per type name; a name not found yet is looked up again next time,
so event classes imported later are still found.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

_installed = False


def install() -> None:
    """Memoises ``rasa.shared.core.events.Event.resolve_by_type``. Idempotent."""
    global _installed
    if _installed:
        return
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
    _installed = True
