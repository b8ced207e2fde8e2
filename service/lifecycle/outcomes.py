"""How a job ends, for the person and in the books: exactly one usage row per request (the
service writes it for what reaches a conversion, `Outcomes.record` for what is decided before),
the reason told through the outlet without ever failing the job, and the durable row finished
once the person has an answer, or kept when a shutdown puts the job off. Shared by the worker
half and the restart half of `JobRunner`, so both keep the same books."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from core.errors import AnimeBotError
from service.convert import ConversionService
from service.errors import InternalError, ShuttingDown
from service.jobs import to_the_end
from service.lifecycle.job import Job
from service.lifecycle.outlet import DeliveryFailed, Outlet

log = logging.getLogger("animebot.lifecycle")

NOTICE_S = 3.0  # cut short by a shutdown: at most this long to tell the person


class Outcomes:
    def __init__(self, service: ConversionService) -> None:
        self.service = service

    async def refuse(self, job: Job, outlet: Outlet, exc: AnimeBotError) -> None:
        """Turned away outside the service: the request's one usage row, then the reason."""
        status = "refused" if isinstance(exc, ShuttingDown) else "error"
        await self.record(job, status, exc.code)
        await self.tell(job, outlet, exc)

    async def internal(self, job: Job, outlet: Outlet) -> None:
        """A bug answered with a reference (the request id), never the exception's text."""
        await self.service.update_outcome(job.platform, job.request_id, "error", "internal")
        await self.tell(job, outlet, InternalError(job.request_id))

    async def tell(self, job: Job, outlet: Outlet, exc: AnimeBotError) -> None:
        """The reason through the outlet; a chat that cannot take it changes nothing."""
        try:
            await outlet.fail(job, exc)
        except DeliveryFailed as failed:
            log.info("job %s: the reason could not be sent (%s)", job.request_id, failed.kind)
        except Exception:
            log.exception("job %s: the reason could not be sent", job.request_id)

    async def record(self, job: Job, status: str, kind: str) -> None:
        """The request's one usage row, for an outcome decided outside the service."""
        await self.service.record_outcome(
            job.platform, job.user_id, status, kind, chat_id=job.chat_id, request_id=job.request_id
        )

    async def finish(self, job: Job, outlet: Outlet) -> None:
        """Answered: the durable row goes first (it must never run again), then the outlet
        tidies up (a status message), briefly. The outlet gets the row's last word on where
        the answer went: a status message another process (a front end showing the queue
        position) posted after this run read the row is in it, and goes too."""
        if job.durable:
            last = await self.service.jobs.finish(job.request_id)
            if last:
                job = job.with_outlet(**last)
        try:
            async with asyncio.timeout(NOTICE_S):
                await outlet.end(job)
        except TimeoutError:
            log.info("job %s: the outlet could not tidy up in time", job.request_id)
        except Exception:
            log.exception("job %s: the outlet could not tidy up", job.request_id)

    async def put_off(self, job: Job, outlet: Outlet) -> None:
        """One notice for the person (done after the restart), and the job kept."""
        changes: dict[str, Any] = {}
        try:
            async with asyncio.timeout(NOTICE_S):
                changes = await outlet.defer(job)
        except TimeoutError:
            log.info("job %s: no time left to tell the person about the restart", job.request_id)
        except Exception:
            log.exception("job %s: could not tell the person about the restart", job.request_id)
        if job.durable:
            await to_the_end(self.service.jobs.defer(job.request_id, **changes))
