"""`redis_url`: a real redis-server for one test (skipped with the reason when absent)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.queue.redis_server import REDIS_SERVER, RedisProcess


@pytest.fixture
def redis_url() -> Iterator[str]:
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.skip(f"redis-server not found at {REDIS_SERVER} (apt-get install redis-server)")
    server = RedisProcess()
    server.start()
    yield server.url
    server.remove()
