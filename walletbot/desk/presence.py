"""Which agents have the desk open: every authenticated request counts as "seen".

Auto-assignment and the agents list read ``agent_presence.last_seen_at``. The
console polls every 2 seconds, so each process writes an agent's row at most
every :data:`EVERY` seconds; a failed write is logged and never fails the
request it rides on.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Dict

from walletbot.store import desk_tools
from walletbot.store.service import WalletService

logger = logging.getLogger(__name__)

EVERY = 10.0


class PresenceRecorder:
    """Records agents as seen, throttled per agent in this process.

    Args:
        wallet: Returns the wallet DB gateway (read at each write: tests swap it).
        every: Seconds between two writes for one agent.
        clock: Monotonic seconds (tests).
    """

    def __init__(self, wallet: Callable[[], WalletService], *, every: float = EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._wallet = wallet
        self.every = every
        self._clock = clock
        self._last: Dict[str, float] = {}

    async def seen(self, login: str) -> None:
        """Notes ``login`` as present, unless this process did so less than ``every`` ago."""
        now = self._clock()
        last = self._last.get(login)
        if last is not None and now - last < self.every:
            return
        # Set before the write: a failing DB is retried after ``every``, not on each poll.
        self._last[login] = now
        try:
            await self._wallet().run(desk_tools.record_seen, login=login)
        except Exception as error:  # noqa: BLE001 - presence must never fail a request
            logger.warning("presence of %s not recorded: %s", login, type(error).__name__)
