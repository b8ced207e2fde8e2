"""How accepted jobs reach `JobRunner.execute`: in this process (`LocalDispatcher`, the
default: `make run` is one process), or through a shared queue to worker processes on other
machines (the Redis dispatcher, `service/queue/`)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from service.lifecycle.job import Job
    from service.lifecycle.runner import JobRunner

log = logging.getLogger("animebot.lifecycle")


class Dispatcher(Protocol):
    async def dispatch(self, job: Job) -> None:
        """Hand the job on; returns once it is safely queued (not when it is done)."""

    async def position(self, job: Job) -> tuple[int, float | None]:
        """(jobs ahead of it, estimated seconds until it starts, when known)."""

    async def depth(self) -> int:
        """Jobs waiting for a worker."""

    async def frames(self, request_id: str) -> tuple[int, int] | None:
        """A clip's progress (frames done, frames in all) wherever it runs; None before its
        first report or after its end."""

    async def workers(self) -> int:
        """Conversions that can run at once."""


class LocalDispatcher:
    """Runs each job in a task of this process; the service's fair queue orders them."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    async def dispatch(self, job: Job) -> None:
        task = asyncio.create_task(self._run(job), name=f"job-{job.request_id[:12]}")
        self.runner.track(task, job.platform)

    async def _run(self, job: Job) -> None:
        try:
            await self.runner.execute(job)
        except asyncio.CancelledError:
            raise
        except Exception:  # execute answers every failure itself: this is a bug
            log.exception("job %s failed outside the lifecycle", job.request_id[:12])

    async def position(self, job: Job) -> tuple[int, float | None]:
        status = self.runner.last_status(job.request_id)
        if status is None:
            return 0, None
        return status.position, status.eta_s

    async def depth(self) -> int:
        return self.runner.service.queue.waiting

    async def frames(self, request_id: str) -> tuple[int, int] | None:
        return self.runner.last_frames(request_id)

    async def workers(self) -> int:
        return self.runner.service.queue.workers
