"""Fairness across workers: a per-person cap on jobs in the shared queue.

The broker (arq) is a plain FIFO shared by every worker. A person may have at most `cap` jobs in
it at once, where `cap` is the number of worker slots alive (sum of `--concurrency` over the
workers); further jobs wait in that person's own list in Redis and are promoted one by one as
that person's jobs finish. So a 20-photo album occupies at most one place per worker slot in
the FIFO, and another person's single photo, which goes straight in, has at most one album job
per worker slot ahead of it. A lone album still uses every worker.

Everything here is one Lua script per step (atomic in Redis). The in-flight set heals itself:
a member whose arq job key no longer exists (lost in a crash between steps) is dropped
whenever the set is read, so a lost hand-off can never lower a person's cap for good; the job
itself comes back from its durable row in the database (see `RedisDispatcher.redispatch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arq.connections import ArqRedis
from arq.constants import job_key_prefix

from service.queue.config import QueueConfig

_PRUNE = """
local function prune(set_key, job_prefix)
  for _, id in ipairs(redis.call('SMEMBERS', set_key)) do
    if redis.call('EXISTS', job_prefix .. id) == 0 then redis.call('SREM', set_key, id) end
  end
  return redis.call('SCARD', set_key)
end
"""

# KEYS: inflight set, held list, held payload hash, held users set, held total
# ARGV: job id, payload, cap, user, arq job key prefix
_ADMIT = (
    _PRUNE
    + """
local n = prune(KEYS[1], ARGV[5])
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 or redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1
then return -1 end
if n < tonumber(ARGV[3]) and redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('SADD', KEYS[1], ARGV[1])
  return 1
end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[4])
redis.call('INCR', KEYS[5])
return 0
"""
)

# KEYS: as _ADMIT. ARGV: finished job id ('' for none), cap, user, arq job key prefix
# Returns {id, payload} of the job to enqueue now, or {} when none may go yet.
_PROMOTE = (
    _PRUNE
    + """
if ARGV[1] ~= '' then redis.call('SREM', KEYS[1], ARGV[1]) end
local n = prune(KEYS[1], ARGV[4])
if n >= tonumber(ARGV[2]) then return {} end
local id = redis.call('LPOP', KEYS[2])
if not id then redis.call('SREM', KEYS[4], ARGV[3]) return {} end
if redis.call('LLEN', KEYS[2]) == 0 then redis.call('SREM', KEYS[4], ARGV[3]) end
local payload = redis.call('HGET', KEYS[3], id)
redis.call('HDEL', KEYS[3], id)
redis.call('DECR', KEYS[5])
if not payload then return {} end
redis.call('SADD', KEYS[1], id)
return {id, payload}
"""
)


@dataclass(frozen=True)
class Promoted:
    job_id: str
    payload: bytes


class FairGate:
    def __init__(self, redis: ArqRedis, config: QueueConfig) -> None:
        self.redis, self.config = redis, config
        self._admit = redis.register_script(_ADMIT)
        self._promote = redis.register_script(_PROMOTE)

    def _keys(self, user: str) -> list[str]:
        c = self.config
        return [
            c.key("inflight", user),
            c.key("held", user),
            c.key("held-payload", user),
            c.key("held-users"),
            c.key("held-total"),
        ]

    async def admit(self, user: str, job_id: str, payload: bytes, cap: int) -> bool | None:
        """True: enqueue it now. False: held in the person's list. None: already known."""
        args: list[Any] = [job_id, payload, max(1, cap), user, job_key_prefix]
        result = int(await self._admit(keys=self._keys(user), args=args))
        return None if result < 0 else bool(result)

    async def promote(self, user: str, cap: int, finished: str = "") -> Promoted | None:
        """After `finished` left the queue: the person's next held job, if one may go now."""
        args: list[Any] = [finished, max(1, cap), user, job_key_prefix]
        found = await self._promote(keys=self._keys(user), args=args)
        if not found:
            return None
        job_id, payload = found
        return Promoted(job_id.decode() if isinstance(job_id, bytes) else job_id, payload)

    async def held_users(self) -> list[str]:
        members: set[bytes] = await self.redis.smembers(self.config.key("held-users"))  # type: ignore[misc]
        return [u.decode() for u in members]

    async def held_total(self) -> int:
        return max(0, int(await self.redis.get(self.config.key("held-total")) or 0))

    async def held_index(self, user: str, job_id: str) -> int | None:
        index = await self.redis.lpos(self.config.key("held", user), job_id)  # type: ignore[misc]
        return None if index is None else int(index)
