"""A lease in Redis that one process holds at a time (the Telegram long poller of a token).

The holder renews it every `ttl_s / 3`; a holder that dies loses it after `ttl_s`, so a
crashed poller is replaced quickly, while a second live one is refused with a clear message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from redis.asyncio import Redis

log = logging.getLogger("animebot.queue")

# KEYS: the lock. ARGV: owner, ttl ms. 1 = renewed, 0 = someone else holds it.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LockHeld(Exception):
    """Another live process holds the lock."""


class SingletonLock:
    def __init__(self, url: str, key: str, *, ttl_s: float = 15.0) -> None:
        self.key, self.ttl_s = key, ttl_s
        self.owner = uuid.uuid4().hex
        self.redis: Redis = Redis.from_url(url)
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)
        self._task: asyncio.Task[None] | None = None
        self.lost = asyncio.Event()

    async def acquire(self) -> None:
        """Take the lock or raise LockHeld; renewed in the background until `release`."""
        ttl_ms = int(self.ttl_s * 1000)
        if not await self.redis.set(self.key, self.owner, nx=True, px=ttl_ms):
            await self.redis.aclose()
            raise LockHeld(self.key)
        self._task = asyncio.create_task(self._keep(ttl_ms), name="animebot-lock")

    async def _keep(self, ttl_ms: int) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                if not await self._renew(keys=[self.key], args=[self.owner, ttl_ms]):
                    log.error("lost the lock %s to another process", self.key)
                    self.lost.set()
                    return
            except Exception:  # Redis away for a moment: try again; the lease covers it
                log.warning("could not renew the lock %s", self.key, exc_info=True)

    async def release(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._release(keys=[self.key], args=[self.owner])
        await self.redis.aclose()
