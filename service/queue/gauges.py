"""Queue depth and live workers as Prometheus gauges on every process's `/metrics`.

Reading them needs Redis (async), so a task refreshes them every few seconds instead of at
scrape time; a scrape never waits for Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CollectorRegistry, Gauge

from service.queue.dispatcher import RedisDispatcher

log = logging.getLogger("animebot.queue")

REFRESH_S = 2.0


class QueueGauges:
    def __init__(self, registry: CollectorRegistry, dispatcher: RedisDispatcher) -> None:
        self.dispatcher = dispatcher
        self.depth = Gauge(
            "animebot_queue_depth", "Jobs waiting on the shared queue", registry=registry
        )
        self.workers = Gauge(
            "animebot_queue_workers", "Worker processes alive (heartbeats)", registry=registry
        )
        self.slots = Gauge(
            "animebot_queue_worker_slots",
            "Jobs the live workers can run at once",
            registry=registry,
        )
        self.up = Gauge("animebot_queue_up", "1 when Redis answers", registry=registry)
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        try:
            fleet = await self.dispatcher.fleet()
            self.depth.set(await self.dispatcher.depth())
            self.workers.set(fleet.workers)
            self.slots.set(fleet.slots)
            self.up.set(1)
        except Exception:
            self.up.set(0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="animebot-queue-gauges")

    async def _loop(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(REFRESH_S)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
