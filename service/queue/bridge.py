"""The job lifecycle (service/lifecycle/) on the shared queue: the front end's half and the
worker's half.

Front end (`QueueFront`): the runner's dispatcher becomes a `RedisDispatcher`; an upload's
bytes go to the shared blob store first (a job on the queue carries only JSON), a web job
names the front end whose HTTP request waits, and the results coming back through Redis
resolve that request. Durable rows left unanswered are put on the queue again whenever Redis
lost them.

Worker (`QueueBackEnd`): pulls jobs and runs `runner.execute(job)`; every outlet delivers (or
says why not) at most once per request id through the `DeliveryLedger`; web results go back
through Redis (a web clip's progress too, as a small key the front end reads); shared uploads
are fetched from the blob store.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from core.errors import AnimeBotError
from service.clips import ClipReply
from service.convert import ConversionReply
from service.errors import Busy
from service.fairqueue import QueueStatus
from service.lifecycle import GaveUp, JobRunner, job_from_pending
from service.lifecycle.job import Job
from service.lifecycle.outlet import FetchFailed, Outlet, OutletFactory, OutletLimits, Outlets
from service.queue.blobs import RedisBlobs
from service.queue.config import QueueConfig
from service.queue.delivery import DeliveryLedger
from service.queue.dispatcher import QueuedJob, RedisDispatcher
from service.queue.results import WebResult, WebResults
from service.queue.wire import error_to_wire, from_wire, reply_to_wire
from service.queue.worker import QueueWorker, Run

if TYPE_CHECKING:
    from service.settings import Settings

log = logging.getLogger("animebot.queue")

SHARED_UPLOAD = "shared_upload"  # a job source: the upload's bytes in the blob store
WEB = "web"
DURABLE_PLATFORMS = ("telegram", "discord")
UNAVAILABLE_RETRY_S = 10.0
SWEEP_EVERY_S = 1.0
POSITION_EVERY_S = 2.0
MAX_WATCHED = 1000  # jobs whose position a front end keeps showing

WebDelivery = Callable[[str, ConversionReply | ClipReply | AnimeBotError], None]
BatchDelivery = Callable[
    [Job, Sequence[tuple[Job, ConversionReply | AnimeBotError]]], Awaitable[list[tuple[str, str]]]
]

_current_run: contextvars.ContextVar[Run | None] = contextvars.ContextVar("run", default=None)


def queue_config(settings: Settings) -> QueueConfig:
    return QueueConfig(
        settings.queue_url,
        job_timeout_s=settings.queue_job_timeout_s,
        clip_timeout_s=settings.queue_clip_timeout_s,
        blob_budget_bytes=settings.db.cache_budget_bytes,
        blob_ttl_s=settings.db.input_ttl_s,
    )


class FrontDispatcher(RedisDispatcher):
    """`RedisDispatcher` for `Job`s: moves uploads to the blob store, names this front end
    on web jobs. A web job (its requester waits) is refused as Busy when Redis is down; a
    durable one is kept (its row) and queued when Redis is back."""

    front_id: str = ""
    blobs: RedisBlobs
    web_waiting: dict[str, float]  # web jobs of this front end not answered yet: since when
    positions: PositionNotices
    results: WebResults

    async def frames(self, request_id: str) -> tuple[int, int] | None:
        """A web clip's progress, as the worker converting it wrote it to Redis."""
        return await self.results.frames(request_id)

    async def dispatch(self, job: QueuedJob) -> None:
        assert isinstance(job, Job)
        try:
            job = await self._shareable(job)
        except (RedisError, OSError):
            if not job.durable:
                raise Busy("the queue is unreachable", UNAVAILABLE_RETRY_S) from None
            log.warning("request %s: Redis unreachable; queued when it is back", job.request_id)
            return
        if job.durable:
            await super().dispatch(job)
            await self.positions.watch(job)
            return
        try:
            await self.dispatch_payload(job.request_id, job.to_dict())
        except (RedisError, OSError):
            raise Busy("the queue is unreachable", UNAVAILABLE_RETRY_S) from None

    async def _shareable(self, job: Job) -> Job:
        if job.upload is not None:
            name = f"upload:{job.request_id}"
            await self.blobs.put(name, job.upload, self.config.result_ttl_s)
            source = {**job.source, "kind": SHARED_UPLOAD, "blob": name, "size": len(job.upload)}
            job = replace(job, source=source, upload=None)
        if job.outlet_kind == WEB:
            job = job.with_outlet(front=self.front_id)
            self.web_waiting[job.request_id] = time.monotonic()
        return job


