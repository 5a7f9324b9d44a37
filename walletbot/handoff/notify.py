"""Optional notification of new and overdue tickets to a webhook (e.g. a WeCom group bot).

Fire and forget: the conversation never waits for it. Failed posts are
retried with back-off and then logged; nothing is raised to the caller.

The notification leaves the company (a WeCom group, a third-party bot), so
it carries only the ticket's number, priority, category, channel and its
summary, masked once more here: the summary of a ticket opened before
masking covered some form of a number, or written by other code, must not
carry it out.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Sequence, Set

import aiohttp

from walletbot.privacy import mask_pii
from walletbot.store.rows import Ticket

logger = logging.getLogger(__name__)

PRIORITY_NAMES = {1: "紧急", 2: "高", 3: "普通"}
CATEGORY_NAMES = {
    "request_human": "用户要求人工",
    "fallback": "机器人未能理解",
    "account_compromised": "账户安全（被盗/冻结）",
    "complain": "投诉",
    "transaction": "交易核查",
}

Poster = Callable[[str, Dict[str, Any]], Awaitable[int]]


async def _post_json(url: str, payload: Dict[str, Any]) -> int:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(url, json=payload) as response:
            return response.status


def wecom_text(ticket: Ticket) -> Dict[str, Any]:
    """The WeCom group-bot message for a new ticket (masked summary only)."""
    content = (
        f"新工单 {ticket.number}（{PRIORITY_NAMES.get(ticket.priority, ticket.priority)}优先级）\n"
        f"类别：{CATEGORY_NAMES.get(ticket.category, ticket.category)}\n"
        f"渠道：{ticket.channel}\n"
        f"摘要：{mask_pii(ticket.summary or '') or '—'}"
    )
    return {"msgtype": "text", "text": {"content": content}}


def wecom_overdue_text(ticket: Ticket, *, waited_minutes: int, target: str) -> Dict[str, Any]:
    """The WeCom message for a queued ticket past its target (same fields as a new one)."""
    content = (
        f"工单超时未接入 {ticket.number}（{PRIORITY_NAMES.get(ticket.priority, ticket.priority)}优先级）\n"
        f"已排队：{waited_minutes} 分钟（目标 {target}内接入）\n"
        f"类别：{CATEGORY_NAMES.get(ticket.category, ticket.category)}\n"
        f"渠道：{ticket.channel}\n"
        f"摘要：{mask_pii(ticket.summary or '') or '—'}"
    )
    return {"msgtype": "text", "text": {"content": content}}


class TicketNotifier:
    """Posts new tickets to a webhook in the background, with retries."""

    def __init__(
        self,
        url: Optional[str],
        *,
        post: Poster = _post_json,
        delays: Sequence[float] = (1.0, 3.0, 9.0),
    ) -> None:
        self.url = url or None
        self._post = post
        self._delays = tuple(delays)
        self._tasks: Set[asyncio.Task] = set()

    async def _deliver(self, payload: Dict[str, Any], number: str) -> bool:
        attempts = len(self._delays) + 1
        for attempt in range(attempts):
            try:
                status = await self._post(self.url, payload)
                if 200 <= status < 300:
                    return True
                logger.warning("ticket webhook for %s answered HTTP %s", number, status)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                logger.warning("ticket webhook for %s failed: %s", number, type(error).__name__)
            if attempt < len(self._delays):
                await asyncio.sleep(self._delays[attempt])
        logger.error("ticket webhook for %s gave up after %d attempts", number, attempts)
        return False

    def _schedule(self, payload: Dict[str, Any], number: str) -> Optional[asyncio.Task]:
        if not self.url:
            return None
        task = asyncio.get_running_loop().create_task(self._deliver(payload, number))
        # Keep a reference so the task is not garbage-collected mid-flight.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def notify(self, ticket: Ticket) -> Optional[asyncio.Task]:
        """Schedules the notification; returns the task (None when no URL is set)."""
        return self._schedule(wecom_text(ticket), ticket.number)

    def notify_overdue(self, ticket: Ticket, *, waited_minutes: int,
                       target: str) -> Optional[asyncio.Task]:
        """Announces a queued ticket past its target again; the task (None without a URL)."""
        return self._schedule(wecom_overdue_text(ticket, waited_minutes=waited_minutes,
                                                 target=target), ticket.number)
