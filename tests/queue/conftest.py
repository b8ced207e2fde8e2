"""A real redis-server per test module (skipped with the reason when it is not installed);
each test gets a flushed database."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from service.queue import QueueConfig, RedisDispatcher
from tests.queue.redis_server import REDIS_SERVER, RedisProcess


@pytest.fixture(scope="module")
def redis_process() -> Iterator[RedisProcess]:
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.skip(f"redis-server not found at {REDIS_SERVER} (apt-get install redis-server)")
    server = RedisProcess()
    server.start()
    yield server
    server.remove()


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
