"""`Puller`: arq's `Worker` with two changes this project needs (arq 0.28, pinned <0.29).

1. A slot is never lost. arq takes a job slot (its semaphore and `job_counter`) before the
   Redis round trips that start the job; when Redis drops in between, the exception skips
   arq's release and the slot is gone until the process restarts: a worker that lived through
   a Redis outage runs fewer jobs at once (tests/queue/test_queue_worker_slots.py).
2. Idle workers wait instead of polling. arq looks at the queue every `poll_delay` seconds;
   here the loop also wakes at once when a job is queued (a message on the queue's wake
   channel, sent by `RedisDispatcher.enqueue`) or a slot of this worker frees, so
   `poll_delay` is only the fallback for a missed message and can be long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq.connections import ArqRedis
from arq.worker import Worker
from redis.exceptions import RedisError

log = logging.getLogger("animebot.worker")


class Puller(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the queue now (a job was queued)."""
        self._wake.set()

    async def main(self) -> None:
        """arq's loop (we pass the pool and use neither burst mode, startup hooks nor its
        signal handling), waiting on a wake-up or `poll_delay`, whichever comes first."""
        self.ctx["redis"] = self.pool
        while True:
            self._wake.clear()  # a wake during the iteration sets it again: no job is missed
            await self._poll_iteration()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_delay_s)

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        self._wake.set()  # a slot is free: the next job need not wait for a poll

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's, one job at a time, giving back the slot of a job whose start failed."""
        for job_id in job_ids:
            if self.job_counter >= self.max_jobs:
                return
            before = self.tasks.get(job_id.decode())
            try:
                await super().start_jobs([job_id])
            except Exception:
                # arq took the slot and raised before creating the job's task (whose end
                # would have released it): release it here.
                if self.tasks.get(job_id.decode()) is before:
                    self._release_sem_dec_counter_on_complete()
                raise


async def relay_wake_ups(redis: ArqRedis, channel: str, puller: Puller, retry_s: float) -> None:
    """Wake `puller` on every message on `channel`, until cancelled; resubscribes after Redis
    drops out (and wakes it then, for what was queued meanwhile)."""
    while True:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            puller.wake()
            while True:
                if await pubsub.get_message(timeout=None) is not None:
                    puller.wake()
        except (RedisError, OSError) as exc:
            log.debug("wake-ups: Redis unreachable (%s); resubscribing", exc)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        await asyncio.sleep(retry_s)
