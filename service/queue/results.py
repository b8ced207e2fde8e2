"""Web results travel back through Redis to the front end that holds the HTTP request.

The worker stores the result under `web:<request id>` (expiring after `result_ttl_s`) and
publishes the id on the channel of the front end named in the job's outlet. The front end has
one subscription per process and resolves the waiting request; it also reads the key itself
every second, so a message lost with a Redis restart or a reconnection only delays the answer.

A clip's progress goes the same way, as a small key `web-frames:<request id>` ("done total",
expiring after `FRAMES_TTL_S`) that the worker overwrites after each chunk of frames and the
front end reads when the page asks (`GET /api/progress/...`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis

from service.queue.config import QueueConfig

log = logging.getLogger("animebot.queue")

RECHECK_S = 1.0
FRAMES_TTL_S = 120  # a clip's progress key outlives a stalled worker by this much at most


@dataclass(frozen=True)
class WebResult:
    data: bytes  # the encoded image, or b"" for a refusal
    meta: dict[str, Any]  # what the page shows: mime, sizes, timings, or the refusal's code


class WebResults:
    def __init__(self, redis: ArqRedis, config: QueueConfig, front_id: str) -> None:
        self.redis, self.config, self.front_id = redis, config, front_id
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._listener: asyncio.Task[None] | None = None
        # Set by a front end that hands results on (instead of awaiting `wait`): called with
        # each result announced on this front end's channel, taken out of Redis first.
        self.on_result: Callable[[str, WebResult], None] | None = None

    def channel(self, front_id: str) -> str:
        return self.config.key("web-ready", front_id)

    # -- worker side -------------------------------------------------------------------------
    async def publish(self, front_id: str, request_id: str, result: WebResult) -> None:
        key = self.config.key("web", request_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"data": result.data, "meta": json.dumps(result.meta)})
            pipe.expire(key, int(self.config.result_ttl_s))
            pipe.publish(self.channel(front_id), request_id)
            await pipe.execute()

    async def set_frames(self, request_id: str, done: int, total: int) -> None:
        """A clip's progress, for the front end whose page shows it."""
        key = self.config.key("web-frames", request_id)
        await self.redis.set(key, f"{done} {total}", ex=FRAMES_TTL_S)

    # -- front end side ----------------------------------------------------------------------
    async def frames(self, request_id: str) -> tuple[int, int] | None:
        """The clip's last progress a worker wrote; None before the first (or Redis away)."""
        try:
            raw = await self.redis.get(self.config.key("web-frames", request_id))
        except Exception:  # a progress bar is worth no failure
            return None
        if not raw:
            return None
        done, _, total = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition(" ")
        return int(done), int(total)

    async def start(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel(self.front_id))
        self._listener = asyncio.create_task(self._listen(pubsub), name="animebot-web-results")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen(self, pubsub: Any) -> None:
        try:
            while True:
                try:
                    message = await pubsub.get_message(timeout=1.0)
                except Exception:  # Redis went away: the waiters re-read their keys meanwhile
                    log.warning("web results: subscription lost; retrying", exc_info=True)
                    await asyncio.sleep(RECHECK_S)
                    with contextlib.suppress(Exception):
                        await pubsub.subscribe(self.channel(self.front_id))
                    continue
                if message is None:
                    continue
                data = message.get("data")
                request_id = data.decode() if isinstance(data, bytes) else str(data)
                if (future := self._waiters.get(request_id)) and not future.done():
                    future.set_result(None)
                elif self.on_result is not None:
                    await self.hand_on(request_id)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def wait(self, request_id: str, timeout_s: float) -> WebResult | None:
        """The result of `request_id`, or None after `timeout_s`; each result is taken once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        future = self._waiters[request_id] = loop.create_future()
        try:
            while True:
                with contextlib.suppress(Exception):  # Redis down: try again next second
                    if (found := await self._take(request_id)) is not None:
                        return found
                left = deadline - loop.time()
                if left <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), min(RECHECK_S, left))
        finally:
            self._waiters.pop(request_id, None)

    async def hand_on(self, request_id: str) -> bool:
        """Take the result of `request_id` if it is there and pass it to `on_result`."""
        try:
            found = await self._take(request_id)
        except Exception:
            return False
        if found is None or self.on_result is None:
            return False
        self.on_result(request_id, found)
        return True

    async def _take(self, request_id: str) -> WebResult | None:
        key = self.config.key("web", request_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.delete(key)
            found, _ = await pipe.execute()
        if not found:
            return None
        return WebResult(found[b"data"], json.loads(found[b"meta"]))
