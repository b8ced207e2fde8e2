"""Which workers are alive, and how many jobs they can run: heartbeats in one sorted set.

Each worker writes (score = Redis's own clock + a lease) every `heartbeat_s`; a worker whose
lease ran out (killed, machine gone) stops counting within three heartbeats. Redis's clock is
used, not each machine's, so clock skew between machines cannot make workers look dead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from arq.connections import ArqRedis

from service.queue.config import QueueConfig

# KEYS: workers zset, info hash. ARGV: worker id, lease ms, info json ('' = leave).
_BEAT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1]); redis.call('HDEL', KEYS[2], ARGV[1]); return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""

# KEYS: workers zset, info hash. Returns the info of the live workers (drops the dead).
_LIVE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('HDEL', KEYS[2], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
"""


@dataclass(frozen=True)
class WorkerInfo:
    concurrency: int
    running: int


@dataclass(frozen=True)
class Fleet:
    workers: int
    slots: int  # sum of the workers' concurrency
    running: int


class WorkerRegistry:
    def __init__(self, redis: ArqRedis, config: QueueConfig) -> None:
        self.redis, self.config = redis, config
        self._keys = [config.key("workers"), config.key("worker-info")]
        self._beat = redis.register_script(_BEAT)
        self._live = redis.register_script(_LIVE)

    async def beat(self, worker_id: str, info: WorkerInfo) -> None:
        lease_ms = int(self.config.heartbeat_s * 3 * 1000)
        text = json.dumps({"concurrency": info.concurrency, "running": info.running})
        await self._beat(keys=self._keys, args=[worker_id, lease_ms, text])

    async def leave(self, worker_id: str) -> None:
        await self._beat(keys=self._keys, args=[worker_id, 0, ""])

    async def fleet(self) -> Fleet:
        infos = [json.loads(raw) for raw in await self._live(keys=self._keys) if raw]
        return Fleet(
            workers=len(infos),
            slots=sum(int(i["concurrency"]) for i in infos),
            running=sum(int(i["running"]) for i in infos),
        )
