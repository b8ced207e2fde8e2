"""`RedisDispatcher`: the front ends' side of the shared queue (the `Dispatcher` protocol).

`dispatch` hands a job to the workers (through the per-person gate of `fairness`), `position`
and `depth` read the shared queue's state, `workers` counts the live heartbeats. Redis being
down never loses an accepted job: its durable row stays in the database, and `redispatch`
(run by `watch` when Redis comes back or was restarted empty) puts every pending row on the
queue again; job ids make that idempotent (arq refuses a second job with the same id while
one is queued or running; workers keep no result, which would refuse it for good, and a run
whose row is already gone does nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix
from redis.exceptions import RedisError

from service.queue.config import CLIP_FUNCTION, QUEUE_FUNCTION, QueueConfig
from service.queue.connection import connect, dumps
from service.queue.fairness import FairGate
from service.queue.registry import Fleet, WorkerRegistry

log = logging.getLogger("animebot.queue")

WATCH_EVERY_S = 2.0

# KEYS: arq queue. ARGV: arq in-progress key prefix, a job id or ''. Returns {jobs waiting
# (queued, not started), of them ahead of the job (-1: not queued)}: exact, unlike heartbeats.
_WAITING = """
local waiting, ahead = 0, -1
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id == ARGV[2] then ahead = waiting end
  if redis.call('EXISTS', ARGV[1] .. id) == 0 then waiting = waiting + 1 end
end
return {waiting, ahead}
"""
DEFAULT_JOB_S = 1.0


class QueuedJob(Protocol):
    """What the queue needs of a job (service.lifecycle's `Job` has it)."""

    @property
    def request_id(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


PendingSource = Callable[[], Awaitable[Iterable[QueuedJob]]]


def fair_key(payload: dict[str, Any]) -> str:
    """Whose job it is, for the per-person cap: a hash (no raw id in Redis key names)."""
    who = f"{payload.get('platform', '')}\0{payload.get('user_id', '')}"
    return hashlib.sha256(who.encode()).hexdigest()[:24]


class RedisDispatcher:
    def __init__(self, redis: ArqRedis, config: QueueConfig) -> None:
        self.redis, self.config = redis, config
        self.gate = FairGate(redis, config)
        self.registry = WorkerRegistry(redis, config)
        self._waiting = redis.register_script(_WAITING)
        self._pending: PendingSource | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._run_id: str | None = None
        self._missed = False  # a dispatch failed: redispatch when Redis answers again

    @classmethod
    async def connect(cls, config: QueueConfig) -> RedisDispatcher:
        return cls(await connect(config), config)

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.redis.aclose(close_connection_pool=True)

    # -- the Dispatcher protocol -------------------------------------------------------------
    async def dispatch(self, job: QueuedJob) -> None:
        """Queue `job` for the workers. Redis being unreachable is logged, not raised: the
        job's durable row is already stored, and `watch` dispatches it again later."""
        try:
            await self.dispatch_payload(job.request_id, job.to_dict())
        except (RedisError, OSError):
            self._missed = True
            log.warning("request %s: Redis unreachable; dispatched when it is back", job.request_id)

    async def dispatch_payload(self, job_id: str, payload: dict[str, Any]) -> bool:
        """True when the job went on the queue or in its person's list; False: known already."""
        cap = max(1, (await self.registry.fleet()).slots)
        admitted = await self.gate.admit(fair_key(payload), job_id, dumps(payload), cap)
        if admitted is None:
            return False
        if admitted:
            await self.enqueue(job_id, payload)
        return True

    async def enqueue(self, job_id: str, payload: dict[str, Any]) -> bool:
        options = payload.get("options")
        is_clip = isinstance(options, dict) and bool(options.get("clip"))
        function = CLIP_FUNCTION if is_clip else QUEUE_FUNCTION  # clips may run longer
        job = await self.redis.enqueue_job(
            function, payload, _job_id=job_id, _queue_name=self.config.queue_name
        )
        if job is None:
            return False
        await self.redis.publish(self.config.wake_channel, b"")  # idle workers look now
        return True

    async def position(self, job: QueuedJob) -> tuple[int, float | None]:
        """(jobs that start before this one, seconds until its result or None if unknown)."""
        fleet = await self.registry.fleet()
        job_s = await self.job_seconds()
        waiting, ahead = await self._queue_state(job.request_id)
        if ahead < 0:
            held = await self.gate.held_index(fair_key(job.to_dict()), job.request_id)
            if held is None:  # running, or finished
                return 0, job_s if fleet.workers else None
            ahead = waiting + held + 1
        if not fleet.workers:
            return ahead, None
        return ahead, (ahead // max(1, fleet.slots) + 1) * job_s

    async def depth(self) -> int:
        """Jobs waiting (not running) across all machines."""
        waiting, _ = await self._queue_state("")
        return waiting + await self.gate.held_total()

    async def _queue_state(self, job_id: str) -> tuple[int, int]:
        keys = [self.config.queue_name]
        waiting, ahead = await self._waiting(keys=keys, args=[in_progress_key_prefix, job_id])
        return int(waiting), int(ahead)

    async def workers(self) -> int:
        return (await self.registry.fleet()).workers

    async def fleet(self) -> Fleet:
        return await self.registry.fleet()

    async def job_seconds(self) -> float:
        value = await self.redis.get(self.config.key("job-seconds"))
        return float(value) if value else DEFAULT_JOB_S

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    # -- nothing accepted is lost ------------------------------------------------------------
    def watch(self, pending: PendingSource) -> None:
        """Put `pending()` (the durable rows not answered yet) on the queue again whenever
        Redis was restarted (its run id changed) or a dispatch could not reach it."""
        self._pending = pending
        self._watcher = asyncio.create_task(self._watch(), name="animebot-queue-watch")

    async def _watch(self) -> None:
        while True:
            try:
                run_id = str((await self.redis.info("server"))["run_id"])
                if self._missed or (self._run_id is not None and run_id != self._run_id):
                    self._missed = False
                    count = await self.redispatch()
                    log.warning("Redis is back (or was restarted): %d job(s) queued again", count)
                self._run_id = run_id
            except (RedisError, OSError):
                self._missed = True  # down now: whatever it held may be gone when it is back
            except Exception:
                log.exception("queue watch failed")
            await asyncio.sleep(WATCH_EVERY_S)

    async def redispatch(self) -> int:
        if self._pending is None:
            return 0
        count = 0
        for job in await self._pending():
            if await self.dispatch_payload(job.request_id, job.to_dict()):
                count += 1
        return count
