"""The one job lifecycle: every front end's request goes through `JobRunner`.

Front half, `accept(job)`, where the update arrived: the admin decision, the size check
(before anything is downloaded), the durable row, then `dispatcher.dispatch(job)`.
Worker half, `execute(job)`, wherever a worker runs: fetch the photo, convert it (the
service: decode once, cache, quota, fair queue, engine, encoded once to the outlet's limits;
a clip through the clip service, its progress in frames to the outlet), deliver, and the
bookkeeping: exactly one usage row per request (a failed delivery updates
it), the durable row finished once the person has an answer, or kept when a shutdown puts the
job off. In-flight work is tracked here, so a drain waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from core.errors import AnimeBotError, ImageTooLarge
from core.video import looks_like_clip
from service.clips import ClipReply, ClipRequest, ClipService, FramesCallback
from service.convert import ConversionReply, ConversionRequest, ConversionService
from service.errors import InternalError, Refusal, ShuttingDown
from service.fairqueue import RESTART_RETRY_S, ProgressCallback, QueueStatus
from service.jobs import MAX_AGE_S, MAX_ATTEMPTS, AlreadyAccepted, to_the_end
from service.lifecycle.dispatch import Dispatcher, LocalDispatcher
from service.lifecycle.job import Job
from service.lifecycle.outlet import (
    DeliveryFailed,
    Fetchers,
    FetchFailed,
    Outlet,
    OutletLimits,
    Outlets,
)
from storage import PendingJob
from storage.clock import now_ms

log = logging.getLogger("animebot.lifecycle")

NOTICE_S = 3.0  # cut short by a shutdown: at most this long to tell the person
STATUS_KEPT = 10_000  # last queue reports remembered for `position`

T = TypeVar("T")
Reply = ConversionReply | ClipReply


class _PutOff(Exception):
    """A shutdown turned the job away: keep it (durable) for the next start."""


class JobRunner:
    def __init__(self, service: ConversionService, dispatcher: Dispatcher | None = None) -> None:
        self.service = service
        self.outlets = Outlets()
        self.fetchers = Fetchers()
        self.dispatcher: Dispatcher = dispatcher or LocalDispatcher(self)
        # Clips and animated GIFs (service/clips.py): quota, cache, fair queue by frames.
        self.clips = ClipService(service)
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
            await self._refuse(job, outlet, ImageTooLarge("upload too large", limit=limit))
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
        await self._refuse(job, self.outlets.outlet_for(job), error)

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
                await self._put_off(job, outlet)
                return None
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in an outlet or a fetcher: one row, one message
                log.exception("job %s failed", job.request_id)
                await self._internal(job, outlet)
                answered = True
            finishing = True
            await to_the_end(self._finish(job, outlet))
        except asyncio.CancelledError:  # past the grace period: the process is going down
            if finishing:  # finished all the same (to_the_end)
                raise
            if answered:  # the person has the answer: done, not to be run again
                await to_the_end(self._finish(job, outlet))
            else:
                await self._put_off(job, outlet)
            raise
        return reply

    async def _execute(self, job: Job, outlet: Outlet) -> Reply | None:
        if self.service.closing:  # before spending a download on it
            if job.durable:
                await self._record(job, "refused", ShuttingDown.code)
                raise _PutOff
            await self._refuse(job, outlet, ShuttingDown("shutting down", RESTART_RETRY_S))
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
            await self._record(job, "error", exc.kind)
            return None
        except AnimeBotError as exc:
            await self._refuse(job, outlet, exc)
            return None
        if job.is_clip and not await self._still(job, image):
            return await self._execute_clip(job, outlet, image)
        request = self.request(
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
            await self._refuse(job, outlet, DownloadFailed("download_failed"))
            return None

        async def on_frames(done: int, total: int) -> None:
            if len(self._frames) < STATUS_KEPT:
                self._frames[job.request_id] = (done, total)
            await outlet.frames(job, done, total)

        request = self.clip_request(job, data, outlet.limits, on_frames)
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
            await self._tell(job, outlet, ShuttingDown("shutting down", RESTART_RETRY_S))
            return None
        except AnimeBotError as exc:  # recorded by the service
            log.info("job %s: %s", job.request_id, exc.code)
            await self._tell(job, outlet, exc)
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
                await self._tell(job, outlet, DeliveryError(exc.kind, job.request_id))
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
                await self._record(part, "error", exc.kind)
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
            await self._tell(job, outlet, ShuttingDown("shutting down", RESTART_RETRY_S))
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
            await self._record(job, status, exc.code)
            raise
        request = self.request(job, image, limits, on_progress)
        return await self.service.convert(request)  # records its own row

    async def refuse(self, job: Job, error: AnimeBotError) -> None:
        """A request a front end turned away itself, answering it at once (a Discord attachment
        too large to take, a command while stopping): its one usage row."""
        status = "refused" if isinstance(error, Refusal) else "error"
        await self._record(job, status, error.code)

    def request(
        self,
        job: Job,
        image: bytes | None,
        limits: OutletLimits,
        on_progress: ProgressCallback | None = None,
    ) -> ConversionRequest:
        """The service's request for this job, encoded for the outlet's limits."""
        fmt = str(job.option("fmt") or "jpeg")
        if fmt not in limits.formats:
            fmt = limits.formats[0]
        return ConversionRequest(
            platform=job.platform,
            user_id=job.user_id,
            chat_id=job.chat_id,
            image=image,
            input_key=None if image is not None else job.source.get("input_key"),
            style=job.option("style"),
            faces=job.option("faces"),
            side_by_side=bool(job.option("side_by_side")),
            fmt=fmt,
            max_side=limits.max_side,
            max_bytes=limits.max_bytes,
            is_admin=job.admin,
            keep_input=bool(job.option("keep_input", True)),
            on_progress=on_progress,
            request_id=job.request_id,
        )

    def clip_request(
        self,
        job: Job,
        data: bytes,
        limits: OutletLimits,
        on_frames: FramesCallback | None = None,
    ) -> ClipRequest:
        """The clip service's request for this job, its bit rate fitted to the outlet."""
        return ClipRequest(
            job.platform,
            job.user_id,
            data,
            chat_id=job.chat_id,
            style=job.option("style"),
            faces=job.option("faces"),
            max_output_bytes=limits.clip_max_bytes,
            is_admin=job.admin,
            sticker=bool(job.option("sticker")) and self.clips.makes_stickers,
            on_frames=on_frames,
            request_id=job.request_id,
        )

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

    # -- answers and bookkeeping ----------------------------------------------------------------

    async def _refuse(self, job: Job, outlet: Outlet, exc: AnimeBotError) -> None:
        """Turned away outside the service: the request's one usage row, then the reason."""
        status = "refused" if isinstance(exc, ShuttingDown) else "error"
        await self._record(job, status, exc.code)
        await self._tell(job, outlet, exc)

    async def _internal(self, job: Job, outlet: Outlet) -> None:
        await self.service.update_outcome(job.platform, job.request_id, "error", "internal")
        await self._tell(job, outlet, InternalError(job.request_id))

    async def _tell(self, job: Job, outlet: Outlet, exc: AnimeBotError) -> None:
        try:
            await outlet.fail(job, exc)
        except DeliveryFailed as failed:
            log.info("job %s: the reason could not be sent (%s)", job.request_id, failed.kind)
        except Exception:
            log.exception("job %s: the reason could not be sent", job.request_id)

    async def _record(self, job: Job, status: str, kind: str) -> None:
        await self.service.record_outcome(
            job.platform, job.user_id, status, kind, chat_id=job.chat_id, request_id=job.request_id
        )

    async def _finish(self, job: Job, outlet: Outlet) -> None:
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

    async def _put_off(self, job: Job, outlet: Outlet) -> None:
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

    async def remember(self, job: Job, **changes: Any) -> bool:
        """Keep more about where the answer goes in the durable row (a status message).
        False when the job was answered meanwhile (its row is gone, so whoever answered it
        will not tidy this up: the caller must); True otherwise, storage trouble included."""
        if not job.durable:
            return True
        return await self.service.jobs.update_reply(job.request_id, **changes) is not False

    # -- after a restart -------------------------------------------------------------------------

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
        return replace(job, attempts=attempts, admin=self.is_admin(job.platform, job.user_id))

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
        log.warning("job %s: %s after %d attempt(s)", job.request_id, end.code, job.attempts)
        await self._record(job, "error", end.code)
        try:
            if job.outlet_kind in self.outlets.kinds():
                await self._tell(job, self.outlets.outlet_for(job), end)
        finally:
            await self.service.jobs.finish(job.request_id)

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


