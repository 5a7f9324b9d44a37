"""At most N bot turns in progress per Rasa process; the rest wait their turn, first come first served.

A Rasa server runs every request's turn on one event loop. Without a bound,
under load every waiting message is "in progress": each turn's steps
(tracker read, NLU, policies, each action call, tracker write) queue behind
every other turn's steps, so a turn with more steps (a form with three action
calls) takes proportionally longer, and the slowest turns set the tail. With
a bound, a turn that starts runs with few others and ends soon; the rest wait
in arrival order. The mean time a message takes is the same at a given
throughput (it is set by the CPU), but the spread is much smaller, and fewer
half-done turns are held in memory at once.

The bound is ``TURN_CONCURRENCY`` (settings; 0: no bound). It needs only to be
large enough that the loop has work while turns wait on the database, Redis
or the action server. Side by side with no bound it measured no gain (bench/RESULTS.md,
"fifth round"), so the default is 0 (off); the gate stays for operators to try.

The slot is taken inside the conversation's lock (``Agent.handle_message``
holds the lock around ``MessageProcessor.handle_message``, which this wraps):
a message waiting for its own conversation's earlier message does not hold a
slot, so it cannot keep other conversations out.

:class:`FifoGate` hands a freed slot straight to the longest waiter.
``asyncio.Semaphore`` (Python 3.10) does not: a newcomer that arrives after a
release but before the woken waiter runs takes the slot, and the waiter goes
to the back of the queue again, which under load is exactly the unfairness
this module exists to remove.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import time
import weakref
from typing import Any, Awaitable, Callable, Deque, Optional, TypeVar

T = TypeVar("T")


class FifoGate:
    """A counting semaphore that admits waiters strictly in arrival order.

    Args:
        slots: How many holders at once (at least 1).
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self.slots = slots
        self._free = slots
        self._waiters: Deque["asyncio.Future[None]"] = collections.deque()

    @property
    def waiting(self) -> int:
        """Callers queued for a slot."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    @property
    def in_use(self) -> int:
        """Slots held now."""
        return self.slots - self._free

    async def acquire(self) -> None:
        """Takes a slot, waiting behind everyone who came earlier."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as it was cancelled: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Gives a slot back: to the longest waiter if there is one."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on; _free is unchanged
                return
        if self._free >= self.slots:
            raise RuntimeError("released more often than acquired")
        self._free += 1

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Runs ``work()`` holding a slot."""
        await self.acquire()
        try:
            return await work()
        finally:
            self.release()


# One gate per event loop (a Sanic worker is a process with one loop; tests
# start many loops). Created on first use, from the settings of that moment.
_gates: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Optional[FifoGate]]" = (
    weakref.WeakKeyDictionary())


def gate_for_loop(slots: Optional[int] = None) -> Optional[FifoGate]:
    """The running loop's turn gate (None: turns are not bounded).

    Args:
        slots: The bound for a gate created now (default: ``TURN_CONCURRENCY``).
    """
    loop = asyncio.get_running_loop()
    if loop not in _gates:
        if slots is None:
            from walletbot import settings

            slots = settings.current().turn_concurrency
        _gates[loop] = FifoGate(slots) if slots > 0 else None
    return _gates[loop]


def reset() -> None:
    """Forgets every loop's gate (tests that change ``TURN_CONCURRENCY``)."""
    _gates.clear()


def _admitted(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def handle_message(self: Any, message: Any) -> Any:
        gate = gate_for_loop()
        if gate is None:
            return await original(self, message)
        from walletbot.ops import metrics

        queued = time.perf_counter()
        await gate.acquire()
        try:
            metrics.turn_admitted(time.perf_counter() - queued)
            return await original(self, message)
        finally:
            gate.release()

    handle_message.__wrapped__ = original  # type: ignore[attr-defined]
    handle_message._walletbot_admission = True  # type: ignore[attr-defined]
    return handle_message


def install() -> None:
    """Bounds ``MessageProcessor.handle_message`` (a user turn) by the loop's gate. Idempotent."""
    from rasa.core.processor import MessageProcessor

    if getattr(MessageProcessor.handle_message, "_walletbot_admission", False):
        return
    MessageProcessor.handle_message = _admitted(  # type: ignore[assignment]
        MessageProcessor.handle_message)
