"""The file trainers label: review items as CSV (opens in Excel) or YAML.

Each line has an empty ``intent`` for the trainer to fill with a known
intent (``greet``, ``faq/withdraw_fee``, …); lines left empty (or ``-``) are
skipped by ``walletbot review import``.

The texts are what users typed, so a CSV cell could be a spreadsheet formula
(``=HYPERLINK(...)``, ``+cmd|...``, ``@SUM(...)``) that runs when a trainer
opens the file in Excel or LibreOffice. Every CSV cell that starts with one of
``= + - @``, a tab or a carriage return is written with a leading ``'``
(the OWASP advice for CSV injection): the spreadsheet shows it as text.
YAML is not opened by spreadsheets and is written as is.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Dict, List, Sequence

import yaml

from walletbot.trainer.review import ReviewItem

COLUMNS = ("group", "count", "text", "predicted", "confidence", "reasons", "senders",
           "last_seen", "intent")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_HEADER = (
    "# walletbot review: messages the bot handled poorly, similar ones grouped.\n"
    "# Fill `intent:` with the right intent (greet, faq/withdraw_fee, ...), leave it\n"
    "# empty to skip, then: walletbot review import {name}\n"
)


class _BlankNullDumper(yaml.SafeDumper):
    """Writes None as nothing: ``intent:`` reads as a field to fill in."""


_BlankNullDumper.add_representer(
    type(None), lambda dumper, _: dumper.represent_scalar("tag:yaml.org,2002:null", "")
)


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else ""


def _reasons(item: ReviewItem) -> str:
    return " ".join(f"{r}×{n}" if n > 1 else r for r, n in item.reasons.items())


def neutralise(value: object) -> object:
    """A CSV cell that no spreadsheet runs as a formula: ``'`` before a risky first character."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def as_rows(items: Sequence[ReviewItem]) -> List[Dict[str, object]]:
    """Items as rows with the export's columns."""
    return [
        {
            "group": item.group, "count": item.count, "text": item.text,
            "predicted": item.predicted, "confidence": round(item.confidence, 3),
            "reasons": _reasons(item), "senders": item.senders,
            "last_seen": _when(item.last_seen), "intent": "",
        }
        for item in items
    ]


def write(items: Sequence[ReviewItem], *, path: Path) -> Path:
    """Writes the items as YAML (``.yml``/``.yaml``) or CSV (anything else)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = as_rows(items)
    if path.suffix.lower() in (".yml", ".yaml"):
        for row in rows:
            row["intent"] = None  # written as a bare `intent:` to fill in
        body = yaml.dump(rows, Dumper=_BlankNullDumper, allow_unicode=True, sort_keys=False,
                         width=10_000)
        path.write_text(_HEADER.format(name=path) + body, encoding="utf-8")
        return path
    # utf-8-sig: Excel recognises the encoding and shows the Chinese text.
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows({key: neutralise(value) for key, value in row.items()} for row in rows)
    return path
