"""Service levels: overdue queue tickets, silent claims, and the user's wait updates.

The timers run inside every Rasa server that serves the desk: an asyncio task
started when the server starts and stopped when it stops (no cron). Each tick
does its database work through ``wallet.run`` and its messages after the
transaction committed. With two replicas both tick; the conditional UPDATEs of
:mod:`walletbot.store.sla` decide which one fires each timer, so a ticket is
announced, requeued or its user told exactly once. A failing tick is logged
and the next one runs as usual.

- A queued ticket past its priority's target (DESK_SLA_QUEUE_MINUTES) is
  marked overdue (the queue shows it first, in red) and announced again to
  DESK_WEBHOOK_URL; during service hours only, so nobody is paged at night
  (tickets that waited overnight are announced when agents start).
- A claimed ticket whose agent has not replied within DESK_SLA_REPLY_MINUTES
  of the claim goes back to the queue; the agent's console shows why
  (``GET api/notices``) and the user is told.
- A waiting user is told an updated wait at most every
  DESK_SLA_WAIT_NOTICE_MINUTES, and only when it went overdue or the estimate
  moved; never outside service hours (the leave-a-message wording stands then).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.engine import Connection

from walletbot import settings
from walletbot.desk.relay import Relay
from walletbot.desk.routing import error, ok
from walletbot.handoff.hours import ServiceHours
from walletbot.handoff.levels import ServiceLevels, duration_text
from walletbot.handoff.notify import TicketNotifier
from walletbot.store import sla as sla_store
from walletbot.store.rows import Ticket
from walletbot.store.schema import utcnow
from walletbot.store.service import WalletService

if TYPE_CHECKING:  # pragma: no cover
    from walletbot.desk.api import DeskInput
    from walletbot.desk.routing import DeskRoutes

logger = logging.getLogger(__name__)
# Seconds one message to a user may take before the timer moves on.
TELL_TIMEOUT = 20.0

__all__ = ["SlaTimer", "Tick", "overdue_first", "register", "state_json", "utcnow"]

OVERDUE_REASON = "排队超过 {target}仍未接入"
REQUEUE_REASON = "认领后 {target}未回复，已退回队列"
NOTICE_TEXT = "工单 {ticket} {reason}"
# What the user is told (the bot speaks, not an agent).
AHEAD = "您前面还有 {ahead} 位用户在等待"
NEXT = "您是下一位"
WAIT_OVERDUE = ("抱歉让您久等了。您的工单 {ticket} 仍在排队中，{place}，预计还需等待约 {minutes} 分钟。"
                "客服接入后会直接在这里回复您，您也可以继续留言描述问题。")
WAIT_MOVED = "排队进度更新：您的工单 {ticket} {place}，预计还需等待约 {minutes} 分钟，请耐心等待。"
REQUEUED = ("抱歉，客服暂时未能回复您，已为您重新排队（工单 {ticket}）。{place}，预计等待约 {minutes} 分钟。"
            "您可以继续留言描述问题。")
REQUEUED_CLOSED = ("抱歉，客服暂时未能回复您，已为您重新排队（工单 {ticket}）。现在不在人工客服服务时间，"
                   "客服上线后会按顺序回复您，您可以继续留言描述问题。")
# A console's first look shows requeues of this recent past (a reload after one).
RECENT_NOTICES = timedelta(minutes=30)


def _place(ahead: int) -> str:
    return AHEAD.format(ahead=ahead) if ahead > 0 else NEXT


def _minutes(span: timedelta) -> int:
    return max(0, int(span.total_seconds() // 60))


def is_overdue(ticket: Ticket, *, levels: ServiceLevels, now: datetime) -> bool:
    """Whether the queued ticket has waited past its priority's target."""
    return ticket.status == "queued" and (
        ticket.overdue_at is not None
        or now - ticket.in_queue_since > levels.queue_target(ticket.priority))


def overdue_first(rows: Sequence[Ticket], *, levels: ServiceLevels, now: datetime) -> List[Ticket]:
    """``rows`` with overdue tickets first; otherwise in their order (a stable sort)."""
    return sorted(rows, key=lambda t: not is_overdue(t, levels=levels, now=now))


