"""The web outlet: the result goes back to an HTTP request waiting in this process.

The request registers a future under its job's request id (`expect`); the outlet resolves it
with the reply (a photo's or a clip's), or with the error that says why there is none. A
dispatcher that runs the job elsewhere resolves the same future when the result comes back
(service/queue/).
"""

from __future__ import annotations

import asyncio
from typing import Any

from core.errors import AnimeBotError
from service.clips import ClipReply
from service.convert import ConversionReply
from service.fairqueue import QueueStatus
from service.lifecycle.job import Job
from service.lifecycle.outlet import OutletLimits

KIND = "web"

WebReply = ConversionReply | ClipReply


class Waiting:
    """Requests of this process waiting for their job's answer, by request id."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[WebReply]] = {}

    def expect(self, request_id: str) -> asyncio.Future[WebReply]:
        future: asyncio.Future[WebReply] = asyncio.get_running_loop().create_future()
        self._futures[request_id] = future
        return future

    def forget(self, request_id: str) -> None:
        future = self._futures.pop(request_id, None)
        if future is None:
            return
        if not future.done():
            future.cancel()
        elif not future.cancelled():
            future.exception()  # retrieved: an answer nobody waited for is no error

    def resolve(self, request_id: str, reply: WebReply) -> None:
        future = self._futures.get(request_id)
        if future is not None and not future.done():
            future.set_result(reply)

    def reject(self, request_id: str, error: AnimeBotError) -> None:
        future = self._futures.get(request_id)
        if future is not None and not future.done():
            future.set_exception(error)

    def answer(self, request_id: str, answer: WebReply | AnimeBotError) -> None:
        """A result or a refusal that came back from another process (service/queue/)."""
        if isinstance(answer, AnimeBotError):
            self.reject(request_id, answer)
        else:
            self.resolve(request_id, answer)

    def __len__(self) -> int:
        return len(self._futures)

    def outlet(self, job: Job) -> WaitingOutlet:
        return WaitingOutlet(self, job)


class WaitingOutlet:
    def __init__(self, waiting: Waiting, job: Job) -> None:
        self._waiting = waiting
        side = job.outlet.get("max_side")
        self.limits = OutletLimits(max_side=int(side) if side else None)

    async def begin(self, job: Job) -> None:
        return None

    async def notify(self, job: Job, status: QueueStatus) -> None:
        return None  # the page shows its own "converting…"

    async def deliver(self, job: Job, reply: ConversionReply) -> None:
        self._waiting.resolve(job.request_id, reply)

    async def frames(self, job: Job, done: int, total: int) -> None:
        return None  # the runner keeps it; the page asks for it (`JobRunner.frames`)

    async def deliver_clip(self, job: Job, reply: ClipReply) -> None:
        self._waiting.resolve(job.request_id, reply)

    async def fail(self, job: Job, error: AnimeBotError) -> None:
        self._waiting.reject(job.request_id, error)

    async def defer(self, job: Job) -> dict[str, Any]:
        return {}  # web requests are never durable

    async def end(self, job: Job) -> None:
        return None
