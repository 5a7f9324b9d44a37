"""What every public channel does before and after a bot turn.

- personal data typed by users (card, ID-card, phone numbers, passwords) is
  masked before the message reaches NLU, the tracker store or any log, and the
  user is reminded not to send it;
- a sender who writes too fast gets a polite message instead of a bot turn;
- when the turn fails (the lock store or tracker store is down), an action
  fails midway, or the turn produces nothing because the action server is
  unreachable, the user gets a fixed apology instead of silence, a misleading
  follow-up or a stack trace. The message is kept when only the action server
  or the wallet DB is down (Rasa stores it before running actions); with the
  lock or tracker store down it cannot be, and the apology does not claim so.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass
from contextvars import ContextVar
from typing import Any, Awaitable, Callable, Deque, List, Mapping, Optional, Tuple, Union

import aiohttp

from walletbot.privacy import mask_pii

logger = logging.getLogger(__name__)

PII_REMINDER = (
    "温馨提示：为了您的账户安全，请不要在对话中发送银行卡号、身份证号、手机号、密码或验证码，"
    "我们已自动隐藏这些信息。OK钱包的客服也不会向您索要密码或验证码。"
)
RATE_LIMITED = "您发送消息的速度有点快，请稍等片刻再发，我会继续为您服务。"
TOO_LONG = "您的消息太长了（超过{limit}字），请简要描述您的问题。"
EMPTY = "请输入您的问题，例如“怎么提现”或“帮我查一下订单”。"
FAILED = "抱歉，系统暂时出现故障，暂时无法处理您的消息，请稍后再试。给您带来不便，非常抱歉。"

MAX_MESSAGE_CHARS = 2000
DEFAULT_PER_MINUTE = 30
WINDOW_SECONDS = 60


def mask_incoming(text: str) -> Tuple[str, bool]:
    """The text with personal data masked, and whether anything was masked."""
    masked = mask_pii(text)
    return masked, masked != text


@dataclass(frozen=True)
class Verdict:
    """What to do with an incoming message: ``text`` to process, or ``reply`` at once."""

    text: Optional[str] = None
    reply: Optional[str] = None
    masked: bool = False


async def open_ticket_exists(channel: str, sender_id: str) -> bool:
    """Whether the wallet DB has an open handoff ticket for the conversation.

    One indexed query, so the hot path does not replay the tracker for every
    message just to see whether a human has the conversation. A DB outage
    counts as "no": Rasa then handles the message as usual.
    """
    from walletbot.store.tickets import open_ticket_for
    from walletbot.store.service import WalletUnavailable, default_service

    try:
        ticket = await default_service().run(open_ticket_for, channel=channel, sender_id=sender_id)
    except WalletUnavailable:
        return False
    return ticket is not None


class RateLimiter:
    """Sliding-window limit per sender, in memory (one Rasa server).

    Args:
        per_minute: Messages a sender may send in any 60 seconds.
        max_senders: Senders remembered at most (oldest forgotten first).
        clock: Monotonic seconds; tests pass their own.
    """

    def __init__(self, per_minute: int = DEFAULT_PER_MINUTE, *, max_senders: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.max_senders = max_senders
        self.clock = clock
        self._seen: "OrderedDict[str, Deque[float]]" = OrderedDict()

    async def allow(self, sender: str) -> bool:
        """Records a message of ``sender``; False if it is over the limit."""
        if self.per_minute <= 0:
            return True
        now = self.clock()
        window = self._seen.pop(sender, None) or deque()
        while window and now - window[0] >= WINDOW_SECONDS:
            window.popleft()
        allowed = len(window) < self.per_minute
        if allowed:
            window.append(now)
        self._seen[sender] = window
        while len(self._seen) > self.max_senders:
            self._seen.popitem(last=False)
        return allowed


# Atomic, so two replicas checking the same sender at once cannot both slip
# under the limit: drop entries older than the window, count, maybe add.
_SLIDING_WINDOW_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(ARGV[2] * 1000))
return 1
"""


