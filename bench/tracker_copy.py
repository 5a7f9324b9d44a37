"""Tracker copy and applied events: Rasa's replay against walletbot.rasa_compat.trackercopy.

Builds a conversation of ``--turns`` FAQ turns (five events each) on the
project's domain and times, with timeit, Rasa's ``DialogueStateTracker.copy``
and ``applied_events`` against the state copy and the memoised fold, one
after the other in one process (bench/RESULTS.md, sixth round).

    .venv/bin/python bench/tracker_copy.py [--turns 20] [--number 2000]
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()

    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import (
        ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered)
    from rasa.shared.core.trackers import DialogueStateTracker

    from walletbot.rasa_compat import trackercopy

    domain = Domain.load(str(ROOT / "domain.yml"))
    tracker = DialogueStateTracker("rest:bench", domain.slots)
    for event in (ActionExecuted("action_session_start"), SessionStarted(),
                  ActionExecuted("action_listen")):
        tracker.update(event)
    for _ in range(args.turns):
        for event in (UserUttered("怎么提现", {"name": "faq", "confidence": 0.9}),
                      SlotSet("tx_type", "withdraw"), ActionExecuted("utter_faq"),
                      BotUttered("答"), ActionExecuted("action_listen")):
            tracker.update(event)
    copy = getattr(DialogueStateTracker.copy, "__wrapped__", DialogueStateTracker.copy)
    applied = getattr(DialogueStateTracker.applied_events, "__wrapped__",
                      DialogueStateTracker.applied_events)
    ours_copy, ours_applied = trackercopy.state_copy(copy), trackercopy.applied_events(applied)

    def micro(function: object) -> float:
        return timeit.timeit(lambda: function(tracker), number=args.number) / args.number * 1e6

    print(f"{len(tracker.events)} events")
    print("| operation | Rasa µs | walletbot µs | ratio |\n|---|---|---|---|")
    for name, theirs, ours in (("copy()", copy, ours_copy),
                               ("applied_events()", applied, ours_applied)):
        a, b = micro(theirs), micro(ours)
        print(f"| {name} | {a:.0f} | {b:.1f} | {b / a:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
