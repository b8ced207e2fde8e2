"""One arq pool (a redis-py client) per process, with JSON job payloads (never pickle: a job
crosses machines, and nobody should be able to run code by writing to the queue)."""

from __future__ import annotations

import json
from typing import Any

from arq import create_pool
from arq.connections import ArqRedis

from service.queue.config import QueueConfig


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=repr).encode()


def loads(data: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(data)
    return value


async def connect(config: QueueConfig) -> ArqRedis:
    return await create_pool(
        config.redis_settings(),
        job_serializer=dumps,
        job_deserializer=loads,
        default_queue_name=config.queue_name,
    )