class DownloadFailed(AnimeBotError):
    """The platform would not give us the photo (after retries)."""

    code = "download_failed"


class DeliveryError(AnimeBotError):
    """The result could not be handed over (after retries); `request_id` is the reference."""

    code = "delivery_failed"

    def __init__(self, kind: str, request_id: str) -> None:
        super().__init__(kind)
        self.kind = kind
        self.request_id = request_id


class GaveUp(AnimeBotError):
    """Tried MAX_ATTEMPTS times (each start crashed on it): given up."""

    code = "gave_up"


class Expired(AnimeBotError):
    """Too old to answer (a platform token expired)."""

    code = "expired"


BATCH = "batch"  # a job's source kind: `items`, several sources answered together


def batch_parts(job: Job) -> list[Job]:
    """The photos of a batch job, each a request of its own (`<request id>-<n>`)."""
    return [
        replace(
            job,
            request_id=f"{job.request_id[:16]}-{n}",
            source=dict(item),
            durable=False,
            upload=None,
        )
        for n, item in enumerate(job.source.get("items", ()), 1)
    ]


def job_from_pending(pending: PendingJob) -> Job:
    """The durable row carries the job: its id is the request id."""
    return Job(
        platform=pending.platform,
        user_id=pending.user_id,
        lang=pending.lang,
        source=dict(pending.source),
        outlet={"kind": pending.platform, **pending.reply},
        options=dict(pending.options),
        chat_id=pending.chat_id,
        request_id=pending.id,
        created_at=pending.created_at,
        attempts=pending.attempts,
        durable=True,
    )


__all__ = [
    "AlreadyAccepted",
    "DeliveryError",
    "DownloadFailed",
    "Expired",
    "GaveUp",
    "JobRunner",
    "job_from_pending",
]
