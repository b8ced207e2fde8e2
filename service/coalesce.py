"""Identical work done once: requests that want the same result share one computation.

A double tap on a button, or the same photo sent by several people at once, asks for a result
that is already being computed. `InFlight` maps a result's cache key to the `SharedJob`
computing it; a second request joins the job instead of computing again.

The computation runs in its own task, so it is not tied to the request that started it: when
that request is cancelled (the person left), the job goes on for the others, and one of them
takes over as the request that computed the result (its usage row carries the compute time).
Only when the last interested request leaves is the job cancelled, as a lone request's would
be. Queue positions go to every request still waiting.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

from service.fairqueue import ProgressCallback, QueueStatus

log = logging.getLogger("animebot.service")

T = TypeVar("T")
Work = Callable[[ProgressCallback], Coroutine[Any, Any, T]]


class SharedJob(Generic[T]):
    """One computation and the requests waiting for it."""

    def __init__(self, registry: InFlight[T], key: str, owner: str, work: Work[T]) -> None:
        self.key = key
        self.owner: str | None = owner  # request id whose row says "computed"; None: first back
        self._registry = registry
        self._waiters = 0
        self._claimed = False
        self._progress: list[ProgressCallback] = []
        self._last: QueueStatus | None = None
        self._reports: set[asyncio.Task[Any]] = set()
        self.task: asyncio.Task[T] = asyncio.ensure_future(work(self._report))
        self.task.add_done_callback(self._finished)

    @property
    def waiters(self) -> int:
        return self._waiters

    async def result(self, request_id: str, on_progress: ProgressCallback | None) -> tuple[T, bool]:
        """Wait for the result: (the result, True when this request counts as the one that
        computed it, False when it shared another's work). Cancelling the caller leaves the
        computation running for the other requests."""
        self._waiters += 1
        if on_progress is not None:
            self._progress.append(on_progress)
            if self._last is not None:  # joined while it waits: where it stands, at once
                self._spawn(on_progress(self._last))
        try:
            value = await asyncio.shield(self.task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self.task.cancelled() and not (current is not None and current.cancelling()):
                raise RuntimeError("a shared conversion was cancelled under its requests") from None
            raise
        finally:
            self._waiters -= 1
            if on_progress is not None:
                self._progress.remove(on_progress)
            if not self.task.done():
                if self._waiters == 0:
                    self._abandon()
                elif self.owner == request_id:
                    self.owner = None  # the next request back takes over
        computed = not self._claimed and self.owner in (request_id, None)
        self._claimed = self._claimed or computed
        return value, computed

    async def _report(self, status: QueueStatus) -> None:
        """The progress callback the computation gives the fair queue: to every waiter."""
        self._last = status
        for callback in list(self._progress):
            self._spawn(callback(status))

    def _spawn(self, report: Awaitable[None]) -> None:
        task = asyncio.ensure_future(report)
        self._reports.add(task)
        task.add_done_callback(self._reported)

    def _reported(self, task: asyncio.Task[Any]) -> None:
        self._reports.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("a queue position report failed", exc_info=task.exception())

    def _abandon(self) -> None:
        """Nobody waits any more: stop the work, and let no later request join it."""
        self._registry.discard(self)
        self.task.cancel()

    def _finished(self, task: asyncio.Task[T]) -> None:
        self._registry.discard(self)
        if not task.cancelled():
            task.exception()  # retrieved: every waiter that was still there got it already


class InFlight(Generic[T]):
    """Result key -> the job computing it, while it runs."""

    def __init__(self) -> None:
        self._jobs: dict[str, SharedJob[T]] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def get(self, key: str) -> SharedJob[T] | None:
        return self._jobs.get(key)

    def start(self, key: str, owner: str, work: Work[T]) -> SharedJob[T]:
        """Run `work(report_progress)` as the job for `key`; `owner` is the request id that
        started it."""
        if key in self._jobs:
            raise RuntimeError(f"a job for {key} is already running")
        job = SharedJob(self, key, owner, work)
        self._jobs[key] = job
        return job

    def discard(self, job: SharedJob[T]) -> None:
        if self._jobs.get(job.key) is job:
            del self._jobs[job.key]