class QueueFront:
    """The front end's side; `start` swaps the runner's dispatcher."""

    def __init__(self, runner: JobRunner, config: QueueConfig) -> None:
        self.runner, self.config = runner, config
        self.front_id = uuid.uuid4().hex[:12]
        self.dispatcher: FrontDispatcher | None = None
        self.results: WebResults | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._deliver_web: WebDelivery | None = None

    async def start(self) -> None:
        dispatcher = FrontDispatcher(*await _connected(self.config))
        dispatcher.front_id = self.front_id
        dispatcher.blobs = RedisBlobs(dispatcher.redis, self.config)
        dispatcher.web_waiting = {}
        dispatcher.positions = PositionNotices(dispatcher, self.runner)
        self.dispatcher = dispatcher
        self.results = WebResults(dispatcher.redis, self.config, self.front_id)
        self.results.on_result = self._on_web_result
        dispatcher.results = self.results
        await self.results.start()
        self.runner.dispatcher = dispatcher
        dispatcher.watch(self._pending)
        self._sweeper = asyncio.create_task(self._sweep(), name="animebot-web-sweep")

    def deliver_web_to(self, deliver: WebDelivery) -> None:
        """Where web results coming back through Redis go (the waiting HTTP requests)."""
        self._deliver_web = deliver

    def _on_web_result(self, request_id: str, result: WebResult) -> None:
        if self.dispatcher is not None:
            self.dispatcher.web_waiting.pop(request_id, None)
        if self._deliver_web is not None:
            self._deliver_web(request_id, from_wire(result))

    async def ping(self) -> bool:
        return self.dispatcher is not None and await self.dispatcher.ping()

    def forget_web(self, request_id: str) -> None:
        """The HTTP request went away: stop looking for its result."""
        if self.dispatcher is not None:
            self.dispatcher.web_waiting.pop(request_id, None)

    async def _sweep(self) -> None:
        """A result announced while the subscription was down (a Redis restart) is still in
        its key: look for each one still awaited, every second."""
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            if self.dispatcher is None or self.results is None:
                continue
            too_old = time.monotonic() - self.config.result_ttl_s
            for request_id, since in list(self.dispatcher.web_waiting.items()):
                if since < too_old:  # its HTTP request gave up long ago
                    self.dispatcher.web_waiting.pop(request_id, None)
                else:
                    await self.results.hand_on(request_id)

    async def _pending(self) -> Iterable[QueuedJob]:
        jobs: list[QueuedJob] = []
        for platform in DURABLE_PLATFORMS:
            jobs.extend(
                job_from_pending(p) for p in await self.runner.service.jobs.pending(platform)
            )
        return jobs

    async def stop(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.positions.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self.results is not None:
            await self.results.stop()
        if self.dispatcher is not None:
            await self.dispatcher.close()


class PositionNotices:
    """Queue position and ETA from the shared queue, shown by the front end that accepted the
    job until a worker starts it (the worker's outlet then takes over the status message,
    whose id the outlet keeps in the durable row)."""

    def __init__(self, dispatcher: RedisDispatcher, runner: JobRunner) -> None:
        self.dispatcher, self.runner = dispatcher, runner
        self._waiting: dict[str, tuple[Job, Outlet, int]] = {}
        self._task: asyncio.Task[None] | None = None

    async def watch(self, job: Job) -> None:
        try:
            ahead, eta = await self.dispatcher.position(job)
            if ahead <= 0 or len(self._waiting) >= MAX_WATCHED:
                return
            outlet = self.runner.outlets.outlet_for(job)
            await outlet.notify(job, QueueStatus(ahead, eta or 0.0))
        except Exception:  # a position message is worth no failure
            log.warning("job %s: no queue position message", job.request_id, exc_info=True)
            return
        self._waiting[job.request_id] = (job, outlet, ahead)
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="animebot-queue-positions")

    async def _loop(self) -> None:
        while self._waiting:
            await asyncio.sleep(POSITION_EVERY_S)
            for request_id, (job, outlet, shown) in list(self._waiting.items()):
                try:
                    ahead, eta = await self.dispatcher.position(job)
                    if ahead <= 0:  # started (or about to): the worker's outlet goes on
                        del self._waiting[request_id]
                    elif ahead != shown:
                        await outlet.notify(job, QueueStatus(ahead, eta or 0.0))
                        self._waiting[request_id] = (job, outlet, ahead)
                except Exception:
                    log.warning("job %s: position update failed", request_id, exc_info=True)
                    self._waiting.pop(request_id, None)
        self._task = None

    async def stop(self) -> None:
        self._waiting.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class OnceOutlet:
    """An outlet whose answer (result or reason) goes out at most once per request id, even
    when the job runs twice (see DeliveryLedger)."""

    def __init__(self, inner: Outlet, ledger: DeliveryLedger) -> None:
        self.inner, self.ledger = inner, ledger
        # Several photos answered in one message (Discord's Anime-fy), when the inner has it:
        # the runner looks the method up and refuses batches for an outlet without it.
        self.deliver_batch: BatchDelivery | None = (
            self._deliver_batch if hasattr(inner, "deliver_batch") else None
        )

    @property
    def limits(self) -> OutletLimits:
        return self.inner.limits

    async def begin(self, job: Job) -> None:
        await self.inner.begin(job)

    async def notify(self, job: Job, status: QueueStatus) -> None:
        await self.inner.notify(job, status)

    async def deliver(self, job: Job, reply: ConversionReply) -> None:
        async with self.ledger.once(job.request_id, _owner(job)) as first:
            if first:
                await self.inner.deliver(job, reply)
            else:
                log.info("job %s: answered by an earlier run; not again", job.request_id)

    async def frames(self, job: Job, done: int, total: int) -> None:
        await self.inner.frames(job, done, total)

    async def deliver_clip(self, job: Job, reply: ClipReply) -> None:
        async with self.ledger.once(job.request_id, _owner(job)) as first:
            if first:
                await self.inner.deliver_clip(job, reply)
            else:
                log.info("job %s: answered by an earlier run; not again", job.request_id)

    async def fail(self, job: Job, error: AnimeBotError) -> None:
        async with self.ledger.once(job.request_id, _owner(job)) as first:
            if first:
                await self.inner.fail(job, error)

    async def _deliver_batch(
        self, job: Job, items: Sequence[tuple[Job, ConversionReply | AnimeBotError]]
    ) -> list[tuple[str, str]]:
        async with self.ledger.once(job.request_id, _owner(job)) as first:
            if first:
                undelivered: list[tuple[str, str]] = await self.inner.deliver_batch(  # type: ignore[attr-defined]
                    job, items
                )
                return undelivered
        return []

    async def defer(self, job: Job) -> dict[str, Any]:
        return await self.inner.defer(job)

    async def end(self, job: Job) -> None:
        await self.inner.end(job)


