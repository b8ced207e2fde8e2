"""Per-user daily counters; the service decides what a "day" is and what the limit is.

Every change is one statement that reads and writes the row under its lock, so counts stay
exact however many processes (front ends, workers on other machines) share the database:
`try_take` never grants more than the limit, even to requests racing for the last unit.
"""

from __future__ import annotations

from storage.sql import Sql


class QuotaRepo:
    """Atomic increments of `quota(user_hash, day)`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def increment(self, user_hash: str, day: str, amount: int = 1) -> int:
        """Add `amount` (a clip counts as many photos) and return the new count, in a single
        UPSERT … RETURNING statement."""
        async with self._sql.transaction() as tx:
            count = await tx.scalar(
                "INSERT INTO quota (user_hash, day, count) VALUES (?, ?, ?) "
                "ON CONFLICT(user_hash, day) DO UPDATE SET count = quota.count + excluded.count "
                "RETURNING count",
                (user_hash, day, amount),
            )
        return int(count)

    async def try_take(self, user_hash: str, day: str, limit: int) -> int | None:
        """Take one unit if fewer than `limit` are taken: the new count, or None when the
        limit is reached (nothing changes then). Check and increment are one statement, so
        two requests racing for the last unit cannot both get it."""
        if limit <= 0:
            return None
        async with self._sql.transaction() as tx:
            count = await tx.scalar(
                "INSERT INTO quota (user_hash, day, count) VALUES (:user, :day, 1) "
                "ON CONFLICT(user_hash, day) DO UPDATE SET count = quota.count + 1 "
                "WHERE quota.count < CAST(:limit AS INTEGER) "
                "RETURNING count",
                {"user": user_hash, "day": day, "limit": int(limit)},
            )
        return None if count is None else int(count)

    async def give_back(self, user_hash: str, day: str) -> int:
        """Return one unit taken by `try_take` (the request failed before costing anything);
        the new count. Never goes below zero."""
        async with self._sql.transaction() as tx:
            count = await tx.scalar(
                "UPDATE quota SET count = count - 1 "
                "WHERE user_hash = ? AND day = ? AND count > 0 RETURNING count",
                (user_hash, day),
            )
        return 0 if count is None else int(count)

    async def count(self, user_hash: str, day: str) -> int:
        """The current count (0 when there is no row)."""
        value = await self._sql.scalar(
            "SELECT count FROM quota WHERE user_hash = ? AND day = ?", (user_hash, day)
        )
        return 0 if value is None else int(value)
