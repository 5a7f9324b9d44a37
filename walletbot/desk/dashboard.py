"""The supervisor dashboard: ``GET dashboard`` (the page) and ``GET api/dashboard?days=1|7``.

Only agents with the ``supervisor`` role see it: others get a 403 page or
JSON error, and a browser without a session goes to the login page. The
figures are :func:`walletbot.desk.report.collect`'s, the same ones
``walletbot report`` prints; the page (static/dashboard.html, .js, .css)
draws them as plain SVG, within the desk's CSP.

``GET api/dashboard/review.csv?days=1|7`` hands a supervisor the review export
of the same days, the very file ``walletbot review`` writes (one line per
poorly handled message, similar ones grouped, an empty ``intent`` column).
A download rather than only naming the command: supervisors who see the top
unanswered questions are rarely the people with a shell on the server, and
the file is what they pass to a trainer, who labels it and runs
``walletbot review import FILE``. It holds user texts, masked as everywhere,
so it is for supervisors only, like the page.
"""

from __future__ import annotations

import asyncio
import html
import logging
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from walletbot import settings
from walletbot.desk import report
from walletbot.desk.revocation import RevocationUnavailable
from walletbot.desk.routing import HEADERS, DeskRoutes, error, ok

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SUPERVISORS_ONLY = "只有主管（supervisor 角色）可以查看主管看板"
BAD_DAYS = "days 只能是 1（今日）或 7（近 7 天）"
TRACKER_DOWN = "暂时无法读取对话记录库，请稍后重试或联系运维"
_DENIED_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>无权访问 · 主管看板</title>
<link rel="stylesheet" href="static/desk.css"><link rel="stylesheet" href="static/dashboard.css">
</head><body class="dash-page"><main class="dash-denied"><h1>无权访问</h1>
<p id="denied">{message}</p><p><a href="./">返回客服工作台</a></p></main></body></html>
"""


def _days(request: Request) -> Optional[int]:
    raw = request.args.get("days", "7")
    return int(raw) if raw in {str(d) for d in report.DASHBOARD_DAYS} else None


def tracker_url(routes: DeskRoutes) -> str:
    """The tracker store the figures read: the desk's credential, else TRACKER_DB_URL."""
    return routes.channel.tracker_db_url or settings.current().tracker_db_url


def register(bp: Any, routes: DeskRoutes) -> None:
    """Adds the dashboard's page and API to the desk blueprint."""
    # One computation at a time per process: the figures read a week of events
    # and group texts, and a second supervisor pressing 刷新 can wait for the first.
    busy = asyncio.Lock()

    def supervisor(claims: Dict[str, Any]) -> bool:
        account = routes.channel.directory.accounts.get(claims["sub"])
        return account is not None and account.is_supervisor

    @bp.route("/dashboard", methods=["GET"])
    async def dashboard_page(request: Request) -> HTTPResponse:
        try:
            claims = await routes.channel.session(request)
        except RevocationUnavailable:
            return error("会话服务暂时不可用，请稍后重试", 503)
        if claims is None:
            return response.redirect("login", headers=HEADERS)
        if not supervisor(claims):
            return response.html(_DENIED_PAGE.format(message=html.escape(SUPERVISORS_ONLY)),
                                 status=403, headers=HEADERS)
        return response.html((STATIC_DIR / "dashboard.html").read_text(encoding="utf-8"),
                             headers=HEADERS)

    @bp.route("/api/dashboard", methods=["GET"])
    @routes.authed
    async def dashboard_figures(request: Request, claims: Dict[str, Any]) -> HTTPResponse:
        if not supervisor(claims):
            return error(SUPERVISORS_ONLY, 403)
        days = _days(request)
        if days is None:
            return error(BAD_DAYS, 400)
        async with busy:
            try:
                figures = await report.collect(
                    wallet=routes.channel.desk.wallet, tracker_url=tracker_url(routes),
                    days=days, accounts=routes.channel.directory.accounts)
            except report.TrackerUnavailable as problem:
                logger.error("dashboard: %s", problem)
                return error(TRACKER_DOWN, 503)
        return ok(figures)

    @bp.route("/api/dashboard/review.csv", methods=["GET"])
    @routes.authed
    async def review_export(request: Request, claims: Dict[str, Any]) -> HTTPResponse:
        if not supervisor(claims):
            return error(SUPERVISORS_ONLY, 403)
        days = _days(request)
        if days is None:
            return error(BAD_DAYS, 400)
        period = report.Period.ending_today(
            days, now=datetime.now(timezone.utc), timezone=settings.current().service_timezone)
        name = f"review-{time.strftime('%Y%m%d-%H%M%S')}.csv"

        def export() -> bytes:
            with tempfile.TemporaryDirectory(prefix="desk-review-") as folder:
                path = report.write_review_export(
                    tracker_url=tracker_url(routes), since=period.start.timestamp(),
                    path=Path(folder) / name)
                return path.read_bytes()

        async with busy:
            try:
                body = await asyncio.get_running_loop().run_in_executor(None, export)
            except report.TrackerUnavailable as problem:
                logger.error("dashboard review export: %s", problem)
                return error(TRACKER_DOWN, 503)
        headers = {**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'}
        return response.raw(body, content_type="text/csv; charset=utf-8", headers=headers)
