"""The one job lifecycle: every front end's request goes through `JobRunner`.

Front half, `accept(job)`, where the update arrived: the admin decision, the size check
(before anything is downloaded), the durable row, then `dispatcher.dispatch(job)`.
Worker half, `execute(job)`, wherever a worker runs: fetch the photo, convert it (the
service: decode once, cache, quota, fair queue, engine, encoded once to the outlet's limits
(`requests.py`); a clip through the clip service, its progress in frames to the outlet),
deliver, and the bookkeeping (`outcomes.py`): exactly one usage row per request (a failed
delivery updates it), the durable row finished once the person has an answer, or kept when a
shutdown puts the job off. In-flight work is tracked here, so a drain waits for it. After a
restart, the jobs an earlier process left come back through the restart half (`restart.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from core.errors import AnimeBotError, ImageTooLarge
from core.video import looks_like_clip
from service.clips import ClipReply, ClipService
from service.convert import ConversionReply, ConversionService
from service.errors import Refusal, ShuttingDown
from service.fairqueue import RESTART_RETRY_S, ProgressCallback, QueueStatus
from service.jobs import AlreadyAccepted, to_the_end
from service.lifecycle.dispatch import Dispatcher, LocalDispatcher
from service.lifecycle.errors import DeliveryError, DownloadFailed, Expired, GaveUp
from service.lifecycle.job import BATCH, Job, batch_parts, job_from_pending
from service.lifecycle.outcomes import Outcomes
from service.lifecycle.outlet import (
    DeliveryFailed,
    Fetchers,
    FetchFailed,
    Outlet,
    OutletLimits,
    Outlets,
)
from service.lifecycle.requests import clip_request, conversion_request
from service.lifecycle.restart import Restarts

log = logging.getLogger("animebot.lifecycle")

STATUS_KEPT = 10_000  # last queue reports remembered for `position`

T = TypeVar("T")
Reply = ConversionReply | ClipReply


class _PutOff(Exception):
    """A shutdown turned the job away: keep it (durable) for the next start."""


class JobRunner(Restarts):
    def __init__(self, service: ConversionService, dispatcher: Dispatcher | None = None) -> None:
        self.service = service
        self.outlets = Outlets()
        self.fetchers = Fetchers()
        self.dispatcher: Dispatcher = dispatcher or LocalDispatcher(self)
        # Clips and animated GIFs (service/clips.py): quota, cache, fair queue by frames.
        self.clips = ClipService(service)
        self.outcomes = Outcomes(service)
        self._status: dict[str, QueueStatus] = {}
        self._frames: dict[str, tuple[int, int]] = {}  # clips running here: frames done, all
        self._running: dict[asyncio.Task[Any], str] = {}  # task -> its job's platform
        # platform -> how to read a job row an earlier version of its front end stored
        self.upgrades: dict[str, Callable[[Job], Job]] = {}

    # -- the front half -------------------------------------------------------------------------

    def job_key(self, platform: str, native_key: str) -> str:
        """A job's request id from the platform's own key for the request (chat + message,
        interaction id): the same when the platform delivers the request again."""
        return self.service.jobs.key(platform, native_key)

    def is_admin(self, platform: str, user_id: str | int) -> bool:
        """The one admin decision (TELEGRAM_ADMINS / DISCORD_ADMINS): no rate limit or quota
        for their jobs, /stats for them."""
        return self.service.is_admin(platform, user_id)

    async def accept(self, job: Job, *, dispatch: bool = True) -> Job | None:
        """Take the job in: the job as dispatched, or None when it was refused here (one usage
        row, and the person told through the outlet). Raises AlreadyAccepted when the platform
        delivered this request again while its job is pending."""
        outlet = self.outlets.outlet_for(job)
        job = replace(job, admin=self.service.is_admin(job.platform, job.user_id))
        limit = self.upload_limit(job)
        size = job.source.get("size")
        if job.upload is not None:
            size = len(job.upload)
        if isinstance(size, int) and size > limit:
            await self.outcomes.refuse(job, outlet, ImageTooLarge("upload too large", limit=limit))
            return None
        if job.durable:
            if job.upload is not None:  # the row cannot hold the bytes: the shared cache does
                job = await self.stash_upload(job)
            job = await self._store(job)
        if dispatch:
            await self.dispatcher.dispatch(job)
        return job

    async def stash_upload(self, job: Job) -> Job:
        """The job with its upload moved into the shared input cache (source "cached"), for a
        dispatcher that sends it to another process; the bytes never travel in the JSON."""
        if job.upload is None:
            return job
        key = await self.service.keep_upload(job.platform, job.user_id, job.upload)
        source = {"kind": "cached", "input_key": key, "size": len(job.upload)}
        return replace(job, source=source, upload=None)

    async def reject(self, job: Job, error: AnimeBotError) -> None:
        """A request the front end could not even turn into a job (an empty or malformed
        upload): its one usage row, and the reason through the outlet."""
        await self.outcomes.refuse(job, self.outlets.outlet_for(job), error)

    def upload_limit(self, job: Job) -> int:
        """The largest photo (or clip) this job may bring: ours, or the platform's download
        cap."""
        settings = self.service.settings
        limit = settings.limits.clip_max_bytes if job.is_clip else settings.max_upload_bytes
        platform_cap = job.source.get("limit")
        return min(limit, platform_cap) if isinstance(platform_cap, int) else limit

    async def _store(self, job: Job) -> Job:
        stored = await self.service.jobs.accept(
            job.platform,
            job.user_id,
            job.lang,
            key=job.request_id,
            chat_id=job.chat_id,
            source=job.source,
            options=job.options,
            reply=job.outlet,
        )
        return replace(job, durable=stored is not None)

    async def run(self, job: Job) -> None:
        """Accept a job whose requester waits for it (the web page): executed in this very
        task when jobs run in this process, so a request cut short stops its work; else
        dispatched, and the outlet hands the result back."""
        accepted = await self.accept(replace(job, durable=False), dispatch=False)
        if accepted is None:
            return
        if isinstance(self.dispatcher, LocalDispatcher):
            await self.execute(accepted)
        else:
            await self.dispatcher.dispatch(accepted)

    # -- the worker half ------------------------------------------------------------------------

    async def execute(self, job: Job) -> Reply | None:
        """Answer the job: its result, or the reason why not. Never raises except
        cancellation. The reply when one was delivered."""
        task = asyncio.current_task()
        if task is not None:
            self._running[task] = job.platform
        try:
            return await self._answer(job)
        finally:
            if task is not None:
                self._running.pop(task, None)
            self._status.pop(job.request_id, None)
            self._frames.pop(job.request_id, None)

    async def _answer(self, job: Job) -> Reply | None:
        outlet = self.outlets.outlet_for(job)
        answered = finishing = False
        reply: Reply | None = None
        try:
            try:
                reply = await self._execute(job, outlet)
                answered = True
            except _PutOff:
                await self.outcomes.put_off(job, outlet)
                return None
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in an outlet or a fetcher: one row, one message
                log.exception("job %s failed", job.request_id)
                await self.outcomes.internal(job, outlet)
                answered = True
            finishing = True
            await to_the_end(self.outcomes.finish(job, outlet))
        except asyncio.CancelledError:  # past the grace period: the process is going down
            if finishing:  # finished all the same (to_the_end)
                raise
            if answered:  # the person has the answer: done, not to be run again
                await to_the_end(self.outcomes.finish(job, outlet))
            else:
                await self.outcomes.put_off(job, outlet)
            raise
        return reply

    async def _execute(self, job: Job, outlet: Outlet) -> Reply | None:
        if self.service.closing:  # before spending a download on it
            if job.durable:
                await self.outcomes.record(job, "refused", ShuttingDown.code)
                raise _PutOff
            await self.outcomes.refuse(job, outlet, ShuttingDown("shutting down", RESTART_RETRY_S))
            return None
        if job.source_kind == BATCH:
            await self._execute_batch(job, outlet)
            return None
        fetching = asyncio.ensure_future(self._fetch(job))  # while the outlet gets ready
        try:
            try:
                await outlet.begin(job)
            except BaseException:
                fetching.cancel()
                await asyncio.wait({fetching})
                if not fetching.cancelled():
                    fetching.exception()  # retrieved: the outlet's failure is the one told
                raise
            image = await fetching
        except DeliveryFailed as exc:  # the chat refuses the bot: nothing more to do
            log.info("job %s: %s", job.request_id, exc.kind)
            await self.outcomes.record(job, "error", exc.kind)
            return None
        except AnimeBotError as exc:
            await self.outcomes.refuse(job, outlet, exc)
            return None
        if job.is_clip and not await self._still(job, image):
            return await self._execute_clip(job, outlet, image)
        request = conversion_request(
            job, image, outlet.limits, lambda status: self._progress(job, outlet, status)
        )
        reply = await self._converted(job, outlet, self.service.convert(request))
        if reply is None or not await self._delivered(job, outlet, outlet.deliver(job, reply)):
            return None
        return reply

    async def _execute_clip(self, job: Job, outlet: Outlet, data: bytes | None) -> Reply | None:
        """Every frame through the clip service (its own usage row, quota by frames x pixels,
        a fair-queue turn per chunk), the progress to the outlet, the clip to `deliver_clip`."""
        if data is None:  # a clip's bytes are never kept in the input cache
            log.warning("job %s: a clip job without its bytes", job.request_id)
            await self.outcomes.refuse(job, outlet, DownloadFailed("download_failed"))
            return None

        async def on_frames(done: int, total: int) -> None:
            if len(self._frames) < STATUS_KEPT:
                self._frames[job.request_id] = (done, total)
            await outlet.frames(job, done, total)

        stickers = self.clips.makes_stickers
        request = clip_request(job, data, outlet.limits, on_frames, makes_stickers=stickers)
        del data  # the request holds the bytes; the clip service lets them go when done
        reply = await self._converted(job, outlet, self.clips.convert(request))
        if reply is None or not await self._delivered(job, outlet, outlet.deliver_clip(job, reply)):
            return None
        return reply

    async def _still(self, job: Job, image: bytes | None) -> bool:
        """A clip job that may be one picture (a GIF) and is: converted as a photo."""
        if image is None or not job.option("still_as_photo"):
            return False
        return not await asyncio.to_thread(looks_like_clip, image)

    async def _converted(self, job: Job, outlet: Outlet, work: Awaitable[T]) -> T | None:
        """The service's result, or None when the person was told why not (the service
        recorded it); a durable job turned away by a shutdown is put off."""
        try:
            return await work
        except ShuttingDown:  # turned away while waiting in the queue (recorded)
            if job.durable:
                raise _PutOff from None
            await self.outcomes.tell(job, outlet, ShuttingDown("shutting down", RESTART_RETRY_S))
            return None
        except AnimeBotError as exc:  # recorded by the service
            log.info("job %s: %s", job.request_id, exc.code)
            await self.outcomes.tell(job, outlet, exc)
            return None

    async def _delivered(self, job: Job, outlet: Outlet, delivery: Awaitable[None]) -> bool:
        """Whether the result reached the person; if not, the usage row says why (never a
        second row) and the person is told when they can still be."""
        try:
            await delivery
        except DeliveryFailed as exc:
            log.info("job %s: not delivered (%s)", job.request_id, exc.kind)
            await self.service.update_outcome(job.platform, job.request_id, "error", exc.kind)
            if exc.kind not in {"delivery_blocked", "delivery_forbidden"}:
                await self.outcomes.tell(job, outlet, DeliveryError(exc.kind, job.request_id))
            return False
        return True

    async def _execute_batch(self, job: Job, outlet: Outlet) -> None:
        """Several photos answered together (Discord's Anime-fy): each a request of its own,
        with its own usage row, converted side by side; the outlet posts what came out, and
        why the rest did not, in one answer (`deliver_batch`)."""
        deliver_batch = getattr(outlet, "deliver_batch", None)
        if deliver_batch is None:
            raise TypeError(f"the {job.outlet_kind!r} outlet cannot answer several photos")
        parts = batch_parts(job)
        try:
            await outlet.begin(job)
        except DeliveryFailed as exc:
            for part in parts:
                await self.outcomes.record(part, "error", exc.kind)
            return
        results = await asyncio.gather(
            *(
                self.convert(part, outlet.limits, lambda s: self._progress(job, outlet, s))
                for part in parts
            ),
            return_exceptions=True,
        )
        if any(isinstance(r, ShuttingDown) for r in results):  # all of it after the restart
            if job.durable:
                raise _PutOff
            await self.outcomes.tell(job, outlet, ShuttingDown("shutting down", RESTART_RETRY_S))
            return
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, AnimeBotError):
                raise result  # a bug: answered with a reference by `execute`
        answered = [
            (part, r)
            for part, r in zip(parts, results, strict=True)
            if isinstance(r, ConversionReply | AnimeBotError)
        ]
        for request_id, kind in await deliver_batch(job, answered):
            await self.service.update_outcome(job.platform, request_id, "error", kind)

    async def convert(
        self,
        job: Job,
        limits: OutletLimits,
        on_progress: ProgressCallback | None = None,
    ) -> ConversionReply:
        """The worker half without the delivery (each photo of a batch job): the same checks,
        fetch and conversion as `execute`, and the same one usage row: a refusal or failure is
        recorded, then raised (AnimeBotError). Tracked like any job, so a drain waits for it."""
        task = asyncio.current_task()
        owned = task is not None and task not in self._running
        if owned and task is not None:
            self._running[task] = job.platform
        try:
            return await self._convert_only(job, limits, on_progress)
        finally:
            if owned and task is not None:
                self._running.pop(task, None)

    async def _convert_only(
        self, job: Job, limits: OutletLimits, on_progress: ProgressCallback | None
    ) -> ConversionReply:
        job = replace(job, admin=self.is_admin(job.platform, job.user_id))
        try:
            if self.service.closing:  # before spending a download on it
                raise ShuttingDown("shutting down", RESTART_RETRY_S)
            limit = self.upload_limit(job)
            size = job.source.get("size")
            if isinstance(size, int) and size > limit:
                raise ImageTooLarge("upload too large", limit=limit)
            image = await self._fetch(job)
        except AnimeBotError as exc:
            status = "refused" if isinstance(exc, ShuttingDown) else "error"
            await self.outcomes.record(job, status, exc.code)
            raise
        request = conversion_request(job, image, limits, on_progress)
        return await self.service.convert(request)  # records its own row

    async def refuse(self, job: Job, error: AnimeBotError) -> None:
        """A request a front end turned away itself, answering it at once (a Discord attachment
        too large to take, a command while stopping): its one usage row."""
        status = "refused" if isinstance(error, Refusal) else "error"
        await self.outcomes.record(job, status, error.code)

    async def _fetch(self, job: Job) -> bytes | None:
        if job.source_kind == "cached":
            return None  # the service reads the cached upload itself
        if job.upload is not None:
            return job.upload
        try:
            data = await self.fetchers.fetch(job)
        except FetchFailed as exc:
            log.warning("job %s: download failed (%s)", job.request_id, exc)
            raise DownloadFailed(exc.kind) from exc
        limit = self.upload_limit(job)
        if len(data) > limit:
            raise ImageTooLarge("download larger than announced", limit=limit)
        return data

    async def _progress(self, job: Job, outlet: Outlet, status: QueueStatus) -> None:
        if len(self._status) < STATUS_KEPT:
            self._status[job.request_id] = status
        await outlet.notify(job, status)

    def last_status(self, request_id: str) -> QueueStatus | None:
        return self._status.get(request_id)

    def last_frames(self, request_id: str) -> tuple[int, int] | None:
        """A clip's progress, when it runs in this process."""
        return self._frames.get(request_id)

    async def frames(self, request_id: str) -> tuple[int, int] | None:
        """A clip's progress (frames done, frames in all), wherever its job runs."""
        return await self.dispatcher.frames(request_id)

    # -- shutdown -------------------------------------------------------------------------------

    async def drain(self, timeout_s: float | None = None) -> bool:
        """Refuse new work and let what is in flight (jobs and conversions) finish within the
        grace period; then turn away what still waits in the queue (durable jobs are put off
        for the restart) and give the rest AFTER_GRACE_S to answer. True when all finished."""
        service = self.service
        service.begin_shutdown(timeout_s)
        pending = self.pending_tasks() | service.pending_tasks()
        if pending:
            _, pending = await asyncio.wait(pending, timeout=service.grace_left())
        service.end_grace()
        if pending:
            log.info("shutdown: %d job(s) still in flight after the grace", len(pending))
            _, pending = await asyncio.wait(pending, timeout=service.final_left())
        return not pending

    @property
    def inflight(self) -> int:
        return len(self.pending_tasks())

    def track(self, task: asyncio.Task[Any], platform: str) -> None:
        """Count a task that will execute a job (a drain waits for it from now on)."""
        self._running[task] = platform
        task.add_done_callback(lambda done: self._running.pop(done, None))

    def pending_tasks(self, platform: str | None = None) -> set[asyncio.Task[Any]]:
        """Jobs being executed in this process (of one platform, or all)."""
        return {t for t, p in self._running.items() if not t.done() and platform in (None, p)}


__all__ = [
    "AlreadyAccepted",
    "DeliveryError",
    "DownloadFailed",
    "Expired",
    "GaveUp",
    "JobRunner",
    "job_from_pending",
]
