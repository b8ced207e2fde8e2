"""The per-person limits every request passes, photos and clips alike: one copy of the rules.

A request first takes a rate-limit token (`enter`). A cache hit, or a result another request
computed, costs nothing: the token goes back (`free`). A request that computes takes its daily
quota before it starts (`take`: one atomic statement, so requests racing on several workers
for the last units cannot both get them; a clip takes its frames x pixels in photos at once)
and gives it back when no result comes of it (`give_back`). Administrators pass freely.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from service.errors import QuotaExceeded, RateLimited
from service.metrics import ServiceMetrics
from service.settings import Settings
from storage import Database

log = logging.getLogger("animebot.service")


def today_utc(now: float | None = None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))


def seconds_to_utc_midnight(now: float | None = None) -> float:
    t = time.time() if now is None else now
    return 86400.0 - (t % 86400.0)


class Admission:
    """Rate limit, daily quota and the free pass of a cache hit, kept in the database (they
    hold across every process sharing it)."""

    def __init__(self, db: Database, settings: Settings, metrics: ServiceMetrics) -> None:
        self.db, self.settings, self.metrics = db, settings, metrics

    async def enter(self, user_hash: str, is_admin: bool) -> None:
        """Take a rate-limit token; RateLimited (with the wait) when none is left."""
        if is_admin:
            return
        wait = await self.db.rates.try_acquire(
            user_hash, self.settings.rate_burst, self.settings.rate_per_minute
        )
        if wait > 0:
            raise RateLimited("too many requests", retry_after_s=wait)

    async def free(self, user_hash: str, is_admin: bool) -> None:
        """The request cost nothing (a cache hit, a computation it joined): its token back."""
        if not is_admin:
            await self.db.rates.refund(user_hash, self.settings.rate_burst)

    async def cache_hit(
        self, platform: str, user_hash: str, is_admin: bool, row: dict[str, Any], size: int
    ) -> None:
        """Answered from the cache: free, counted, and its usage row says so."""
        await self.free(user_hash, is_admin)
        self.metrics.cache_hits.labels(platform).inc()
        row.update(cache_hit=True, output_bytes=size, queue_wait_ms=0.0, compute_ms=0.0)

    async def take(self, user_hash: str, is_admin: bool, amount: int = 1) -> str | None:
        """Take `amount` units of the daily quota before computing. The UTC day taken on,
        None when no quota applies; QuotaExceeded when they do not fit."""
        quota = self.settings.daily_quota
        if is_admin or quota <= 0:
            return None
        day = today_utc()
        if await self.db.quota.try_take(user_hash, day, quota, amount) is None:
            raise QuotaExceeded("daily quota used", retry_after_s=seconds_to_utc_midnight())
        return day

    async def give_back(self, user_hash: str, day: str | None, amount: int = 1) -> None:
        """Return what `take` took (no result came of it). Never raises: the request's own
        outcome matters more than the counter."""
        if day is None:
            return
        try:
            await self.db.quota.give_back(user_hash, day, amount)
        except Exception:
            log.exception("could not give back %d quota unit(s)", amount)
