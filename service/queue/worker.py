"""`QueueWorker`: pulls jobs from the shared queue (arq) and runs them on this machine.

arq keeps a job in the queue until it finished and marks it taken with an in-progress key that
expires `job_timeout_s + 10` s after the start: a worker killed with SIGKILL (or a machine that
vanished) leaves the key to expire, and another worker takes the job then (at least once). The
`DeliveryLedger` makes the second run skip a reply already delivered (exactly one reply).
After each job the person's next held job (service.queue.fairness) is put on the queue. arq's
loop runs as `Puller` (service.queue.puller): woken when a job is queued instead of polling
often, and never losing a job slot to a Redis drop.

A clip's job (`CLIP_FUNCTION`) may run up to `clip_timeout_s`; arq would then keep every job's
in-progress key for that long + 10 s, and a killed worker's photos would wait as long. So the
key keeps the photos' `job_timeout_s + 10` s, and this worker refreshes it every
`job_timeout_s / 2` s for each job it runs (`_keep_marked`): taken over as soon as a photo's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from arq.worker import func
from redis.exceptions import RedisError

from service.queue.config import CLIP_FUNCTION, QUEUE_FUNCTION, QueueConfig
from service.queue.connection import dumps, loads
from service.queue.delivery import DeliveryLedger
from service.queue.dispatcher import RedisDispatcher, fair_key
from service.queue.puller import Puller, relay_wake_ups
from service.queue.registry import WorkerInfo

log = logging.getLogger("animebot.worker")

RECONNECT_S = 1.0


@dataclass(frozen=True)
class Run:
    """One run of a job on this worker."""

    job_id: str
    attempt: int  # 1 for the first run; more after a worker died or a retry
    worker_id: str
    ledger: DeliveryLedger


class JobExecutor(Protocol):
    async def execute(self, payload: dict[str, Any], run: Run) -> None:
        """Run the job to its end (delivered, or the person told why not); never raises."""

    async def give_up(self, payload: dict[str, Any], run: Run) -> None:
        """The job used up its runs (it kept killing workers): tell the person, record it."""


class QueueWorker:
    def __init__(
        self,
        config: QueueConfig,
        executor: JobExecutor,
        *,
        concurrency: int = 1,
        worker_id: str | None = None,
    ) -> None:
        self.config, self.executor, self.concurrency = config, executor, max(1, concurrency)
        self.worker_id = worker_id or uuid.uuid4().hex[:12]
        self.running = 0
        self.completed = 0
        self._dispatcher: RedisDispatcher | None = None
        self._worker: Puller | None = None
        self._main: asyncio.Task[None] | None = None
        self._beats: asyncio.Task[None] | None = None
        self._wake_ups: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def redis(self) -> ArqRedis:
        assert self._dispatcher is not None, "start() first"
        return self._dispatcher.redis

    async def start(self) -> None:
        # arq logs each job's arguments at INFO: raw platform ids and reply tokens. Never.
        for name in ("arq.worker", "arq.jobs", "arq.connections"):
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))
        self._dispatcher = await RedisDispatcher.connect(self.config)
        self.ledger = DeliveryLedger(self.redis, self.config)
        self._worker = Puller(
            functions=[
                func(
                    self._run,
                    name=name,
                    timeout=timeout_s,
                    max_tries=self.config.max_runs + 1,  # the last one only gives up
                )
                for name, timeout_s in (
                    (QUEUE_FUNCTION, self.config.job_timeout_s),
                    (CLIP_FUNCTION, max(self.config.job_timeout_s, self.config.clip_timeout_s)),
                )
            ],
            redis_pool=self.redis,
            queue_name=self.config.queue_name,
            max_jobs=self.concurrency,
            poll_delay=self.config.poll_s,
            handle_signals=False,
            # No result kept: a job id stays refused while it is queued or running only, so a
            # durable row whose run ended without an answer can be queued again (redispatch).
            keep_result=0,
            job_serializer=dumps,
            job_deserializer=loads,
        )
        # Not the longest timeout's: refreshed while a job runs (`_keep_marked`).
        self._worker.in_progress_timeout_s = self._mark_s
        await self._beat()
        self._beats = asyncio.create_task(self._beat_loop(), name="animebot-worker-heartbeat")
        self._wake_ups = asyncio.create_task(
            relay_wake_ups(self.redis, self.config.wake_channel, self._worker, RECONNECT_S),
            name="animebot-worker-wake-ups",
        )
        self._main = asyncio.create_task(self._serve(self._worker), name="animebot-worker")
        log.info("worker %s: %d slot(s)", self.worker_id, self.concurrency)

    async def stop(self, grace_s: float = 30.0) -> None:
        """Take no new job, let the running ones finish (bounded), leave the fleet."""
        worker = self._worker
        if worker is not None:
            worker.allow_pick_jobs = False
            deadline = time.monotonic() + grace_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace_s)
            if self.running:
                log.warning("worker %s: %d job(s) cut short", self.worker_id, self.running)
            # arq ends each job after our function returns (takes it off the queue, drops its
            # in-progress key): cut short, the job would run again on another worker later.
            ending = [task for task in worker.tasks.values() if not task.done()]
            if ending:
                await asyncio.wait(ending, timeout=max(0.1, deadline - time.monotonic()))
        for task in (self._beats, self._wake_ups, self._main):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._dispatcher is not None:
            with contextlib.suppress(Exception):
                await self._dispatcher.registry.leave(self.worker_id)
            await self._dispatcher.close()
            self._dispatcher = None

    async def _serve(self, worker: Puller) -> None:
        """arq's poll loop, started again whenever Redis drops out (a restart, a failover):
        running jobs carry on meanwhile."""
        while True:
            try:
                await worker.main()
                return
            except (RedisError, OSError) as exc:
                log.warning("worker %s: Redis unreachable (%s); retrying", self.worker_id, exc)
                await asyncio.sleep(RECONNECT_S)
            except Exception:  # arq tripped over state a Redis restart left: never stop pulling
                log.exception("worker %s: the queue loop failed; starting it again", self.worker_id)
                await asyncio.sleep(RECONNECT_S)

    @property
    def _mark_s(self) -> float:
        """How long a job's in-progress key lives unless refreshed."""
        return self.config.job_timeout_s + 10

    async def _keep_marked(self, job_id: str) -> None:
        """Keep the job's in-progress key alive while it runs here (never recreates it)."""
        key = in_progress_key_prefix + job_id
        while True:
            await asyncio.sleep(self.config.job_timeout_s / 2)
            try:
                await self.redis.set(key, b"1", px=int(self._mark_s * 1000), xx=True)
            except (RedisError, OSError) as exc:  # the next round tries again
                log.warning("job %s: in-progress mark not refreshed (%s)", job_id, exc)

    async def _run(self, ctx: dict[str, Any], payload: dict[str, Any]) -> None:
        job_id: str = ctx["job_id"]
        attempt: int = ctx["job_try"]
        run = Run(job_id, attempt, self.worker_id, self.ledger)
        self.running += 1
        self._idle.clear()
        started = time.perf_counter()
        marking = asyncio.create_task(self._keep_marked(job_id), name="animebot-job-mark")
        try:
            if attempt > self.config.max_runs:
                log.warning("job %s: %d runs used up; giving up", job_id, attempt - 1)
                await self.executor.give_up(payload, run)
            else:
                if attempt > 1:
                    log.warning("job %s: run %d (an earlier run did not finish)", job_id, attempt)
                await self.executor.execute(payload, run)
        except Exception:
            log.exception("job %s: the executor failed", job_id)
        finally:
            marking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await marking
            self.running -= 1
            self.completed += 1
            if not self.running:
                self._idle.set()
            seconds = time.perf_counter() - started
            # arq's own per-job lines stay off (they carry the arguments); this one says only
            # which worker ran which request, so an operator can follow a job across machines.
            log.info("job %s: run %d finished in %.0f ms", job_id, attempt, seconds * 1000)
            await self._after(job_id, payload, seconds)

    async def _after(self, job_id: str, payload: dict[str, Any], seconds: float) -> None:
        """The person's next held job may go now; fold this job's time into the ETA."""
        assert self._dispatcher is not None
        try:
            await self._promote(fair_key(payload), finished=job_id)
            key = self.config.key("job-seconds")
            previous = float(await self.redis.get(key) or seconds)
            await self.redis.set(key, f"{0.8 * previous + 0.2 * seconds:.4f}")
        except Exception:
            log.exception("job %s: could not hand on the next job", job_id)

    async def _promote(self, user: str, finished: str = "") -> None:
        assert self._dispatcher is not None
        dispatcher = self._dispatcher
        cap = max(1, (await dispatcher.registry.fleet()).slots)
        while (nxt := await dispatcher.gate.promote(user, cap, finished)) is not None:
            await dispatcher.enqueue(nxt.job_id, loads(nxt.payload))
            finished = ""

    async def _beat(self) -> None:
        assert self._dispatcher is not None
        info = WorkerInfo(concurrency=self.concurrency, running=self.running)
        await self._dispatcher.registry.beat(self.worker_id, info)

    async def _beat_loop(self) -> None:
        """Heartbeat, and promote held jobs whose hand-off was lost (a worker killed between
        finishing a job and queueing the person's next one) or that more workers now allow."""
        assert self._dispatcher is not None
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            try:
                await self._beat()
                for user in await self._dispatcher.gate.held_users():
                    await self._promote(user)
            except Exception:
                log.warning("worker %s: heartbeat failed", self.worker_id, exc_info=True)
