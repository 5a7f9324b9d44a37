"""``walletbot report``: the supervisor dashboard's figures, for trainers without a browser.

The figures are the dashboard's own (:func:`walletbot.desk.report.collect`,
the same function ``api/dashboard`` calls), rendered as text or CSV by
:mod:`walletbot.desk.report_format`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, Dict, Optional

from walletbot.trainer import options
from walletbot.trainer.command import Command, Option
from walletbot.trainer.console import error

FORMATS = ("text", "csv")
_DAYS = options.DAYS.but(type=int, default=7, help="today and the days before it, 1 to 90")


def _accounts(path: Optional[str]) -> Dict[str, Any]:
    """The agents by login, for their names; none (logins shown instead) if unreadable."""
    if not path:
        return {}
    from walletbot.desk.auth import AgentDirectory

    try:
        return AgentDirectory.from_file(Path(path)).accounts
    except (ValueError, OSError) as exc:
        print(f"warning: agents shown by login, not name: {exc}", file=sys.stderr)
        return {}


def report(
    *, days: int, fmt: str, out: Optional[Path], tracker_url: Optional[str],
    wallet_url: Optional[str], agents_file: Optional[str],
) -> int:
    """``walletbot report``: prints (or writes) the figures of the last ``days`` days."""
    from walletbot import settings
    from walletbot.desk.report import MAX_DAYS, TrackerUnavailable, collect, missing_sqlite_file
    from walletbot.desk.report_format import render_csv, render_text
    from walletbot.store.db import make_engine
    from walletbot.store.service import WalletService, WalletUnavailable

    if not 1 <= days <= MAX_DAYS:
        error(f"{_DAYS} must be from 1 to {MAX_DAYS}, got {days}")
        return 2
    current = settings.current()
    wallet_url = wallet_url or current.wallet_db_url
    try:
        missing = missing_sqlite_file(wallet_url)
    except ValueError as exc:
        error(f"WALLET_DB_URL is {exc}")
        return 2
    if missing:  # connecting would create an empty database and report zeros
        error(f"no wallet DB at {missing} (WALLET_DB_URL)")
        return 2
    wallet = WalletService(lambda: make_engine(wallet_url), demo=False)
    try:
        figures = asyncio.run(collect(
            wallet=wallet, tracker_url=tracker_url or current.tracker_db_url, days=days,
            accounts=_accounts(agents_file or current.desk_agents_file),
        ))
    except TrackerUnavailable as exc:
        error(f"cannot read the tracker store: {exc}")
        return 2
    except WalletUnavailable as exc:
        error(f"cannot read the wallet DB ({exc})")
        return 2
    text = render_csv(figures) if fmt == "csv" else render_text(figures)
    if out is None:
        sys.stdout.write(text)
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    # utf-8-sig: Excel recognises the encoding of a CSV and shows the Chinese text.
    out.write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8")
    print(f"wrote {out}")
    return 0


def _run_report(args: argparse.Namespace) -> int:
    return report(days=args.days, fmt=args.format, out=args.out, tracker_url=args.db_url,
                  wallet_url=args.wallet_url, agents_file=args.agents)


REPORT = Command(
    "report", help="the supervisor dashboard's figures (conversations, containment, handoffs, "
                   "waits, CSAT) as text or CSV",
    description=(
        "Prints the figures of the desk's supervisor dashboard for today (1 day) or the "
        "last N calendar days in the service time zone (HANDOFF_TIMEZONE): conversations, "
        "bot containment, fallback rate, handoffs by reason, wait and handling times (average, "
        "p90), CSAT, overdue tickets, agents online and their load, and the top unanswered "
        "questions. Reads the wallet DB and the SQL tracker store."
    ),
    arguments=(
        _DAYS,
        options.FORMAT.but(choices=FORMATS, default="text", help="text or csv"),
        options.OUT.but(help="file to write (default: standard output)"),
        options.TRACKER_URL,
        Option("--wallet-url", help="SQLAlchemy URL of the wallet DB (default: $WALLET_DB_URL)"),
        Option("--agents", help="agents file, for names (default: $DESK_AGENTS_FILE)"),
    ),
    run=_run_report,
)

COMMANDS = (REPORT,)