def _owner(job: Job) -> str:
    run = _current_run.get()
    return f"{run.worker_id}/{run.attempt}" if run else uuid.uuid4().hex


class OnceOutlets(Outlets):
    """The runner's outlets, each wrapped in `OnceOutlet`; registrations go to the inner
    registry, so bots registering later are wrapped too."""

    def __init__(self, inner: Outlets, ledger: DeliveryLedger) -> None:
        super().__init__()
        self.inner, self.ledger = inner, ledger

    def register(self, kind: str, factory: OutletFactory) -> None:
        self.inner.register(kind, factory)

    def kinds(self) -> list[str]:
        return self.inner.kinds()

    def outlet_for(self, job: Job) -> Outlet:
        return OnceOutlet(self.inner.outlet_for(job), self.ledger)


class RemoteWebOutlet:
    """The web outlet of a worker: the result goes back through Redis to the front end that
    holds the HTTP request."""

    def __init__(self, results: WebResults, job: Job) -> None:
        self.results = results
        side = job.outlet.get("max_side")
        self.limits = OutletLimits(max_side=int(side) if side else None)

    async def begin(self, job: Job) -> None:
        return None

    async def notify(self, job: Job, status: QueueStatus) -> None:
        return None

    async def deliver(self, job: Job, reply: ConversionReply) -> None:
        await self.results.publish(str(job.outlet["front"]), job.request_id, reply_to_wire(reply))

    async def frames(self, job: Job, done: int, total: int) -> None:
        await self.results.set_frames(job.request_id, done, total)

    async def deliver_clip(self, job: Job, reply: ClipReply) -> None:
        await self.results.publish(str(job.outlet["front"]), job.request_id, reply_to_wire(reply))

    async def fail(self, job: Job, error: AnimeBotError) -> None:
        await self.results.publish(str(job.outlet["front"]), job.request_id, error_to_wire(error))

    async def defer(self, job: Job) -> dict[str, Any]:
        return {}

    async def end(self, job: Job) -> None:
        return None


