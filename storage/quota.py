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

    async def try_take(self, user_hash: str, day: str, limit: int, amount: int = 1) -> int | None:
        """Take `amount` units (a clip counts as many photos) if they all fit under `limit`:
        the new count, or None when they do not (nothing changes then). Check and increment
        are one statement, so two requests racing for the last units cannot both get them."""
        if limit <= 0 or amount > limit:
            return None
        if amount <= 0:
            return await self.count(user_hash, day)
        async with self._sql.transaction() as tx:
            count = await tx.scalar(
                "INSERT INTO quota (user_hash, day, count) VALUES (:user, :day, :amount) "
                "ON CONFLICT(user_hash, day) DO UPDATE SET count = quota.count + excluded.count "
                "WHERE quota.count + excluded.count <= CAST(:limit AS INTEGER) "
                "RETURNING count",
                {"user": user_hash, "day": day, "amount": int(amount), "limit": int(limit)},
            )
        return None if count is None else int(count)

    async def give_back(self, user_hash: str, day: str, amount: int = 1) -> int:
        """Return `amount` units taken by `try_take` (the request failed or was cancelled
        before costing anything); the new count. Never goes below zero."""
        if amount <= 0:
            return await self.count(user_hash, day)
        async with self._sql.transaction() as tx:
            count = await tx.scalar(
                "UPDATE quota SET count = CASE WHEN count > :amount THEN count - :amount "
                "ELSE 0 END WHERE user_hash = :user AND day = :day AND count > 0 "
                "RETURNING count",
                {"user": user_hash, "day": day, "amount": int(amount)},
            )
        return 0 if count is None else int(count)

    async def count(self, user_hash: str, day: str) -> int:
        """The current count (0 when there is no row)."""
        value = await self._sql.scalar(
            "SELECT count FROM quota WHERE user_hash = ? AND day = ?", (user_hash, day)
        )
        return 0 if value is None else int(value)
