"""Per-user daily counters; the service decides what a "day" is and what the limit is."""

from __future__ import annotations

from storage.connection import SqlConnection


class QuotaRepo:
    """Atomic increments of `quota(user_hash, day)`."""

    def __init__(self, sql: SqlConnection) -> None:
        self._sql = sql

    async def increment(self, user_hash: str, day: str, amount: int = 1) -> int:
        """Add `amount` (a clip counts as many photos) and return the new count, in a single
        UPSERT … RETURNING statement."""
        async with self._sql.transaction() as tx:
            count = await tx.scalar(
                "INSERT INTO quota (user_hash, day, count) VALUES (?, ?, ?) "
                "ON CONFLICT(user_hash, day) DO UPDATE SET count = count + excluded.count "
                "RETURNING count",
                (user_hash, day, amount),
            )
        return int(count)

    async def count(self, user_hash: str, day: str) -> int:
        """The current count (0 when there is no row)."""
        value = await self._sql.scalar(
            "SELECT count FROM quota WHERE user_hash = ? AND day = ?", (user_hash, day)
        )
        return 0 if value is None else int(value)
