"""Token buckets kept in the database, so a rate limit holds across every process and machine.

The same rule as `service.ratelimit.RateLimiter` (a burst of `burst` requests, refilled at
`per_minute`), but the bucket is a row, and refill, check and take happen in one
`INSERT … ON CONFLICT … DO UPDATE … RETURNING` statement under the row's lock: two front ends
racing for the last token cannot both get it. Times are the database rows' unix milliseconds
from each caller's clock; a caller whose clock is behind never refills a bucket backwards.
"""

from __future__ import annotations

import time

from storage.clock import to_ms
from storage.sql import Sql

STALE_AFTER_S = 86_400.0  # a bucket untouched this long is full again: `purge` drops it


class RateRepo:
    """`try_acquire` / `refund` on `rate_limits(key)`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def try_acquire(
        self, key: str, burst: int, per_minute: float, now: float | None = None
    ) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available.
        `burst <= 0` means no limit. `now` is unix seconds (default: the clock)."""
        if burst <= 0:
            return 0.0
        now_ms = to_ms(time.time() if now is None else now)
        per_ms = max(per_minute, 0.0) / 60_000.0
        d = self._sql.dialect
        refilled = (
            f"{d.least}(CAST(:burst AS DOUBLE PRECISION), rate_limits.tokens + "
            f"{d.greatest}(excluded.updated_at - rate_limits.updated_at, 0) "
            "* CAST(:per_ms AS DOUBLE PRECISION))"
        )
        async with self._sql.transaction() as tx:
            row = await tx.fetchone(
                "INSERT INTO rate_limits (key, tokens, granted, updated_at) "
                "VALUES (:key, CAST(:burst AS DOUBLE PRECISION) - 1, 1, CAST(:now AS BIGINT)) "
                "ON CONFLICT (key) DO UPDATE SET "
                f"tokens = CASE WHEN {refilled} >= 1 THEN {refilled} - 1 ELSE {refilled} END, "
                f"granted = CASE WHEN {refilled} >= 1 THEN 1 ELSE 0 END, "
                f"updated_at = {d.greatest}(rate_limits.updated_at, excluded.updated_at) "
                "RETURNING tokens, granted",
                {"key": key, "burst": float(burst), "per_ms": per_ms, "now": now_ms},
            )
        assert row is not None  # an upsert always returns its row
        if int(row["granted"]):
            return 0.0
        missing = 1.0 - float(row["tokens"])
        return missing / (per_minute / 60.0) if per_minute > 0 else float("inf")

    async def refund(self, key: str, burst: int) -> None:
        """Give one token back (the request cost nothing, e.g. a cache hit)."""
        if burst <= 0:
            return
        least = self._sql.dialect.least
        async with self._sql.transaction() as tx:
            await tx.execute(
                f"UPDATE rate_limits SET tokens = {least}(tokens + 1, "
                "CAST(:burst AS DOUBLE PRECISION)) WHERE key = :key",
                {"key": key, "burst": float(burst)},
            )

    async def delete_stale(self, now: float | None = None) -> int:
        """Drop buckets untouched for a day (full again by any sensible rate)."""
        cutoff = to_ms((time.time() if now is None else now) - STALE_AFTER_S)
        async with self._sql.transaction() as tx:
            return await tx.execute(
                "DELETE FROM rate_limits WHERE updated_at < CAST(? AS BIGINT)", (cutoff,)
            )
