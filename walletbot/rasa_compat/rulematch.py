"""RulePolicy's rule matching, memoised on the states that can decide it.

Every prediction, RulePolicy runs ``_find_action_from_rules`` twice (once on
the user's text, once on the intent), and each run filters every memorised
rule against every state of the conversation (``_get_possible_keys``): 77
rules times about 45 states in a 20-turn conversation, 0.3 ms a run, the
largest part of the policy's 17 % of the Rasa process's CPU under load
(bench/pyspy_profile.py --gil). A rule of n states only looks at the
conversation's last n states (``_is_rule_applicable`` is true for any turn
further back), so the set of applicable rules is a function of the last L
states, L the longest rule of the lookup. It is kept per lookup in a bounded
LRU keyed on those L states, frozen; a conversation's states repeat from turn
to turn, so nearly every run is a hit. States that cannot be frozen (a value
that is not hashable) are matched as before, uncached.

Each call returns a new set, as Rasa's does. Which of several applicable
rules of equal length Rasa picks depends on set iteration order, which
depends on string hashes (random per process): that choice was arbitrary
before and is no more so now.

The same run formats the whole state list for a debug log line, and deep
copies it, whether or not debug logging is on (``format_tracker_states``, 0.1
ms). RulePolicy's only use of it is that log line, so with the rule policy's
logger below DEBUG it returns an empty list instead; with debug logging on,
the line is the same as before.
"""

from __future__ import annotations

import collections
import json
import logging
from typing import Any, Dict, Hashable, List, Optional, Set, Text, Tuple

CACHE_SIZE = 4096

_installed = False


class _Keys:
    """Applicable rule keys of one lookup, by the frozen last ``depth`` states."""

    def __init__(self, lookup: Dict[Text, Text]) -> None:
        self.lookup = lookup  # held: the id below must not be reused
        self.size = len(lookup)
        self.depth = max((len(json.loads(key)) for key in lookup), default=0)
        self.memo: "collections.OrderedDict[Hashable, Set[Text]]" = collections.OrderedDict()

    def get(self, key: Hashable) -> Optional[Set[Text]]:
        found = self.memo.get(key)
        if found is not None:
            self.memo.move_to_end(key)
        return found

    def put(self, key: Hashable, keys: Set[Text]) -> None:
        self.memo[key] = keys
        if len(self.memo) > CACHE_SIZE:
            self.memo.popitem(last=False)


def _frozen(states: List[Dict[Text, Any]]) -> Optional[Tuple[Any, ...]]:
    """The states as a hashable value, equal exactly when the states are; None if not possible."""
    try:
        frozen = tuple(
            tuple(sorted((name, tuple(sorted(sub.items())) if isinstance(sub, dict) else sub)
                         for name, sub in state.items()))
            for state in states)
        hash(frozen)
    except TypeError:  # an unhashable value, or keys that do not sort
        return None
    return frozen


def possible_keys(original: Any) -> Any:
    """Wraps ``RulePolicy._get_possible_keys`` with the memo described above."""

    def _get_possible_keys(self: Any, lookup: Dict[Text, Text],
                           states: List[Dict[Text, Any]]) -> Set[Text]:
        tables: Dict[int, _Keys] = self.__dict__.setdefault("_walletbot_rule_keys", {})
        table = tables.get(id(lookup))
        if table is None or table.lookup is not lookup or table.size != len(lookup):
            table = tables[id(lookup)] = _Keys(lookup)
        tail = states[max(0, len(states) - table.depth):] if table.depth else []
        key = _frozen(tail)
        if key is None:
            return original(self, lookup, states)
        found = table.get(key)
        if found is None:
            found = original(self, lookup, tail)
            table.put(key, found)
        return set(found)

    _get_possible_keys.__wrapped__ = original  # type: ignore[attr-defined]
    return _get_possible_keys


def format_states(original: Any) -> Any:
    """Wraps ``format_tracker_states`` for RulePolicy: nothing to format unless its debug log is on."""
    logger = logging.getLogger("rasa.core.policies.rule_policy")

    def format_tracker_states(states: List[Dict[Text, Any]]) -> List[Text]:
        if logger.isEnabledFor(logging.DEBUG):
            return original(states)
        return []

    format_tracker_states.__wrapped__ = original  # type: ignore[attr-defined]
    return staticmethod(format_tracker_states)


def install() -> None:
    """Patches both into RulePolicy. Idempotent."""
    global _installed
    if _installed:
        return
    from rasa.core.policies.policy import Policy
    from rasa.core.policies.rule_policy import RulePolicy

    RulePolicy._get_possible_keys = possible_keys(  # type: ignore[assignment]
        RulePolicy._get_possible_keys)
    RulePolicy.format_tracker_states = format_states(  # type: ignore[assignment]
        Policy.format_tracker_states)
    _installed = True