class RunnerExecutor:
    """What a worker runs for each job: the runner's worker half."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    async def execute(self, payload: dict[str, Any], run: Run) -> None:
        job = await self._latest(replace(Job.from_dict(payload), attempts=run.attempt))
        if job is None:
            return
        token = _current_run.set(run)
        try:
            await self.runner.execute(job)
        finally:
            _current_run.reset(token)

    async def _latest(self, job: Job) -> Job | None:
        """The job with what its durable row learnt since it was queued (the front end's
        queue-position message); None when an earlier run answered it already."""
        if not job.durable:
            return job
        try:
            row = await self.runner.service.jobs.get(job.request_id)
        except Exception:  # storage away: run it as queued (the ledger still guards)
            log.warning("job %s: durable row unreadable; running as queued", job.request_id)
            return job
        if row is None:  # finished by an earlier run (answered): nothing to do
            log.info("job %s: already answered", job.request_id)
            return None
        return job.with_outlet(**row.reply)

    async def give_up(self, payload: dict[str, Any], run: Run) -> None:
        job = await self._latest(Job.from_dict(payload))
        if job is None:
            return
        token = _current_run.set(run)
        try:
            await self.runner.reject(job, GaveUp())
            if job.durable:
                await self.runner.service.jobs.finish(job.request_id)
        finally:
            _current_run.reset(token)


class QueueBackEnd:
    """The worker's side: `animebot worker` or `serve --role worker|all`."""

    def __init__(self, runner: JobRunner, config: QueueConfig, *, concurrency: int) -> None:
        self.runner, self.config, self.concurrency = runner, config, concurrency
        self.worker = QueueWorker(config, RunnerExecutor(runner), concurrency=concurrency)
        self._previous: Outlets | None = None

    async def start(self) -> None:
        await self.worker.start()
        redis = self.worker.redis
        ledger = DeliveryLedger(redis, self.config)
        results = WebResults(redis, self.config, f"worker-{self.worker.worker_id}")
        blobs = RedisBlobs(redis, self.config)
        self._previous = self.runner.outlets
        self._previous.register(WEB, lambda job: RemoteWebOutlet(results, job))
        self.runner.outlets = OnceOutlets(self._previous, ledger)

        async def shared_upload(job: Job) -> bytes:
            data = await blobs.get(str(job.source.get("blob", "")))
            if data is None:
                raise FetchFailed("download_failed", "the shared upload expired")
            return data

        self.runner.fetchers.register(SHARED_UPLOAD, shared_upload)

    async def stop(self, grace_s: float) -> None:
        await self.worker.stop(grace_s)
        if self._previous is not None:
            self.runner.outlets = self._previous


async def _connected(config: QueueConfig) -> tuple[Any, QueueConfig]:
    dispatcher = await RedisDispatcher.connect(config)
    return dispatcher.redis, config
