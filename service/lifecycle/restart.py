"""The restart half of `JobRunner` (a mixin): the durable row kept up to date while a job
runs (`remember`), and after a restart the jobs an earlier process left read back
(`left_over`), judged (`end_of`), counted (`begin_attempt`) and either dispatched again or
given up with one row and one message (`resume`, `give_up`). Apart from the worker half
because it runs once per start, on rows rather than on fresh requests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from core.errors import AnimeBotError
from service.convert import ConversionService
from service.jobs import MAX_AGE_S, MAX_ATTEMPTS
from service.lifecycle.dispatch import Dispatcher
from service.lifecycle.errors import Expired, GaveUp
from service.lifecycle.job import Job, job_from_pending
from service.lifecycle.outcomes import Outcomes
from service.lifecycle.outlet import Outlets
from storage.clock import now_ms

log = logging.getLogger("animebot.lifecycle")


class Restarts:
    """Mixed into `JobRunner`, which provides these."""

    service: ConversionService
    dispatcher: Dispatcher
    outlets: Outlets
    outcomes: Outcomes
    upgrades: dict[str, Callable[[Job], Job]]  # platform -> how to read an older front end's row
    track: Callable[[asyncio.Task[Any], str], None]

    async def remember(self, job: Job, **changes: Any) -> bool:
        """Keep more about where the answer goes in the durable row (a status message).
        False when the job was answered meanwhile (its row is gone, so whoever answered it
        will not tidy this up: the caller must); True otherwise, storage trouble included."""
        if not job.durable:
            return True
        return await self.service.jobs.update_reply(job.request_id, **changes) is not False

    async def left_over(self, platform: str) -> list[Job]:
        """The jobs of `platform` an earlier process left (read before new ones arrive),
        rows of an earlier version upgraded."""
        jobs = [job_from_pending(p) for p in await self.service.jobs.pending(platform)]
        upgrade = self.upgrades.get(platform)
        return jobs if upgrade is None else [upgrade(job) for job in jobs]

    def end_of(self, job: Job, *, answerable_s: float | None = None) -> AnimeBotError | None:
        """Why a job left by an earlier process is not run again, if it is not: older than
        `answerable_s` (the platform can no longer answer it: a Discord interaction token),
        tried MAX_ATTEMPTS times, or older than a day."""
        age = (now_ms() - job.created_at) / 1000
        if answerable_s is not None and age > answerable_s:
            return Expired("too old to answer")
        if job.attempts >= MAX_ATTEMPTS or age > MAX_AGE_S:
            return GaveUp("given up")
        return None

    async def begin_attempt(self, job: Job) -> Job | None:
        """Count one more attempt on a job left by an earlier process (None: it is gone)."""
        attempts = await self.service.jobs.begin_attempt(job.request_id)
        if attempts is None:
            return None
        admin = self.service.is_admin(job.platform, job.user_id)
        return replace(job, attempts=attempts, admin=admin)

    async def resume(self, left: list[Job], *, answerable_s: float | None = None) -> list[Job]:
        """Dispatch again the jobs an earlier process left (`left_over`); those past their
        end (`end_of`) are given up instead: one row, the person told once through
        `outlet.fail`. Returns the jobs dispatched."""
        resumed = []
        for job in left:
            end = self.end_of(job, answerable_s=answerable_s)
            if end is not None:
                task = asyncio.create_task(self.give_up(job, end), name="job-give-up")
                self.track(task, job.platform)
                continue
            again = await self.begin_attempt(job)
            if again is None:
                continue
            await self.dispatcher.dispatch(again)
            resumed.append(again)
        if resumed:
            log.info("resuming %d job(s) left by the previous run", len(resumed))
        return resumed

    async def give_up(self, job: Job, end: AnimeBotError) -> None:
        """A job past saving: its one row, the person told when its outlet is registered
        here, and the durable row finished whatever happens."""
        log.warning("job %s: %s after %d attempt(s)", job.request_id, end.code, job.attempts)
        await self.outcomes.record(job, "error", end.code)
        try:
            if job.outlet_kind in self.outlets.kinds():
                await self.outcomes.tell(job, self.outlets.outlet_for(job), end)
        finally:
            await self.service.jobs.finish(job.request_id)