class RedisRateLimiter:
    """The same sliding window kept in Redis, so every replica counts together.

    Behind a load balancer a per-replica limit lets a sender through N times
    as often as configured. When Redis does not answer within ``timeout`` the
    message is allowed (and logged): throttling is abuse protection, not worth
    refusing service for; the lock store reports the outage to the user anyway.

    Args:
        url: a redis-py URL (``redis://:password@host:6379/0``).
        per_minute: Messages a sender may send in any 60 seconds.
        prefix: Prefix of the keys this limiter writes.
        timeout: Seconds to wait for Redis.
        clock: Wall-clock seconds (shared by replicas on one machine); tests pass their own.
    """

    def __init__(self, url: str, per_minute: int = DEFAULT_PER_MINUTE, *,
                 prefix: str = "walletbot:ratelimit:", timeout: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.per_minute = per_minute
        self.prefix = prefix
        self.timeout = timeout
        self.clock = clock
        self._bound: Optional[Tuple[asyncio.AbstractEventLoop, Any, Any]] = None

    def _script(self) -> Any:
        # redis.asyncio connections belong to the event loop that opened them.
        import redis.asyncio as redis_asyncio

        loop = asyncio.get_running_loop()
        if self._bound is None or self._bound[0] is not loop:
            client = redis_asyncio.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout)
            self._bound = (loop, client, client.register_script(_SLIDING_WINDOW_LUA))
        return self._bound[2]

    async def allow(self, sender: str) -> bool:
        """Records a message of ``sender``; False if it is over the limit."""
        if self.per_minute <= 0:
            return True
        now = self.clock()
        member = f"{now:.6f}:{uuid.uuid4().hex[:8]}"
        try:
            allowed = await asyncio.wait_for(
                self._script()(keys=[self.prefix + sender],
                               args=[now, WINDOW_SECONDS, self.per_minute, member]),
                self.timeout,
            )
        except Exception as error:  # redis errors, timeouts, refused connections
            logger.warning("rate limit not checked, Redis unavailable: %s", error)
            return True
        return bool(allowed)

    async def close(self) -> None:
        bound, self._bound = self._bound, None
        if bound is not None and bound[0] is asyncio.get_running_loop():
            await bound[1].close()


Limiter = Union[RateLimiter, RedisRateLimiter]


def make_limiter(environ: Optional[Mapping[str, str]] = None) -> Limiter:
    """The limiter for this deployment.

    ``RATE_LIMIT_PER_MINUTE`` (default 30; 0 switches the limit off); shared
    through Redis when ``REDIS_URL`` is set (several replicas), else in memory.
    """
    source = os.environ if environ is None else environ
    try:
        per_minute = int(source.get("RATE_LIMIT_PER_MINUTE") or DEFAULT_PER_MINUTE)
    except ValueError:
        logger.warning("RATE_LIMIT_PER_MINUTE is not a number; using %d", DEFAULT_PER_MINUTE)
        per_minute = DEFAULT_PER_MINUTE
    redis_url = source.get("REDIS_URL")
    if redis_url and per_minute > 0:
        return RedisRateLimiter(redis_url, per_minute)
    return RateLimiter(per_minute)


async def screen(text: Any, sender: str, limiter: Limiter,
                 *, max_chars: int = MAX_MESSAGE_CHARS) -> Verdict:
    """Checks a user message before the bot sees it."""
    if not isinstance(text, str) or not text.strip():
        return Verdict(reply=EMPTY)
    if not await limiter.allow(sender):
        return Verdict(reply=RATE_LIMITED)
    if len(text) > max_chars:
        return Verdict(reply=TOO_LONG.format(limit=max_chars))
    # Control characters other than line breaks carry nothing a user means.
    cleaned = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable()).strip()
    if not cleaned:
        return Verdict(reply=EMPTY)
    masked, changed = mask_incoming(cleaned)
    return Verdict(text=masked, masked=changed)


