"""A real redis-server per test module (skipped with the reason when it is not installed);
each test gets a flushed database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from service.queue import QueueConfig, RedisDispatcher
from tests.queue.redis_server import RedisProcess, running_redis


@pytest.fixture(scope="module")
def redis_process() -> Iterator[RedisProcess]:
    with running_redis() as server:
        yield server


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    """A redis-server of the test's own (for tests that kill it, or run processes against it)."""
    with running_redis() as server:
        yield server


@pytest.fixture
async def queue_config(redis_process: RedisProcess) -> AsyncIterator[QueueConfig]:
    config = QueueConfig(redis_process.url, heartbeat_s=0.5, poll_s=0.05, job_timeout_s=5)
    dispatcher = await RedisDispatcher.connect(config)
    await dispatcher.redis.flushdb()
    await dispatcher.close()
    yield config


@pytest.fixture
async def dispatcher(queue_config: QueueConfig) -> AsyncIterator[RedisDispatcher]:
    d = await RedisDispatcher.connect(queue_config)
    yield d
    await d.close()
