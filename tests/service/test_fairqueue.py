"""The fair queue under concurrent cancellation (issue 15, item 2): waiters cancelled together,
a waiter cancelled in the iteration its turn came, and closing at shutdown. No slot may leak,
no waiter may be granted twice, and no internal error may surface (the seed raised
`ValueError: list.remove(x)` and `InvalidStateError` from `set_result` here)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from service.errors import ShuttingDown
from service.fairqueue import FairQueue


async def until(predicate: Callable[[], bool], limit_s: float = 5.0) -> None:
    """Let the loop run until `predicate` holds (a deadline, not a sleep)."""
    async with asyncio.timeout(limit_s):
        while not predicate():  # noqa: ASYNC110 - yields to the tasks under test, no waiting
            await asyncio.sleep(0)


@asynccontextmanager
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """Everything the event loop would log as an error (failed callbacks, lost exceptions)."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield seen
    finally:
        loop.set_exception_handler(previous)


async def wait_in(queue: FairQueue, user: str, admitted: list[str]) -> None:
    async with queue.slot(user):
        admitted.append(user)


def queue_waiters(queue: FairQueue, count: int, admitted: list[str]) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(wait_in(queue, f"u{n}", admitted)) for n in range(count)]


async def test_waiters_cancelled_together_with_the_holder_leave_no_trace() -> None:
    queue = FairQueue(workers=1, max_waiting=50)
    admitted: list[str] = []
    async with loop_errors() as errors:
        release = asyncio.Event()

        async def hold() -> None:
            async with queue.slot("holder"):
                await release.wait()

        holder = asyncio.create_task(hold())
        await until(lambda: queue.running == 1)
        waiters = queue_waiters(queue, 12, admitted)
        await until(lambda: queue.waiting == 12)
        release.set()  # the holder's release and every cancellation land in one iteration
        for task in waiters:
            task.cancel()
        results = await asyncio.gather(holder, *waiters, return_exceptions=True)
    assert results[0] is None  # the holder finished normally: its release raised nothing
    assert all(isinstance(r, asyncio.CancelledError) for r in results[1:]), results
    assert admitted == [] and queue.running == 0 and queue.waiting == 0
    assert errors == []
    async with asyncio.timeout(1), queue.slot("after"):  # nothing leaked: a slot is free
        assert queue.running == 1


async def test_a_waiter_cancelled_as_its_turn_comes_passes_the_slot_on() -> None:
    queue = FairQueue(workers=1, max_waiting=50)
    admitted: list[str] = []
    async with loop_errors() as errors:
        async with queue.slot("holder"):
            first, second = queue_waiters(queue, 2, admitted)
            await until(lambda: queue.waiting == 2)
        # Leaving the block granted `first` its slot; it is cancelled before it can run.
        first.cancel()
        await asyncio.gather(first, second, return_exceptions=True)
    assert first.cancelled() and second.done() and second.exception() is None
    assert admitted == ["u1"] and queue.running == 0 and queue.waiting == 0
    assert errors == []


async def test_cancelling_every_waiter_while_slots_free_up_one_by_one() -> None:
    """Interleavings of releases and cancellations: the count of running jobs stays exact."""
    queue = FairQueue(workers=2, max_waiting=100)
    admitted: list[str] = []
    async with loop_errors() as errors:
        gates = [asyncio.Event() for _ in range(2)]

        async def hold(n: int) -> None:
            async with queue.slot(f"holder{n}"):
                await gates[n].wait()

        holders = [asyncio.create_task(hold(n)) for n in range(2)]
        await until(lambda: queue.running == 2)
        waiters = queue_waiters(queue, 30, admitted)
        await until(lambda: queue.waiting == 30)
        gates[0].set()
        for task in waiters[::2]:
            task.cancel()
        await asyncio.sleep(0)
        gates[1].set()
        for task in waiters[1::2]:
            task.cancel()
        await asyncio.gather(*holders, *waiters, return_exceptions=True)
    assert all(t.cancelled() or t.exception() is None for t in waiters)
    assert queue.running == 0 and queue.waiting == 0
    assert len(admitted) == len(set(admitted)) and len(admitted) <= 2
    assert errors == []


async def test_close_turns_every_waiter_away_and_keeps_running_jobs() -> None:
    queue = FairQueue(workers=1, max_waiting=50)
    admitted: list[str] = []
    release = asyncio.Event()

    async def hold() -> None:
        async with queue.slot("holder"):
            await release.wait()

    holder = asyncio.create_task(hold())
    await until(lambda: queue.running == 1)
    waiters = queue_waiters(queue, 5, admitted)
    await until(lambda: queue.waiting == 5)
    waiters[0].cancel()  # one of them is cancelled in the same iteration
    queue.close()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert all(isinstance(r, ShuttingDown) for r in results[1:]), results
    assert not holder.done() and queue.running == 1 and queue.waiting == 0
    with pytest.raises(ShuttingDown):
        async with queue.slot("late"):
            pass
    release.set()
    await holder
    assert admitted == [] and queue.running == 0
