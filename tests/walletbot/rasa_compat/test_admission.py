"""Turn admission: at most N turns at once per process, admitted in arrival order."""

from __future__ import annotations

import asyncio
from typing import List

import pytest
from hypothesis import given, settings, strategies as st
from rasa.core.agent import Agent
from rasa.core.channels.channel import UserMessage
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain

from walletbot import settings as settings_module
from walletbot.ops import metrics
from walletbot.rasa_compat import admission
from walletbot.rasa_compat.admission import FifoGate


@pytest.fixture(autouse=True)
def fresh_gates():
    admission.reset()
    yield
    admission.reset()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_freed_slot_goes_to_the_longest_waiter_not_to_a_newcomer():
    # asyncio.Semaphore (3.10) lets the releasing task take the slot straight
    # back, sending the woken waiter to the end of the queue.
    gate = FifoGate(1)
    order: List[str] = []
    await gate.acquire()

    async def waiter(name: str) -> None:
        await gate.acquire()
        order.append(name)
        gate.release()

    first = asyncio.create_task(waiter("waiting"))
    await settle()
    gate.release()
    await gate.acquire()  # the releaser comes straight back
    order.append("came back")
    gate.release()
    await first
    assert order == ["waiting", "came back"]


async def test_waiters_are_admitted_in_arrival_order_and_never_more_than_the_slots():
    gate = FifoGate(2)
    inside = 0
    most = 0
    admitted: List[int] = []

    async def turn(number: int) -> None:
        nonlocal inside, most
        async def work() -> None:
            nonlocal inside, most
            inside += 1
            most = max(most, inside)
            admitted.append(number)
            await asyncio.sleep(0.001 * (number % 3))
            inside -= 1
        await gate.run(work)

    tasks = []
    for number in range(12):
        tasks.append(asyncio.create_task(turn(number)))
        await asyncio.sleep(0)  # arrival order = creation order
    await asyncio.gather(*tasks)
    assert most == 2
    assert admitted == list(range(12))
    assert gate.in_use == 0 and gate.waiting == 0


@settings(max_examples=60, deadline=None)
@given(slots=st.integers(1, 4),
       turns=st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=15))
def test_any_mix_of_cancellations_keeps_the_bound_and_leaks_no_slot(slots, turns):
    """Random hold times; some turns are cancelled while they wait or just as they get a slot."""

    async def scenario() -> None:
        gate = FifoGate(slots)
        inside = 0
        most = 0

        async def work(ticks: int) -> None:
            nonlocal inside, most
            inside += 1
            most = max(most, inside)
            try:  # a turn may be cancelled while it runs, too
                for _ in range(ticks):
                    await asyncio.sleep(0)
            finally:
                inside -= 1

        tasks = [asyncio.create_task(gate.run(lambda t=ticks: work(t))) for ticks, _ in turns]
        await asyncio.sleep(0)
        for task, (_, cancel) in zip(tasks, turns):
            if cancel:
                task.cancel()
            await asyncio.sleep(0)
        await asyncio.gather(*tasks, return_exceptions=True)
        assert most <= slots
        assert gate.in_use == 0 and gate.waiting == 0
        # and the gate still admits as many as it should
        await asyncio.gather(*(gate.run(lambda: work(1)) for _ in range(slots + 1)))
        assert gate.in_use == 0

    asyncio.run(scenario())


async def test_a_waiter_cancelled_just_as_it_was_handed_the_slot_passes_it_on():
    gate = FifoGate(1)
    await gate.acquire()
    handed = asyncio.create_task(gate.acquire())
    after = asyncio.create_task(gate.acquire())
    await settle()
    gate.release()   # the slot goes to `handed`, which has not run yet
    handed.cancel()
    await asyncio.wait_for(after, 1)  # without the hand-on, this waits forever
    assert gate.in_use == 1
    gate.release()
    assert gate.in_use == 0


def test_a_gate_needs_a_slot_and_cannot_be_over_released():
    with pytest.raises(ValueError):
        FifoGate(0)
    gate = FifoGate(1)
    with pytest.raises(RuntimeError):
        gate.release()


@pytest.mark.parametrize("raw, expected", [
    (None, settings_module.DEFAULT_TURN_CONCURRENCY), ("", settings_module.DEFAULT_TURN_CONCURRENCY),
    ("0", 0), ("3", 3), (" 8 ", 8),
    ("-1", settings_module.DEFAULT_TURN_CONCURRENCY), ("many", settings_module.DEFAULT_TURN_CONCURRENCY),
])
def test_turn_concurrency_setting(raw, expected):
    environ = {"WALLETBOT_ENV": "dev"}
    if raw is not None:
        environ["TURN_CONCURRENCY"] = raw
    assert settings_module.Settings.from_env(environ).turn_concurrency == expected


async def test_the_loop_gate_follows_the_setting(monkeypatch):
    monkeypatch.setenv("TURN_CONCURRENCY", "0")
    assert admission.gate_for_loop() is None
    admission.reset()
    monkeypatch.setenv("TURN_CONCURRENCY", "3")
    gate = admission.gate_for_loop()
    assert gate is not None and gate.slots == 3
    assert admission.gate_for_loop() is gate  # one per loop


class GatedProcessor:
    """Stands in for MessageProcessor: its turns wait until the test lets them finish."""

    def __init__(self) -> None:
        self.running: List[str] = []
        self.release = {}

    async def _turn(self, message: UserMessage) -> list:
        self.running.append(message.sender_id + ":" + message.text)
        await self.release.setdefault(message.text, asyncio.Event()).wait()
        return []

    handle_message = admission._admitted(_turn)


async def test_a_message_waiting_for_its_own_conversation_holds_no_slot(monkeypatch):
    """Two slots; conversation A's second message waits for A's lock, B's message runs."""
    monkeypatch.setenv("TURN_CONCURRENCY", "2")
    processor = GatedProcessor()
    agent = Agent(domain=Domain.empty(), tracker_store=InMemoryTrackerStore(Domain.empty()),
                  lock_store=InMemoryLockStore())
    agent.processor = processor

    def send(sender: str, text: str) -> "asyncio.Task":
        return asyncio.create_task(agent.handle_message(UserMessage(text, sender_id=sender)))

    a1 = send("a", "a1")
    await settle()
    a2 = send("a", "a2")  # waits for a's lock (Rasa polls it every second)
    await settle()
    b1 = send("b", "b1")
    await settle()
    assert processor.running == ["a:a1", "b:b1"]
    for text in ("a1", "b1"):
        processor.release.setdefault(text, asyncio.Event()).set()
    processor.release.setdefault("a2", asyncio.Event()).set()
    await asyncio.wait_for(asyncio.gather(a1, a2, b1), 5)
    assert processor.running == ["a:a1", "b:b1", "a:a2"]


async def test_turns_beyond_the_bound_queue_and_their_wait_is_measured(monkeypatch):
    monkeypatch.setenv("TURN_CONCURRENCY", "1")
    processor = GatedProcessor()
    before = metrics.TURN_QUEUE_SECONDS.collect()[0]
    count_before = next(s.value for s in before.samples if s.name.endswith("_count"))
    first = asyncio.create_task(processor.handle_message(UserMessage("x", sender_id="a")))
    second = asyncio.create_task(processor.handle_message(UserMessage("y", sender_id="b")))
    await settle()
    assert processor.running == ["a:x"]
    processor.release.setdefault("x", asyncio.Event()).set()
    await settle()
    assert processor.running == ["a:x", "b:y"]
    processor.release.setdefault("y", asyncio.Event()).set()
    await asyncio.gather(first, second)
    after = metrics.TURN_QUEUE_SECONDS.collect()[0]
    count_after = next(s.value for s in after.samples if s.name.endswith("_count"))
    assert count_after - count_before == 2


async def test_without_a_bound_every_turn_runs_at_once(monkeypatch):
    monkeypatch.setenv("TURN_CONCURRENCY", "0")
    processor = GatedProcessor()
    tasks = [asyncio.create_task(processor.handle_message(UserMessage(str(n), sender_id=str(n))))
             for n in range(6)]
    await settle()
    assert len(processor.running) == 6
    for n in range(6):
        processor.release.setdefault(str(n), asyncio.Event()).set()
    await asyncio.gather(*tasks)
