"""The queue's parts against a real redis-server: fairness, positions, worker count, exactly
one delivery, web results, the shared blob budget."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

from service.queue import (
    DeliveryLedger,
    QueueConfig,
    QueueWorker,
    RedisBlobs,
    RedisDispatcher,
    WebResults,
)
from service.queue.results import WebResult
from service.queue.worker import Run
from tests.queue.redis_server import RedisProcess


@dataclasses.dataclass(frozen=True)
class FakeJob:
    request_id: str
    user_id: int

    def to_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "platform": "test", "user_id": self.user_id}


def job(user: int) -> FakeJob:
    return FakeJob(uuid.uuid4().hex, user)


class GatedExecutor:
    """Records the order jobs start in; each job runs until `go` is set."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.go = asyncio.Event()
        self.finished: list[str] = []
        self.all_done = asyncio.Event()
        self.expect = 0

    async def execute(self, payload: dict[str, Any], run: Run) -> None:
        self.started.append(payload["request_id"])
        await self.go.wait()
        self.finished.append(payload["request_id"])
        if len(self.finished) >= self.expect:
            self.all_done.set()

    async def give_up(self, payload: dict[str, Any], run: Run) -> None:
        raise AssertionError("no job should use up its runs here")


async def wait_until(predicate: Any, within_s: float = 10.0) -> None:
    """Poll `predicate` (a coroutine factory) until true, failing after `within_s`."""
    async with asyncio.timeout(within_s):
        while not await predicate():  # noqa: ASYNC110 (state in Redis: nothing to wait on)
            await asyncio.sleep(0.02)


async def test_an_album_cannot_delay_a_single_photo_by_more_than_one_job_per_slot(
    queue_config: QueueConfig, dispatcher: RedisDispatcher
) -> None:
    executor = GatedExecutor()
    workers = [QueueWorker(queue_config, executor, concurrency=1) for _ in range(2)]
    for w in workers:
        await w.start()
    try:
        await wait_until(lambda: _is(dispatcher.workers(), 2))
        album = [job(user=1) for _ in range(20)]
        for j in album:
            await dispatcher.dispatch(j)
        single = job(user=2)
        await dispatcher.dispatch(single)
        await wait_until(lambda: _true(len(executor.started) == 2))
        # The album has one job per slot on the shared queue, the rest in its own list:
        assert await dispatcher.depth() == 19  # 18 held + the single photo
        ahead, eta = await dispatcher.position(single)
        assert ahead == 0 and eta is not None
        executor.expect = 21
        executor.go.set()
        await asyncio.wait_for(executor.all_done.wait(), 30)
        # Two album jobs were running when it came; at most one per slot started before it.
        assert executor.started.index(single.request_id) <= 2 + 2 - 1
        assert sorted(executor.finished) == sorted(j.request_id for j in [*album, single])
        assert await dispatcher.depth() == 0
    finally:
        for w in workers:
            await w.stop(grace_s=5)
    assert await dispatcher.workers() == 0  # they left the fleet on stop


async def test_a_dispatched_job_is_known_once(dispatcher: RedisDispatcher) -> None:
    one = job(user=3)
    assert await dispatcher.dispatch_payload(one.request_id, one.to_dict())
    assert not await dispatcher.dispatch_payload(one.request_id, one.to_dict())
    assert await dispatcher.depth() == 1
    assert await dispatcher.position(one) == (0, None)  # no worker alive: no ETA


async def test_a_second_run_does_not_deliver_again(
    queue_config: QueueConfig, dispatcher: RedisDispatcher
) -> None:
    ledger = DeliveryLedger(dispatcher.redis, queue_config, lease_s=0.5)
    delivered: list[str] = []
    async with ledger.once("r1", "run-a") as go:
        assert go
        delivered.append("a")
    async with ledger.once("r1", "run-b") as go:
        assert not go
    assert delivered == ["a"]


async def test_a_failed_delivery_lets_the_next_run_deliver(
    queue_config: QueueConfig, dispatcher: RedisDispatcher
) -> None:
    ledger = DeliveryLedger(dispatcher.redis, queue_config, lease_s=0.5)
    try:
        async with ledger.once("r2", "run-a") as go:
            assert go
            raise ConnectionError("the platform did not answer")
    except ConnectionError:
        pass
    async with ledger.once("r2", "run-b") as go:
        assert go


async def test_a_killed_runs_lease_expires_and_another_run_delivers(
    queue_config: QueueConfig, dispatcher: RedisDispatcher
) -> None:
    ledger = DeliveryLedger(dispatcher.redis, queue_config, lease_s=0.3)
    # run-a took the lease and died (its block never ended): simulate with the raw key.
    await dispatcher.redis.set(queue_config.key("delivering", "r3"), "run-a", px=300)
    async with ledger.once("r3", "run-b") as go:
        assert go
    assert await ledger.delivered("r3")


async def test_a_short_redis_outage_does_not_cost_the_answer(
    queue_config: QueueConfig, dispatcher: RedisDispatcher, redis_process: RedisProcess
) -> None:
    """Redis restarted (empty) just as a run is about to deliver: the ledger waits for it, and
    the reply goes out and is marked, instead of the run failing with nobody answered."""
    ledger = DeliveryLedger(dispatcher.redis, queue_config, lease_s=5)
    met_the_outage = asyncio.Event()
    claim = ledger._claim

    async def observed(**kwargs: Any) -> Any:
        try:
            return await claim(**kwargs)
        except Exception:
            met_the_outage.set()
            raise

    ledger._claim = observed  # type: ignore[assignment]

    async def deliver() -> bool:
        async with ledger.once("r4", "run-a") as go:
            return go

    redis_process.kill()
    run = asyncio.create_task(deliver())
    async with asyncio.timeout(10):
        await met_the_outage.wait()
    await asyncio.to_thread(redis_process.start)  # the same port, nothing in it
    async with asyncio.timeout(20):
        assert await run is True
    assert await ledger.delivered("r4")


async def test_web_result_reaches_the_waiting_front_end(
    queue_config: QueueConfig, dispatcher: RedisDispatcher
) -> None:
    front = WebResults(dispatcher.redis, queue_config, "front-1")
    await front.start()
    try:
        waiting = asyncio.create_task(front.wait("req-1", timeout_s=10))
        worker_side = WebResults(dispatcher.redis, queue_config, "worker")
        await worker_side.publish("front-1", "req-1", WebResult(b"\x89PNG", {"mime": "image/png"}))
        result = await waiting
        assert result == WebResult(b"\x89PNG", {"mime": "image/png"})
        assert await front.wait("req-1", timeout_s=0.1) is None  # taken once
    finally:
        await front.stop()


async def test_shared_blobs_stay_within_the_byte_budget(
    queue_config: QueueConfig, dispatcher: RedisDispatcher
) -> None:
    config = dataclasses.replace(queue_config, blob_budget_bytes=250)
    blobs = RedisBlobs(dispatcher.redis, config)
    for i in range(5):
        await blobs.put(f"b{i}", bytes([i]) * 100)
    assert await blobs.total_bytes() <= 250
    assert await blobs.get("b0") is None  # the oldest went first
    assert await blobs.get("b4") == bytes([4]) * 100
    assert await blobs.put("huge", b"x" * 251) == 0 and await blobs.get("huge") is None


async def _is(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def _true(value: bool) -> bool:
    return value
