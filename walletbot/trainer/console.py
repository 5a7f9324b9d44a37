"""Console output that lines up with Chinese text.

A CJK character takes two terminal columns; ``str.ljust`` counts it as one,
so tables with Chinese cells come out ragged. These helpers count columns.
"""

from __future__ import annotations

import sys
import unicodedata
from typing import Iterable, List, Optional, Sequence, TextIO


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide and full-width characters count 2."""
    return sum(
        2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        for char in text
        if not unicodedata.combining(char)
    )


def clip(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` columns, with ``…`` when it was cut."""
    if display_width(text) <= width:
        return text
    out = ""
    for char in text:
        if display_width(out + char) > width - 1:
            break
        out += char
    return out + "…"


def pad(text: str, width: int, *, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` columns (aligned right if asked)."""
    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill


def table(
    rows: Sequence[Sequence[object]],
    *,
    headers: Sequence[str],
    numeric: Optional[Iterable[int]] = None,
    max_width: int = 48,
) -> str:
    """A plain-text table; ``numeric`` columns are right-aligned."""
    right = set(numeric or ())
    cells: List[List[str]] = [[str(h) for h in headers]]
    cells += [[clip(str(value), max_width) for value in row] for row in rows]
    widths = [max(display_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(pad(cell, widths[i], right=i in right) for i, cell in enumerate(row)).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths).rstrip())
    return "\n".join(lines)


def fmt(value: Optional[float], digits: int = 3) -> str:
    """A score as text; ``-`` for a missing one."""
    return "-" if value is None else f"{value:.{digits}f}"


def signed(value: float, digits: int = 3) -> str:
    """A difference with its sign (``+0.012``, ``-0.083``, ``0.000``)."""
    if abs(value) < 0.5 * 10 ** -digits:
        return f"{0:.{digits}f}"
    return f"{value:+.{digits}f}"


def error(message: str, *, stream: Optional[TextIO] = None) -> None:
    """Prints ``error: message`` to stderr."""
    print(f"error: {message}", file=stream or sys.stderr)


def progress(
    iterable: Iterable,
    *,
    desc: str,
    total: Optional[int] = None,
    enabled: bool = True,
    unit: str = "msg",
):
    """A tqdm progress bar on stderr (off when ``enabled`` is False)."""
    from tqdm import tqdm

    # disable=None: tqdm switches itself off when stderr is not a terminal.
    return tqdm(
        iterable, desc=desc, total=total, disable=None if enabled else True, unit=unit,
        leave=False, file=sys.stderr, dynamic_ncols=True,
    )


_NOISE = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
# Rasa's own always-on notice about a 2.x feature this project does not use.
_NOISE_MESSAGES = ("Slot auto-fill has been removed",)


def quiet_libraries() -> None:
    """Silences the start-up chatter of TensorFlow, jieba and deprecated APIs.

    Libraries re-add warning filters when imported, so the filter sits in
    ``warnings.showwarning``. Rasa's warnings about the data still show.
    """
    import logging
    import os
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # jieba sets its own logger to DEBUG when imported; disabling survives that.
    logging.getLogger("jieba").disabled = True
    shown = warnings.showwarning
    if getattr(shown, "_walletbot_quiet", False):
        return

    def showwarning(message, category, *args, **kwargs):  # type: ignore[no-untyped-def]
        if issubclass(category, _NOISE) or any(m in str(message) for m in _NOISE_MESSAGES):
            return
        shown(message, category, *args, **kwargs)

    showwarning._walletbot_quiet = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning
