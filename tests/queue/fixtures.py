"""`redis_url`: a real redis-server for one test (skipped with the reason when absent)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.queue.redis_server import running_redis


@pytest.fixture
def redis_url() -> Iterator[str]:
    with running_redis() as server:
        yield server.url
