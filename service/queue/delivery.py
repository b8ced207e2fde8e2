"""Exactly one reply per request although a job may run twice (at-least-once queue).

A run that is about to deliver takes a lease on `delivering:<request id>`; once the platform
has the reply it writes `delivered:<request id>` (kept a day). A second run of the same job
finds `delivered` and skips delivery; one that finds a live lease waits for its outcome; one
that finds an expired lease (the first run was killed before the platform answered) delivers.
The only window left is a run killed after the platform accepted the reply and before the
mark was written (one Redis round trip): Telegram and Discord take no idempotency key, so no
design can close it; it is documented in docs/ARCHITECTURE.md.

Redis being away for a moment (a restart, a failover) is waited out for `outage_s`: the reply
is ready by then, and a run that failed on the ledger would answer nobody (its result thrown
away, the person told nothing, since telling them goes through the ledger too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq.connections import ArqRedis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service.queue.config import QueueConfig

log = logging.getLogger("animebot.queue")

DELIVERED_TTL_S = 24 * 3600
OUTAGE_S = 10.0  # how long the ledger waits for Redis to answer again
RETRY_S = 0.2
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
Arg = str | int | float

# KEYS: delivered, delivering. ARGV: owner, lease ms. 2 = done, 1 = yours, 0 = someone's.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 2 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[2]); return 1
end
return 0
"""

# KEYS: delivered, delivering. ARGV: owner, ttl s, '1' = delivered / '0' = give the lease back
_SETTLE = """
if ARGV[3] == '1' then redis.call('SET', KEYS[1], '1', 'EX', ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""


class DeliveryBusy(Exception):
    """Another run kept the delivery lease for too long: retry the job later."""


class DeliveryLedger:
    def __init__(
        self,
        redis: ArqRedis,
        config: QueueConfig,
        *,
        lease_s: float = 30.0,
        outage_s: float = OUTAGE_S,
    ) -> None:
        self.redis, self.config, self.lease_s, self.outage_s = redis, config, lease_s, outage_s
        self._claim = redis.register_script(_CLAIM)
        self._settle = redis.register_script(_SETTLE)

    async def _run(self, script: AsyncScript, keys: list[str], args: list[Arg]) -> int:
        """One ledger step, retried while Redis is unreachable, for at most `outage_s`."""
        deadline = time.monotonic() + self.outage_s
        while True:
            try:
                return int(await script(keys=keys, args=args))
            except UNREACHABLE:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(RETRY_S)  # Redis restarting: nothing to await but time

    def _keys(self, request_id: str) -> list[str]:
        return [self.config.key("delivered", request_id), self.config.key("delivering", request_id)]

    async def delivered(self, request_id: str) -> bool:
        return bool(await self.redis.exists(self.config.key("delivered", request_id)))

    @asynccontextmanager
    async def once(self, request_id: str, owner: str) -> AsyncIterator[bool]:
        """Yields True when this run must deliver (and marks it delivered when the block ends
        without an exception), False when the reply was delivered already."""
        keys = self._keys(request_id)
        lease_ms = int(self.lease_s * 1000)
        deadline = time.monotonic() + self.lease_s * 2
        while True:
            state = await self._run(self._claim, keys, [owner, lease_ms])
            if state == 2:
                yield False
                return
            if state == 1:
                break
            if time.monotonic() > deadline:  # never with leases that are not renewed
                raise DeliveryBusy(request_id)
            await asyncio.sleep(0.2)  # another live run is delivering: wait for its outcome
        try:
            yield True
        except BaseException:  # give the lease back at once, if Redis answers (else it expires)
            with contextlib.suppress(*UNREACHABLE):
                await self._settle(keys=keys, args=[owner, DELIVERED_TTL_S, "0"])
            raise
        await self._mark_delivered(request_id, keys, owner)

    async def _mark_delivered(self, request_id: str, keys: list[str], owner: str) -> None:
        """Redis still away after `outage_s` only costs the mark (a later run of the job might
        deliver again), never the answer that is already out."""
        try:
            await self._run(self._settle, keys, [owner, DELIVERED_TTL_S, "1"])
        except UNREACHABLE as exc:
            log.warning("request %s: delivery not marked (Redis unreachable: %s)", request_id, exc)
