"""A bounded, fair admission queue in front of the engine.

Start-time fair queuing (Goyal et al. 1996) with unit job cost: each waiting job gets the tag
max(V, that user's last tag + 1), where V is the tag of the job admitted last; the smallest
tag goes next. A user who sends 20 photos at once gets tags V..V+19, a user arriving later with
one photo gets tag V, so the newcomer waits for at most the jobs already running plus one.

Cancellation is safe in any combination: a waiter cancelled while still queued leaves the heap;
one cancelled in the same loop iteration its turn came passes the slot on; a waiter whose
future is already cancelled is skipped when slots are handed out (never granted, never
removed twice). `close()` turns every waiter away with `ShuttingDown` and refuses new ones;
jobs already running keep their slots until they finish.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from service.errors import Busy, ShuttingDown


@dataclass(frozen=True)
class QueueStatus:
    position: int  # jobs that will start before this one; 0 = starting now
    eta_s: float


ProgressCallback = Callable[[QueueStatus], Awaitable[None]]

RESTART_RETRY_S = 60.0  # what a refusal at shutdown suggests: a restart takes about this long


@dataclass(order=True)
class _Waiter:
    tag: int
    seq: int
    user: str = field(compare=False)
    future: asyncio.Future[None] = field(compare=False)
    on_progress: ProgressCallback | None = field(compare=False, default=None)
    last_sent: int = field(compare=False, default=-1)
    queued: bool = field(compare=False, default=True)  # still in the heap
    granted: bool = field(compare=False, default=False)  # holds a slot it must release


class FairQueue:
    def __init__(self, workers: int, max_waiting: int, *, initial_job_s: float = 1.0) -> None:
        self.workers = workers
        self.max_waiting = max_waiting
        self.running = 0
        self._heap: list[_Waiter] = []
        self._virtual = 0
        self._last_tag: dict[str, int] = {}
        self._seq = itertools.count()
        self._job_s = initial_job_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def waiting(self) -> int:
        return len(self._heap)

    @property
    def closed(self) -> bool:
        return self._closed

    def eta_s(self, position: int) -> float:
        return (position // max(1, self.workers) + 1) * self._job_s

    def observe(self, seconds: float) -> None:
        """Fold a finished job's duration into the ETA estimate (exponential average)."""
        self._job_s = 0.8 * self._job_s + 0.2 * seconds

    @asynccontextmanager
    async def slot(
        self, user: str, on_progress: ProgressCallback | None = None
    ) -> AsyncIterator[float]:
        """Wait for a turn; yields the milliseconds spent waiting. Raises Busy when the queue
        is full, ShuttingDown once it is closed (also while waiting)."""
        started = time.perf_counter()
        if self._closed:
            raise ShuttingDown("the queue is closed", retry_after_s=RESTART_RETRY_S)
        if self.running < self.workers and not self._heap:
            self.running += 1
            self._last_tag[user] = max(self._virtual, self._last_tag.get(user, 0)) + 1
        else:
            if len(self._heap) >= self.max_waiting:
                raise Busy("queue full", retry_after_s=self.eta_s(len(self._heap)))
            tag = max(self._virtual, self._last_tag.get(user, 0))
            self._last_tag[user] = tag + 1
            waiter = _Waiter(tag, next(self._seq), user, asyncio.get_running_loop().create_future())
            waiter.on_progress = on_progress
            heapq.heappush(self._heap, waiter)
            self._notify()
            try:
                await waiter.future
            except asyncio.CancelledError:
                self._leave(waiter)
                raise
        t0 = time.perf_counter()
        try:
            yield (t0 - started) * 1000
        finally:
            self.observe(time.perf_counter() - t0)
            self._release()

    def close(self) -> None:
        """Refuse new waiters and turn every waiting one away with ShuttingDown; running jobs
        keep their slots. Idempotent."""
        self._closed = True
        waiters, self._heap = self._heap, []
        for waiter in waiters:
            waiter.queued = False
            if not waiter.future.done():
                waiter.future.set_exception(
                    ShuttingDown("shutting down", retry_after_s=RESTART_RETRY_S)
                )

    def _leave(self, waiter: _Waiter) -> None:
        """A waiter's task was cancelled: undo exactly what the queue did for it."""
        if waiter.granted:  # its turn came in the same iteration: pass the slot on
            waiter.granted = False
            self._release()
        elif waiter.queued:
            waiter.queued = False
            self._heap.remove(waiter)
            heapq.heapify(self._heap)
            self._notify()
        # else: already taken off the heap (skipped as cancelled, or by close()): nothing held

    def _release(self) -> None:
        self.running -= 1
        while self._heap and self.running < self.workers and not self._closed:
            waiter = heapq.heappop(self._heap)
            waiter.queued = False
            if waiter.future.done():  # cancelled while waiting; its task undoes nothing
                continue
            self._virtual = waiter.tag
            self.running += 1
            waiter.granted = True
            waiter.future.set_result(None)
            self._send(waiter, 0)
        self._notify()

    def _notify(self) -> None:
        live = sorted(w for w in self._heap if not w.future.done())
        for position, waiter in enumerate(live):
            self._send(waiter, position + self.running - self.workers + 1 if position else 1)

    def _send(self, waiter: _Waiter, position: int) -> None:
        position = max(0, position)
        if waiter.on_progress is None or position == waiter.last_sent:
            return
        waiter.last_sent = position
        task = asyncio.ensure_future(
            waiter.on_progress(QueueStatus(position, self.eta_s(position)))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
