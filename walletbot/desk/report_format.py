"""The supervisor's report (:func:`walletbot.desk.report.collect`) as text or CSV.

Both render the very dict the dashboard's ``api/dashboard`` returns, so the
command line and the page cannot disagree. The text is for a terminal (the
trainers' CLI speaks English; categories keep the console's Chinese names);
the CSV is long-format (``metric,key,value``), one figure a line, for a
spreadsheet to pivot. User texts in CSV cells are neutralised the way the
review export neutralises them (no cell runs as a spreadsheet formula).
"""

from __future__ import annotations

import csv
import io
from typing import Any, Dict, Iterator, List, Optional, Tuple

from walletbot.trainer.console import table
from walletbot.trainer.review_file import neutralise

CSV_COLUMNS = ("metric", "key", "value")


def _percent(rate: Optional[float]) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _seconds(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _durations(figure: Dict[str, Any]) -> str:
    return (f"{figure['count']} tickets, average {_seconds(figure['average_seconds'])}, "
            f"p90 {_seconds(figure['p90_seconds'])}")


def render_text(report: Dict[str, Any]) -> str:
    """The report for a terminal."""
    start, end = report["start"][:10], report["end"][:10]
    title = "today" if report["days"] == 1 else f"the last {report['days']} days"
    csat = report["csat"]
    lines: List[str] = [
        f"walletbot report: {title} ({start} 00:00 to {end} 00:00, {report['timezone']})",
        "",
        f"conversations      {report['conversations']}",
        f"contained          {report['contained']} ({_percent(report['containment_rate'])}, "
        "no ticket opened)",
        f"user turns         {report['user_turns']}",
        f"fallbacks          {report['fallbacks']} ({_percent(report['fallback_rate'])} of user turns)",
        f"low confidence     {report['low_confidence']}",
        f"handoffs           {report['handoffs']['total']}",
    ]
    lines += [f"  {r['label']} ({r['category']}): {r['count']}"
              for r in report["handoffs"]["by_reason"]]
    lines += [
        f"wait               {_durations(report['wait'])}",
        f"handling           {_durations(report['handling'])}",
        f"CSAT               {csat['count']} scores, average "
        f"{'-' if csat['average'] is None else format(csat['average'], '.2f')}; "
        + ", ".join(f"{s}: {n}" for s, n in csat["distribution"].items()),
        f"overdue            {report['overdue']['in_period']} in the period, "
        f"{report['overdue']['now']} now (queued now: {report['queued_now']})",
        f"agents online      {report['agents']['online']}",
    ]
    for agent in report["agents"]["list"]:
        state = ("online" if agent["online"] else "offline") + \
            (", taking tickets" if agent["available"] else "")
        cap = f" of {agent['max_tickets']}" if agent["max_tickets"] else ""
        lines.append(f"  {agent['name']} ({agent['login']}): {state}, "
                     f"{agent['load']}{cap} tickets")
    lines += ["", "by day:", table(
        [[d["date"], d["conversations"], d["contained"], d["handoffs"], d["user_turns"],
          d["fallbacks"]] for d in report["by_day"]],
        headers=["date", "conversations", "contained", "handoffs", "user turns", "fallbacks"],
        numeric=(1, 2, 3, 4, 5),
    )]
    lines += ["", f"top unanswered questions ({len(report['unanswered'])}):"]
    if report["unanswered"]:
        lines.append(table(
            [[n, q["count"], q["text"], q["variants"],
              " ".join(f"{r}×{c}" for r, c in q["reasons"].items())]
             for n, q in enumerate(report["unanswered"], 1)],
            headers=["#", "n", "message", "variants", "reasons"], numeric=(0, 1, 3),
        ))
    else:
        lines.append("none")
    lines += ["", f"to label them: walletbot review --days {report['days']}"]
    return "\n".join(lines) + "\n"


def rows(report: Dict[str, Any]) -> Iterator[Tuple[str, str, Any]]:
    """``(metric, key, value)`` for every figure of the report."""
    for key in ("days", "timezone", "start", "end", "generated_at"):
        yield "period", key, report[key]
    for key in ("conversations", "contained", "containment_rate", "user_turns", "fallbacks",
                "fallback_rate", "low_confidence", "queued_now"):
        yield key, "", report[key]
    yield "handoffs", "", report["handoffs"]["total"]
    for reason in report["handoffs"]["by_reason"]:
        yield "handoffs_by_reason", reason["category"], reason["count"]
    for name in ("wait", "handling"):
        for key in ("count", "average_seconds", "p90_seconds"):
            yield name, key, report[name][key]
    yield "csat", "count", report["csat"]["count"]
    yield "csat", "average", report["csat"]["average"]
    for score, count in report["csat"]["distribution"].items():
        yield "csat_scores", score, count
    yield "overdue", "in_period", report["overdue"]["in_period"]
    yield "overdue", "now", report["overdue"]["now"]
    yield "agents_online", "", report["agents"]["online"]
    for agent in report["agents"]["list"]:
        yield "agent_online", agent["login"], int(agent["online"])
        yield "agent_load", agent["login"], agent["load"]
    for day in report["by_day"]:
        for key in ("conversations", "contained", "handoffs", "user_turns", "fallbacks"):
            yield f"day_{key}", day["date"], day[key]
    for question in report["unanswered"]:
        yield "unanswered", question["text"], question["count"]


def render_csv(report: Dict[str, Any]) -> str:
    """The report as CSV (``metric,key,value``; empty for a figure with nothing to count)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for metric, key, value in rows(report):
        writer.writerow([metric, neutralise(key), "" if value is None else value])
    return out.getvalue()