def state_json(ticket: Ticket, *, levels: ServiceLevels, now: datetime) -> Dict[str, Any]:
    """The ticket's service-level state for the queue.

    ``overdue``, ``waited_minutes`` (in the queue since it last entered it),
    ``target_minutes``, ``overdue_minutes`` (past the target); for a claim
    still without the agent's reply, ``reply_due_at`` and ``reply_due_minutes``
    (when it goes back to the queue).
    """
    body: Dict[str, Any] = {"overdue": False, "waited_minutes": None, "overdue_minutes": 0,
                            "target_minutes": None, "reply_due_at": None,
                            "reply_due_minutes": None}
    if ticket.status == "queued":
        target = levels.queue_target(ticket.priority)
        waited = now - ticket.in_queue_since
        overdue = is_overdue(ticket, levels=levels, now=now)
        body.update(overdue=overdue, waited_minutes=_minutes(waited),
                    target_minutes=target.total_seconds() / 60,
                    overdue_minutes=_minutes(waited - target) if overdue else 0)
    elif ticket.status == "assigned" and ticket.claimed_at is not None and (
        ticket.agent_replied_at is None or ticket.agent_replied_at < ticket.claimed_at
    ):
        due = ticket.claimed_at + levels.reply_target
        body.update(reply_due_at=due.isoformat(),
                    reply_due_minutes=max(0, math.ceil((due - now).total_seconds() / 60)))
    return body


@dataclass
class Tick:
    """What one tick of one replica fired."""

    overdue: List[Ticket] = field(default_factory=list)
    requeued: List[Tuple[Ticket, str]] = field(default_factory=list)
    notices: List[sla_store.WaitNotice] = field(default_factory=list)


def _requeue(conn: Connection, *, now: datetime, target: timedelta, reason: str,
             fallback_minutes: float, seen_within: timedelta,
             estimate: bool) -> List[Tuple[Ticket, str, Optional[sla_store.Estimate]]]:
    # In one transaction: the requeue, and the wait the user is about to be told.
    moved = []
    for ticket, agent in sla_store.requeue_silent(conn=conn, now=now, target=target,
                                                  reason=reason):
        told = None
        if estimate:
            told = sla_store.estimate_wait(conn=conn, ticket=ticket, now=now,
                                           fallback_minutes=fallback_minutes,
                                           seen_within=seen_within)
        sla_store.record_wait_told(conn=conn, ticket_id=ticket.ticket_id,
                                   minutes=None if told is None else told.minutes, now=now)
        moved.append((ticket, agent, told))
    return moved


