"""Durable jobs, as the bots use them: accepted requests kept in the database until answered.

    job = await service.jobs.accept(platform, user_id, lang, source=..., reply=...)
    ...  # convert and answer
    await service.jobs.finish(job)  # answered (a result, or a message saying why not)

A bot accepts a job before the platform learns the request was received (Telegram: before
the getUpdates offset moves past the update; Discord: right after the deferral), so a crash
loses nothing that was confirmed. A job's id is the platform's own key for the request, so a
request delivered again after a crash (accepted, not yet confirmed) is recognised
(AlreadyAccepted) instead of being answered twice. A job put off by a shutdown stays
(`defer`). At start a bot finishes what is left, at most `MAX_ATTEMPTS` times per job, so a
photo that crashes the process cannot crash it forever.

Storage trouble never fails a request: a job that cannot be written runs anyway (logged), it
is only not durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from storage import Database, PendingJob
from storage.clock import now_ms

log = logging.getLogger("animebot.jobs")

T = TypeVar("T")

MAX_ATTEMPTS = 2  # process starts that may work on one job; the next start gives up on it
MAX_AGE_S = 24 * 3600.0  # a job older than this is dropped (raw ids must not stay forever)


class AlreadyAccepted(Exception):
    """The request is already a pending job: the platform delivered it again."""


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def key(self, platform: str, request: str) -> str:
        """A job's id from the platform's own key for the request (e.g. chat and message id):
        the same for a request delivered again, and, being a keyed hash, no raw id in the
        logs or the table's key."""
        return self.db.hash_id(platform, f"job\0{request}")[:32]

    async def accept(
        self,
        platform: str,
        user_id: str | int,
        lang: str,
        *,
        key: str,
        chat_id: str | int | None = None,
        source: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        reply: dict[str, Any] | None = None,
    ) -> PendingJob | None:
        """Write the job under `key` (committed when this returns); None when it could not be
        written; AlreadyAccepted when a job with that key is pending already."""
        job = PendingJob(
            id=key,
            platform=platform,
            user_id=str(user_id),
            user_hash=self.db.hash_id(platform, user_id),
            chat_id=None if chat_id is None else str(chat_id),
            lang=lang,
            source=dict(source or {}),
            options=dict(options or {}),
            reply=dict(reply or {}),
        )
        try:
            added = await self.db.jobs.add(job)
        except Exception:
            log.exception("job %s: could not store it; it runs, but not durably", job.id)
            return None
        if not added:
            raise AlreadyAccepted(job.id)
        return job

    async def get(self, job_id: str) -> PendingJob | None:
        """The pending row of `job_id`, None once it was finished; raises when storage does
        not answer (the caller decides: a worker runs the job anyway)."""
        return await self.db.jobs.get(job_id)

    async def pending(self, platform: str) -> list[PendingJob]:
        try:
            return await self.db.jobs.pending(platform)
        except Exception:
            log.exception("could not read the pending %s jobs", platform)
            return []

    async def begin_attempt(self, job_id: str) -> int | None:
        """Count a new attempt on a job left by an earlier process; None when it is gone."""
        return await self._quietly(job_id, self.db.jobs.begin_attempt(job_id))

    async def update_reply(self, job_id: str, **changes: Any) -> bool | None:
        """Remember more about where the answer goes (a status message sent meanwhile).
        False: the job is no longer pending (answered meanwhile, maybe by another process,
        which did not learn of the change); None: storage did not answer."""
        return await self._quietly(job_id, self.db.jobs.update_reply(job_id, **changes))

    async def defer(self, job_id: str, **reply_changes: Any) -> None:
        """Put off by a shutdown: keep it for the next start (this attempt does not count)."""
        await self._quietly(job_id, self.db.jobs.defer(job_id, **reply_changes))

    async def finish(self, job_id: str) -> dict[str, Any] | None:
        """Answered: delete the job and the raw ids it holds. Returns where the answer went as
        the row knew it last (another process may have added a status message to it since
        this one read it); None when the row was gone or storage did not answer."""
        return await self._quietly(job_id, self.db.jobs.finish(job_id))

    async def expire(self, max_age_s: float = MAX_AGE_S) -> int:
        """Drop jobs nobody finished within `max_age_s`."""
        cutoff = now_ms() - int(max_age_s * 1000)
        count = await self._quietly("-", self.db.jobs.delete_older_than(cutoff))
        return int(count or 0)

    @staticmethod
    async def _quietly(job_id: str, step: Awaitable[T]) -> T | None:
        try:
            return await step
        except Exception:
            log.exception("request %s: job bookkeeping failed", job_id)
            return None


async def to_the_end(step: Coroutine[Any, Any, None]) -> None:
    """Finish `step` even if this task is cancelled meanwhile, then re-raise the cancellation:
    the bookkeeping of a job that was answered or put off must not be cut in half (a job left
    pending after its answer would be answered again after the restart)."""
    task = asyncio.ensure_future(step)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("job bookkeeping failed", exc_info=exc)
    if cancelled:
        raise asyncio.CancelledError