def action_endpoint_of(app: Any) -> Optional[str]:
    """The action server URL the Rasa server in ``app`` uses, if any."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    endpoint = getattr(agent, "action_endpoint", None)
    return getattr(endpoint, "url", None)


async def action_server_up(url: Optional[str], timeout: float = 1.0) -> bool:
    """Whether the action server at ``url`` answers its /health (no URL: True)."""
    if not url:
        return True
    health = url.rsplit("/webhook", 1)[0] + "/health"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(health) as response:
                return response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return False


# Rasa's processor logs, and otherwise swallows, an exception of a custom
# action (e.g. the action server is down) and goes on predicting, so the user
# may get a misleading follow-up instead of the answer. The failure is caught
# from that log record, for the turn (asyncio task context) that caused it.
_turn_failures: ContextVar[Optional[List[str]]] = ContextVar("walletbot_turn_failures", default=None)
_FAILURE_PREFIX = "Encountered an exception while running action"


class _ActionFailureWatch(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        failures = _turn_failures.get()
        message = str(record.msg)
        if failures is not None and message.startswith(_FAILURE_PREFIX):
            failures.append(message)


def _watch_action_failures() -> None:
    processor_log = logging.getLogger("rasa.core.processor")
    if not any(isinstance(h, _ActionFailureWatch) for h in processor_log.handlers):
        processor_log.addHandler(_ActionFailureWatch(level=logging.ERROR))


async def run_turn(
    turn: Callable[[], Awaitable[Any]],
    *,
    app: Any = None,
    message: Any = None,
    ticket_check: Callable[[str, str], Awaitable[bool]] = open_ticket_exists,
    produced: Callable[[], int],
    paused: Callable[[], Awaitable[bool]],
    health: Callable[[], Awaitable[bool]],
) -> Optional[str]:
    """Runs a bot turn; returns an apology if it failed or the user would get nothing.

    When an apology is returned, what the bot said during the turn is not to
    be trusted (an action failed midway) and the caller replaces it.

    Args:
        turn: The channel's ``on_new_message(...)`` call.
        app: The Rasa server's Sanic app; with ``message``, a paused
            conversation only stores the message (see :func:`keep_while_paused`).
        message: The ``UserMessage`` the turn is about.
        produced: How many bot messages the turn has sent so far.
        paused: Whether the conversation is paused (a handoff: silence is right).
        health: Whether the action server is reachable, e.g.
            ``lambda: action_server_up(action_endpoint_of(app))``.
    """
    _watch_action_failures()
    failures: List[str] = []
    token = _turn_failures.set(failures)
    try:
        if (app is not None and message is not None
                and await keep_while_paused(app, message, ticket_check)):
            return None
        await turn()
    except Exception as error:  # lock store, tracker store, model: the user must hear something
        logger.error("bot turn failed: %s: %s", type(error).__name__, error)
        return FAILED
    finally:
        _turn_failures.reset(token)
    if failures:
        logger.error("a custom action failed during the turn; the user gets an apology")
        return FAILED
    if produced() > 0:
        return None
    try:
        if await paused():
            return None
    except Exception:
        return FAILED
    if not await health():
        logger.error("bot turn produced nothing and the action server is unreachable")
        return FAILED
    return None


async def keep_while_paused(
    app: Any,
    message: Any,
    ticket_check: Callable[[str, str], Awaitable[bool]] = open_ticket_exists,
) -> bool:
    """Stores the message without a bot turn if a human has the conversation.

    Rasa would also stay silent, but it starts a new session first when the
    user has been quiet longer than ``session_expiration_time`` (a long wait
    in the queue), and a new session is no longer paused. Logging the message
    here keeps the bot silent until the agent hands the conversation back.

    Returns:
        Whether the message was stored (the caller then answers nothing).
    """
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    if agent is None or agent.tracker_store is None or agent.lock_store is None:
        return False
    if not await ticket_check(message.input_channel or "rest", message.sender_id):
        return False
    from rasa.shared.core.events import UserUttered

    async with agent.lock_store.lock(message.sender_id):
        tracker = await agent.tracker_store.retrieve(message.sender_id)
        if tracker is None or not tracker.is_paused():
            return False
        tracker.update(UserUttered(
            message.text, input_channel=message.input_channel,
            metadata=message.metadata, message_id=message.message_id,
        ))
        await agent.tracker_store.save(tracker)
    return True


async def is_paused(app: Any, sender_id: str) -> bool:
    """Whether the conversation is paused, from the Rasa server's tracker store."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    if agent is None or agent.tracker_store is None:
        return False
    tracker = await agent.tracker_store.retrieve(sender_id)
    return bool(tracker and tracker.is_paused())


async def bot_turn(
    on_new_message: Callable[[Any], Awaitable[Any]],
    message: Any,
    *,
    app: Any,
    produced: Callable[[], int],
) -> Optional[str]:
    """:func:`run_turn` for a channel inside the Rasa server ``app``.

    Returns:
        The apology to send in place of the turn's messages, or None.
    """
    return await run_turn(
        lambda: on_new_message(message),
        app=app,
        message=message,
        produced=produced,
        paused=lambda: is_paused(app, message.sender_id),
        health=lambda: action_server_up(action_endpoint_of(app)),
    )
