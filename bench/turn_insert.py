"""A kept turn's insert on PostgreSQL: SQLAlchemy's multi-row insert against the precompiled one.

Stores the events of one FAQ turn (five rows, as ``trackerstore._row`` builds
them) ``--number`` times per block, in alternating blocks, on one autocommit
connection, once as last round's statement (``insert().values(rows)
.returning(...)``, compiled by SQLAlchemy on every execution) and once as
``_HotStatements.insert_returning`` (driver SQL compiled once per row count).
Reports this process's CPU per insert (the server's time is not in it) and
the wall time (bench/RESULTS.md, seventh round).

    .venv/bin/python bench/turn_insert.py [--url postgresql+psycopg2://...] [--number 500]

Without ``--url`` a throwaway server is started from the machine's binaries,
as the tests start theirs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def turn_rows(sender: str, n: int) -> List[Dict[str, Any]]:
    from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered

    from walletbot.rasa_compat.trackerstore import _row

    events = [UserUttered(f"怎么提现 {n}", {"name": "faq", "confidence": 0.9}),
              SlotSet("tx_type", "withdraw"), ActionExecuted("utter_faq"),
              BotUttered("答"), ActionExecuted("action_listen")]
    return [_row(sender, event) for event in events]


def block(run: Callable[[int], None], number: int) -> Tuple[float, float]:
    """CPU and wall µs per call over ``number`` calls."""
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(number):
        run(n)
    return ((time.process_time() - cpu) / number * 1e6,
            (time.perf_counter() - wall) / number * 1e6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a PostgreSQL database to create the events table in")
    parser.add_argument("--number", type=int, default=500, help="inserts per block")
    parser.add_argument("--blocks", type=int, default=6, help="blocks per variant, alternating")
    args = parser.parse_args()

    stop = None
    url = args.url
    if url is None:
        from tests.walletbot.conftest import _find_pg_bin, _start_server

        binaries = _find_pg_bin()
        if binaries is None:
            raise SystemExit("no PostgreSQL binaries: pass --url")
        url, stop, _ = _start_server(*binaries)
    try:
        from walletbot.rasa_compat.trackerstore import ThreadedSQLTrackerStore

        store = ThreadedSQLTrackerStore(domain=None, host=url)  # creates Rasa's events table
        hot = store._hot
        with store._autocommit() as connection:
            def old(n: int) -> None:
                connection.execute(hot.insert.values(turn_rows("bench", n))
                                   .returning(*hot._returned)).all()

            def new(n: int) -> None:
                sql, parameters = hot.insert_returning(turn_rows("bench", n), connection.dialect)
                connection.exec_driver_sql(sql, parameters).all()

            rows_only = block(lambda n: turn_rows("bench", n), args.number)
            figures: Dict[str, List[Tuple[float, float]]] = {"old": [], "new": []}
            for _ in range(args.blocks):
                for name, run in (("old", old), ("new", new)):
                    figures[name].append(block(run, args.number))
        store.engine.dispose()
    finally:
        if stop is not None:
            stop()

    print(f"{args.blocks} blocks of {args.number} inserts of 5 rows each, alternating; "
          f"building the rows alone: {rows_only[0]:.0f} µs CPU\n")
    print("| insert | CPU µs (median block) | wall µs (median block) |\n|---|---|---|")
    medians = {name: (statistics.median(c for c, _ in blocks),
                      statistics.median(w for _, w in blocks))
               for name, blocks in figures.items()}
    for name, label in (("old", "`insert().values(rows).returning()`, compiled per call"),
                        ("new", "driver SQL compiled once per row count")):
        cpu, wall = medians[name]
        print(f"| {label} | {cpu:.0f} | {wall:.0f} |")
    print(f"\nratio new/old: CPU {medians['new'][0] / medians['old'][0]:.2f}, "
          f"wall {medians['new'][1] / medians['old'][1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
