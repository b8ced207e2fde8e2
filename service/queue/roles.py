"""What one process runs on the shared queue, by role (`animebot serve --role`, `animebot
worker`): the front end's half (dispatch, web results, re-queueing), the worker's half (pull
and run jobs), or both; plus the queue gauges on its `/metrics`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from service.queue.bridge import QueueBackEnd, QueueFront, queue_config
from service.queue.dispatcher import RedisDispatcher
from service.queue.gauges import QueueGauges

if TYPE_CHECKING:
    from service.runtime import Runtime

Role = Literal["front", "worker", "all"]
ROLES: tuple[Role, ...] = ("front", "worker", "all")


class QueueRoles:
    def __init__(self, runtime: Runtime, role: Role, *, concurrency: int | None = None) -> None:
        self.runtime, self.role = runtime, role
        self.config = queue_config(runtime.settings)
        self.concurrency = concurrency or runtime.settings.workers
        self.front: QueueFront | None = None
        self.back: QueueBackEnd | None = None
        self._gauges: QueueGauges | None = None
        self._probe: RedisDispatcher | None = None

    async def start_front(self) -> None:
        """Before the front ends start: jobs they accept go to the shared queue."""
        if self.role == "worker":
            return
        self.front = QueueFront(self.runtime.runner, self.config)
        await self.front.start()
        self.runtime.queue = self.front

    async def start_workers(self) -> None:
        """After the front ends registered their outlets: pull jobs."""
        if self.role != "front":
            self.back = QueueBackEnd(self.runtime.runner, self.config, concurrency=self.concurrency)
            await self.back.start()
        self._probe = await RedisDispatcher.connect(self.config)
        self._gauges = QueueGauges(self.runtime.service.metrics.registry, self._probe)
        self._gauges.start()

    async def ping(self) -> bool:
        return self._probe is not None and await self._probe.ping()

    async def stop(self, grace_s: float) -> None:
        """Workers finish what they run (bounded), then the rest closes."""
        if self.back is not None:
            await self.back.stop(grace_s)
        if self._gauges is not None:
            await self._gauges.stop()
        if self._probe is not None:
            await self._probe.close()
        if self.front is not None:
            await self.front.stop()
            self.runtime.queue = None
