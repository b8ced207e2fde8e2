"""How a worker pulls jobs, against a real redis-server: Redis dropping while a job is being
started costs no slot for good; a queued job or a freed slot wakes an idle worker at once (the
poll is only a fallback); stopping lets arq end the last job."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

from redis.exceptions import RedisError

from service.queue import QueueConfig, QueueWorker, RedisDispatcher
from tests.queue.cutting_proxy import CuttingProxy
from tests.queue.redis_server import RedisProcess
from tests.queue.test_queue_redis import GatedExecutor, job, wait_until


async def test_redis_dropping_while_a_job_starts_leaves_every_slot(
    queue_config: QueueConfig, dispatcher: RedisDispatcher, redis_process: RedisProcess
) -> None:
    """The drop hits arq's start of a job (its WATCH on the in-progress key): the worker
    reconnects, runs that job, and still runs two at once."""
    executor = GatedExecutor()
    async with CuttingProxy(redis_process.port) as proxy:
        config = dataclasses.replace(queue_config, url=proxy.url)
        worker = QueueWorker(config, executor, concurrency=2, worker_id=uuid.uuid4().hex[:12])
        await worker.start()
        try:
            proxy.arm("WATCH")
            first = job(user=1)
            await dispatcher.dispatch(first)
            async with asyncio.timeout(10):
                await proxy.cut.wait()
            await wait_until(lambda: _started(executor, 1))  # taken again after the drop
            assert executor.started == [first.request_id]
            second = job(user=2)
            await dispatcher.dispatch(second)
            await wait_until(lambda: _started(executor, 2))  # the second slot is still there
            assert proxy.cuts == 1
            executor.expect = 2
            executor.go.set()
            async with asyncio.timeout(10):
                await executor.all_done.wait()
        finally:
            executor.go.set()
            await worker.stop(grace_s=5)


async def _started(executor: GatedExecutor, n: int) -> bool:
    return len(executor.started) >= n


async def test_a_job_that_ends_as_the_worker_stops_leaves_the_queue(
    queue_config: QueueConfig, dispatcher: RedisDispatcher
) -> None:
    """Stopping waits for arq's end of the job too (off the queue, in-progress key gone), so it
    is not run a second time by another worker after the in-progress key expires."""
    executor = GatedExecutor()
    worker = QueueWorker(queue_config, executor, concurrency=1)
    await worker.start()
    try:
        one = job(user=1)
        await dispatcher.dispatch(one)
        await wait_until(lambda: _started(executor, 1))
        executor.expect = 1
        executor.go.set()
    finally:
        await worker.stop(grace_s=5)
    assert executor.finished == [one.request_id]
    assert await dispatcher.redis.zcard(queue_config.queue_name) == 0
    assert not await dispatcher.redis.exists(f"arq:in-progress:{one.request_id}")


SLOW_POLL_S = 60.0  # longer than any deadline below: only a wake-up can start these jobs


async def test_a_queued_job_wakes_an_idle_worker_without_waiting_for_a_poll(
    queue_config: QueueConfig, dispatcher: RedisDispatcher
) -> None:
    executor = GatedExecutor()
    config = dataclasses.replace(queue_config, poll_s=SLOW_POLL_S)
    worker = QueueWorker(config, executor, concurrency=1)
    await worker.start()
    try:
        await wait_until(lambda: _subscribers(dispatcher, config, 1))
        album = [job(user=1) for _ in range(3)]
        for one in album:  # one slot: the second and third wait in the person's list
            await dispatcher.dispatch(one)
        await wait_until(lambda: _started(executor, 1), within_s=10)
        executor.expect = 3
        executor.go.set()  # each end frees the slot and queues the next: both wake the worker
        async with asyncio.timeout(10):
            await executor.all_done.wait()
        assert executor.finished == [one.request_id for one in album]
    finally:
        executor.go.set()
        await worker.stop(grace_s=5)


async def test_wake_ups_come_back_after_redis_restarts(
    queue_config: QueueConfig, dispatcher: RedisDispatcher, redis_process: RedisProcess
) -> None:
    executor = GatedExecutor()
    config = dataclasses.replace(queue_config, poll_s=SLOW_POLL_S)
    worker = QueueWorker(config, executor, concurrency=1)
    await worker.start()
    try:
        await wait_until(lambda: _subscribers(dispatcher, config, 1))
        redis_process.kill()
        await asyncio.to_thread(redis_process.start)  # the same port, nothing in it
        await wait_until(lambda: _subscribers(dispatcher, config, 1), within_s=20)
        one = job(user=1)
        await dispatcher.dispatch(one)
        executor.expect = 1
        executor.go.set()
        async with asyncio.timeout(20):
            await executor.all_done.wait()
        assert executor.finished == [one.request_id]
    finally:
        executor.go.set()
        await worker.stop(grace_s=5)


async def _subscribers(dispatcher: RedisDispatcher, config: QueueConfig, n: int) -> bool:
    try:
        counts = await dispatcher.redis.pubsub_numsub(config.wake_channel)
    except (RedisError, OSError):
        return False  # Redis still restarting
    return bool(counts) and int(counts[0][1]) == n
