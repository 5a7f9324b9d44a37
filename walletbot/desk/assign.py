"""Capacity and assignment: each agent's cap, presence, and automatic assignment.

An agent holds at most ``max_tickets`` (agents file, default 5) tickets at once:
a claim or a transfer beyond that is refused with 409. With
``DESK_AUTO_ASSIGN=true`` every desk server runs a small loop that gives
queued tickets to the least-loaded available agent (switch on, console seen
within ``DESK_PRESENCE_SECONDS``, under the cap), as Chatwoot's capacity
limit does; the store makes each assignment atomic across replicas.

Routes: ``GET api/agents`` (login, name, availability, load, cap) and
``POST api/me/availability {"available": bool}`` (接单 / 暂停接单).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any, Dict, List, Optional, Tuple

from sanic.request import Request
from sanic.response import HTTPResponse

from walletbot import settings
from walletbot.desk.auth import AgentAccount, AgentDirectory
from walletbot.desk.relay import Relay
from walletbot.desk.routing import DeskRoutes, error, json_body, ok
from walletbot.desk.service import DeskService
from walletbot.store import desk_tools
from walletbot.store import tickets as ticket_queries
from walletbot.store.rows import Ticket
from walletbot.store.schema import utcnow
from walletbot.store.service import WalletService

logger = logging.getLogger(__name__)

CAP_MESSAGE = "已达到同时处理上限（{cap} 个），请先结束或转接手上的工单"
# Seconds between two auto-assignment rounds of one server (a requeue on this
# server starts one at once).
TICK_SECONDS = 3.0
# Assignments one round makes at most (the next round goes on).
ROUND_LIMIT = 20


def cap_message(cap: int) -> str:
    """What an agent at the cap is told."""
    return CAP_MESSAGE.format(cap=cap)


async def claim(desk: DeskService, ticket: Ticket, account: AgentAccount) -> str:
    """Claims ``ticket`` for the agent within their cap.

    Returns:
        ``desk_tools.CLAIMED``, ``FULL`` or ``TAKEN``.
    """
    return await desk.wallet.run(desk_tools.claim_within_cap, ticket_id=ticket.ticket_id,
                                 agent=account.login, cap=account.max_tickets)


def presence_window() -> timedelta:
    """How recently a console must have been seen to count as online."""
    return timedelta(seconds=settings.current().desk_presence_seconds)


async def agents_overview(wallet: WalletService, directory: AgentDirectory) -> List[Dict[str, Any]]:
    """Every agent's availability and load, as ``GET api/agents`` returns them."""
    presence, loads = await wallet.run(desk_tools.desk_overview)
    now, window = utcnow(), presence_window()
    rows = []
    for login in sorted(directory.accounts):
        account = directory.accounts[login]
        seen = presence.get(login)
        online = seen is not None and seen.online(now, window)
        accepting = seen.available if seen is not None else True
        rows.append({
            "login": login, "name": account.name, "online": online, "accepting": accepting,
            "available": online and accepting, "load": loads.get(login, 0),
            "cap": account.max_tickets,
        })
    return rows


class AutoAssigner:
    """The loop that hands queued tickets to agents (when ``DESK_AUTO_ASSIGN`` is on).

    Args:
        routes: The desk's routes (its wallet DB, agents, relay).
    """

    def __init__(self, routes: DeskRoutes) -> None:
        self.routes = routes
        self._task: Optional[asyncio.Task] = None
        self._wake = asyncio.Event()

    @property
    def caps(self) -> Dict[str, int]:
        accounts = self.routes.channel.directory.accounts
        return {login: account.max_tickets for login, account in accounts.items()}

    async def assign_round(self, app: Any = None) -> List[Tuple[int, str]]:
        """Assigns what fits now and tells each user who joined; ``(ticket_id, agent)`` pairs."""
        wallet = self.routes.channel.desk.wallet
        done: List[Tuple[int, str]] = []
        for _ in range(ROUND_LIMIT):
            assigned = await wallet.run(desk_tools.auto_assign_one, caps=self.caps,
                                        window=presence_window())
            if assigned is None:
                break
            done.append(assigned)
            await self._announce(app, *assigned)
        return done

    async def _announce(self, app: Any, ticket_id: int, login: str) -> None:
        agent = getattr(getattr(app, "ctx", None), "agent", None)
        if agent is None:
            return
        try:
            ticket = await self.routes.channel.desk.wallet.run(ticket_queries.get_ticket,
                                                               ticket_id=ticket_id)
            name = self.routes.channel.directory.accounts[login].name
            relay = Relay(agent, getattr(app.ctx, "input_channels", []))
            await relay.announce_join(ticket.conversation, login=login, name=name)
        except Exception:  # noqa: BLE001 - the assignment stands; the agent greets
            logger.exception("could not tell the user of ticket %s that %s joined", ticket_id, login)

    def kick(self) -> None:
        """Runs a round soon (a ticket was requeued on this server)."""
        self._wake.set()

    async def run(self, app: Any) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_SECONDS)
            self._wake.clear()
            if not settings.current().desk_auto_assign:
                continue
            try:
                await self.assign_round(app)
            except Exception as failure:  # noqa: BLE001 - the next tick tries again
                logger.warning("auto-assignment round failed: %s", type(failure).__name__)

    def start(self, app: Any) -> None:
        self._wake = asyncio.Event()  # bound to the server's loop
        self._task = asyncio.get_running_loop().create_task(self.run(app))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def register(bp: Any, routes: DeskRoutes) -> AutoAssigner:
    """Adds the agents list, the availability switch and the auto-assignment loop."""
    channel = routes.channel
    assigner = AutoAssigner(routes)

    @bp.route("/api/agents", methods=["GET"])
    @routes.authed
    async def agents(request: Request, claims: Dict[str, Any]) -> HTTPResponse:
        return ok({"agents": await agents_overview(channel.desk.wallet, channel.directory)})

    @bp.route("/api/me/availability", methods=["POST"])
    @routes.authed
    async def availability(request: Request, claims: Dict[str, Any]) -> HTTPResponse:
        available = json_body(request).get("available")
        if not isinstance(available, bool):
            return error("请求需包含 available：true（接单）或 false（暂停接单）", 400)
        await channel.desk.wallet.run(desk_tools.set_available, login=claims["sub"],
                                      available=available)
        if available:
            assigner.kick()
        return ok({"available": available})

    @bp.listener("after_server_start")
    async def start_assigner(app: Any, _loop: Any) -> None:
        assigner.start(app)

    @bp.listener("before_server_stop")
    async def stop_assigner(_app: Any, _loop: Any) -> None:
        await assigner.stop()

    return assigner
