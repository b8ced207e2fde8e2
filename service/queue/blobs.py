"""Bytes every machine must reach: uploads that buttons re-use, cached results.

Kept in Redis with a time to live and a byte budget: `put` evicts the oldest entries while the
total is over `blob_budget_bytes`, so the shared cache can never grow past it (a local folder
would be unreachable from the other machines). Entries that expired on their own are dropped
from the index on the next `put`.
"""

from __future__ import annotations

from arq.connections import ArqRedis

from service.queue.config import QueueConfig

# KEYS: index zset (score = expiry ms), sizes hash, total counter. ARGV: key prefix, name, ttl ms,
# budget. The data is written by the caller in the same transaction (see put).
_ACCOUNT = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('DECRBY', KEYS[3], tonumber(redis.call('HGET', KEYS[2], name) or '0'))
  redis.call('HDEL', KEYS[2], name)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local old = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
local size = redis.call('STRLEN', ARGV[1] .. ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], size)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
local total = redis.call('INCRBY', KEYS[3], size - old)
local evicted = 0
while total > tonumber(ARGV[4]) do
  local oldest = redis.call('ZPOPMIN', KEYS[1])
  if #oldest == 0 then break end
  local name = oldest[1]
  total = redis.call('DECRBY', KEYS[3], tonumber(redis.call('HGET', KEYS[2], name) or '0'))
  redis.call('HDEL', KEYS[2], name)
  redis.call('DEL', ARGV[1] .. name)
  evicted = evicted + 1
end
return evicted
"""


class RedisBlobs:
    def __init__(self, redis: ArqRedis, config: QueueConfig) -> None:
        self.redis, self.config = redis, config
        self._prefix = config.key("blob", "")
        self._index = [config.key("blob-index"), config.key("blob-sizes"), config.key("blob-bytes")]
        self._account = redis.register_script(_ACCOUNT)

    async def put(self, name: str, data: bytes, ttl_s: float | None = None) -> int:
        """Store `data` under `name`; returns how many older entries the budget evicted."""
        ttl_ms = int((ttl_s or self.config.blob_ttl_s) * 1000)
        if len(data) > self.config.blob_budget_bytes:
            return 0  # larger than the whole budget: not shared (the caller keeps it local)
        await self.redis.set(self._prefix + name, data, px=ttl_ms)
        args: list[str | int] = [self._prefix, name, ttl_ms, self.config.blob_budget_bytes]
        return int(await self._account(keys=self._index, args=args))

    async def get(self, name: str) -> bytes | None:
        data: bytes | None = await self.redis.get(self._prefix + name)
        return data

    async def total_bytes(self) -> int:
        return int(await self.redis.get(self._index[2]) or 0)