class SlaTimer:
    """The desk's service-level timers for one server (replica).

    Args:
        wallet: Returns the wallet DB gateway (read at each tick: tests swap it).
        levels: Targets and the tick.
        hours: Agents' service hours (no wait updates outside them).
        notifier: Announces overdue tickets (DESK_WEBHOOK_URL).
        seen_within: How recently an agent's console counts as online (estimates).
        clock: The current time, aware UTC (tests move it).
    """

    def __init__(self, *, wallet: Callable[[], WalletService], levels: ServiceLevels,
                 hours: ServiceHours, notifier: TicketNotifier, seen_within: timedelta,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.wallet = wallet
        self.levels = levels
        self.hours = hours
        self.notifier = notifier
        self.seen_within = seen_within
        self.clock = clock
        self.relay: Callable[[], Optional[Relay]] = lambda: None
        self._task: Optional[asyncio.Task] = None

    @classmethod
    def for_channel(cls, channel: "DeskInput") -> "SlaTimer":
        """The timer of a desk channel, configured from the settings."""
        config = settings.current()
        return cls(wallet=lambda: channel.desk.wallet, levels=channel.service_levels,
                   hours=ServiceHours.parse(config.service_hours, config.service_timezone),
                   notifier=TicketNotifier(config.desk_webhook_url),
                   seen_within=timedelta(seconds=config.desk_presence_seconds))

    async def tick(self) -> Tick:
        """Runs every timer once; returns what this replica fired."""
        now, levels, wallet, done = self.clock(), self.levels, self.wallet(), Tick()
        # Off duty nobody is paged about the queue; it is announced when agents start.
        open_now = self.hours.is_open(now)
        if open_now:
            done.overdue = await wallet.run(
                sla_store.mark_overdue, now=now, targets=levels.queue_targets,
                reasons={p: OVERDUE_REASON.format(target=duration_text(levels.queue_minutes[p - 1]))
                         for p in (1, 2, 3)})
        for ticket in done.overdue:
            self.notifier.notify_overdue(
                ticket, waited_minutes=_minutes(now - ticket.in_queue_since),
                target=duration_text(levels.queue_minutes[ticket.priority - 1]))
        relay = self.relay()
        if relay is None:  # the model is not loaded yet: nobody to tell, so nothing to fire
            return done
        moved = await wallet.run(
            _requeue, now=now, target=levels.reply_target,
            reason=REQUEUE_REASON.format(target=duration_text(levels.reply_minutes)),
            fallback_minutes=levels.fallback_minutes, seen_within=self.seen_within,
            estimate=open_now)
        for ticket, agent, estimate in moved:
            logger.info("ticket %s returned to the queue: %s did not reply", ticket.number, agent)
            text = (REQUEUED_CLOSED.format(ticket=ticket.number) if estimate is None else
                    REQUEUED.format(ticket=ticket.number, place=_place(estimate.ahead),
                                    minutes=estimate.minutes))
            await self._tell(relay, ticket, text, "requeued")
            done.requeued.append((ticket, agent))
        if open_now:
            done.notices = await wallet.run(
                sla_store.claim_wait_notices, now=now, interval=levels.wait_notice_interval,
                fallback_minutes=levels.fallback_minutes, seen_within=self.seen_within)
            for notice in done.notices:
                template = WAIT_OVERDUE if notice.overdue else WAIT_MOVED
                await self._tell(relay, notice.ticket, template.format(
                    ticket=notice.ticket.number, place=_place(notice.estimate.ahead),
                    minutes=notice.estimate.minutes), "wait")
        return done

    @staticmethod
    async def _tell(relay: Relay, ticket: Ticket, text: str, kind: str) -> None:
        try:
            # Bounded: a conversation lock or channel that hangs must not stall every timer.
            await asyncio.wait_for(relay.tell(ticket.conversation, text=text, kind=kind),
                                   TELL_TIMEOUT)
        except asyncio.TimeoutError:
            logger.error("telling the user of ticket %s (%s) took over %g s; gave up",
                         ticket.number, kind, TELL_TIMEOUT)
        except Exception:  # one conversation's trouble must not silence the others
            logger.exception("could not tell the user of ticket %s (%s)", ticket.number, kind)

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("desk service-level tick failed; next one in %g s",
                                 self.levels.tick_seconds)
            await asyncio.sleep(self.levels.tick_seconds)

    def start(self, app: Any) -> None:
        """Starts ticking in the running loop; users are reached through ``app``'s Rasa agent."""
        def relay() -> Optional[Relay]:
            agent = getattr(app.ctx, "agent", None)
            if agent is None or getattr(agent, "processor", None) is None:
                return None
            return Relay(agent, getattr(app.ctx, "input_channels", []))

        self.relay = relay
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stops ticking (waits for a tick in progress to be cancelled)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


def notice_json(event: Any, number: str) -> Dict[str, Any]:
    """A requeue notice as the console shows it."""
    return {"id": event.event_id, "ticket_id": event.ticket_id, "number": number,
            "reason": event.reason, "at": event.created_at.isoformat(),
            "text": NOTICE_TEXT.format(ticket=number, reason=event.reason or "已退回队列")}


def _notices(conn: Connection, *, agent: str, after_id: Optional[int],
             since: datetime) -> Dict[str, Any]:
    events = sla_store.requeue_notices(conn=conn, agent=agent, after_id=after_id,
                                       since=None if after_id is not None else since)
    cursor = sla_store.last_event_id(conn=conn) if after_id is None else max(
        [after_id] + [e.event_id for e in events])
    return {"notices": [notice_json(e, f"T{e.ticket_id:06d}") for e in events], "cursor": cursor}


def register(bp: Any, routes: "DeskRoutes") -> None:
    """Adds the timers (started with the server) and ``GET api/notices`` to the desk."""
    channel = routes.channel
    if channel.sla_timer is None:
        channel.sla_timer = SlaTimer.for_channel(channel)
    timer = channel.sla_timer

    @bp.listener("after_server_start")
    async def start_sla_timers(app: Any, _loop: Any) -> None:
        timer.start(app)

    @bp.listener("before_server_stop")
    async def stop_sla_timers(_app: Any, _loop: Any) -> None:
        await timer.stop()

    @bp.route("/api/notices", methods=["GET"])
    @routes.authed
    async def notices(request: Request, claims: Dict[str, Any]) -> HTTPResponse:
        """Tickets the timer took from the caller: ``?since=<cursor>`` for newer ones."""
        since = request.args.get("since", "")
        if since and not (since.isascii() and since.isdigit() and len(since) <= 12):
            return error("since 须为非负整数", 400)
        body = await channel.desk.wallet.run(
            _notices, agent=claims["sub"], after_id=int(since) if since else None,
            since=timer.clock() - RECENT_NOTICES)
        return ok(body)
