"""What one desk poll of a ticket's transcript costs against the conversation's length.

The desk's console polls ``GET api/tickets/<id>`` every 2 s per agent, and that
reads the conversation for its transcript. Before: Rasa's whole-session
retrieve and ``current_state(AFTER_RESTART)``; now: ``recent_events`` (the
newest events and one indexed read for the pause state). Both run side by side
on the same SQLite tracker store, in-process, over conversations of growing
length; the figure is the median of ``--repeat`` reads.

    . scripts/env.sh && .venv/bin/python bench/desk_poll.py [--lengths 100,500,2000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rasa.shared.core.domain import Domain  # noqa: E402
from rasa.shared.core.events import (  # noqa: E402
    ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered)
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity  # noqa: E402

from walletbot.desk.relay import RECENT_EVENTS  # noqa: E402
from walletbot.rasa_compat.trackerstore import ThreadedSQLTrackerStore  # noqa: E402

DOMAIN = Domain.from_dict({"intents": ["greet"], "slots": {
    "order_id": {"type": "text", "mappings": [{"type": "custom"}]}}})


def conversation(sender: str, events: int) -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, DOMAIN.slots)
    stamp = time.time() - events
    for event in (ActionExecuted("action_session_start"), SessionStarted()):
        event.timestamp = stamp
        tracker.update(event)
    n = 0
    while len(tracker.events) < events:
        for event in (ActionExecuted("action_listen"),
                      UserUttered(f"我的订单{n}怎么还没到账", {"name": "greet", "confidence": 0.9}),
                      SlotSet("order_id", f"WD2026{n:08d}"), ActionExecuted("utter_greet"),
                      BotUttered(f"订单{n}正在处理中，请耐心等待")):
            stamp += 0.001
            event.timestamp = stamp
            tracker.update(event)
        n += 1
    return tracker


async def median_ms(read, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await read()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def main_async(lengths, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = ThreadedSQLTrackerStore(domain=DOMAIN, host=f"sqlite:///{folder}/t.db",
                                        cache_events=0)
        print(f"desk transcript read, median of {repeat} (ms); recent_events reads "
              f"{RECENT_EVENTS} events at most")
        print(f"{'events':>7} {'whole tracker':>14} {'recent_events':>14} {'ratio':>6}")
        for length in lengths:
            sender = f"c{length}"
            await store.save(conversation(sender, length))

            async def whole() -> None:
                tracker = await store.retrieve(sender)
                tracker.current_state(EventVerbosity.AFTER_RESTART)
                tracker.is_paused()

            async def recent() -> None:
                await store.recent_events(sender, RECENT_EVENTS)

            before, after = await median_ms(whole, repeat), await median_ms(recent, repeat)
            print(f"{length:>7} {before:>14.1f} {after:>14.1f} {after / before:>6.2f}")
        store.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="100,500,2000")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main_async([int(x) for x in args.lengths.split(",")], args.repeat))


if __name__ == "__main__":
    main()
