"""A clip's job on the shared queue may run longer than a photo's time limit
(`clip_timeout_s`, its own arq function), while its in-progress mark keeps the photos' short
life and is refreshed by the worker running it: a killed worker's clip is still taken over
`job_timeout_s + 10` s after its last refresh, not after the clip's limit."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from arq.constants import in_progress_key_prefix

from service.queue import QueueConfig, RedisDispatcher
from service.queue.worker import QueueWorker, Run


class HeldExecutor:
    """Runs until released; says whether arq cut it short."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.runs: list[int] = []
        self.cancelled = False

    async def execute(self, payload: dict[str, Any], run: Run) -> None:
        self.runs.append(run.attempt)
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def give_up(self, payload: dict[str, Any], run: Run) -> None:
        raise AssertionError("a clip within its limit is never given up")


async def test_a_clip_outlives_the_photo_time_limit_and_its_mark_is_refreshed(
    queue_config: QueueConfig, dispatcher: RedisDispatcher
) -> None:
    config = replace(queue_config, job_timeout_s=0.4, clip_timeout_s=60)
    executor = HeldExecutor()
    worker = QueueWorker(config, executor, concurrency=1)
    await worker.start()
    try:
        payload = {"request_id": "clip-1", "platform": "web", "user_id": "u", "options": {}}
        payload["options"] = {"clip": True}
        assert await dispatcher.enqueue("clip-1", payload)
        async with asyncio.timeout(30):
            await executor.started.wait()
        mark = in_progress_key_prefix + "clip-1"
        full_ms = (config.job_timeout_s + 10) * 1000
        assert 0 < await dispatcher.redis.pttl(mark) <= full_ms  # a photo's life, not 70 s
        # Watch the mark being refreshed (its time to live going up again) three times: the
        # clip then ran past a photo's limit (each refresh comes job_timeout_s / 2 apart).
        began = asyncio.get_running_loop().time()
        refreshes, last = 0, await dispatcher.redis.pttl(mark)
        async with asyncio.timeout(30):
            while refreshes < 3:
                ttl = await dispatcher.redis.pttl(mark)
                assert ttl > 0, "the mark expired while the clip ran"
                refreshes += ttl > last
                last = ttl
                await asyncio.sleep(0.01)  # polling another task's writes, with a deadline
        assert asyncio.get_running_loop().time() - began > config.job_timeout_s
        assert not executor.cancelled and executor.runs == [1]
        executor.release.set()
        async with asyncio.timeout(30):
            while await dispatcher.redis.exists(mark):  # noqa: ASYNC110 (arq's own cleanup)
                await asyncio.sleep(0.01)
        assert executor.runs == [1] and not executor.cancelled
    finally:
        executor.release.set()
        await worker.stop(5)
