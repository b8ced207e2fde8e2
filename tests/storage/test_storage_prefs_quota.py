"""Preferences (partial upserts, persistence) and quota counters (atomic under concurrency),
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from storage import Database, UserPrefs
from tests.storage.conftest import Target


async def test_prefs_default_update_and_clear(db: Database) -> None:
    assert await db.prefs.get("telegram", "u") == UserPrefs()
    got = await db.prefs.update("telegram", "u", style="hayao", faces=False)
    assert got == UserPrefs(style="hayao", faces=False)
    got = await db.prefs.update("telegram", "u", language="ja", side_by_side=True)
    assert got == UserPrefs(style="hayao", faces=False, language="ja", side_by_side=True)
    got = await db.prefs.update("telegram", "u", style=None)  # None clears a field
    assert got == UserPrefs(faces=False, language="ja", side_by_side=True)
    assert await db.prefs.get("discord", "u") == UserPrefs()  # keyed by platform too


async def test_prefs_persist_across_reopen(target: Target) -> None:
    async with await target.open() as db:
        await db.prefs.update("web", "u", style="shinkai", faces=True)
    async with await target.open() as db:
        assert await db.prefs.get("web", "u") == UserPrefs(style="shinkai", faces=True)


async def test_quota_increment_is_atomic(db: Database) -> None:
    assert await db.quota.count("u", "2024-05-01") == 0
    results = await asyncio.gather(*(db.quota.increment("u", "2024-05-01") for _ in range(50)))
    assert sorted(results) == list(range(1, 51))  # every caller saw a distinct count
    assert await db.quota.count("u", "2024-05-01") == 50
    assert await db.quota.count("u", "2024-05-02") == 0
    assert await db.quota.increment("u", "2024-05-02") == 1


async def test_quota_across_two_connections(target: Target) -> None:
    """Two processes (bot and web) sharing the database: the counts stay exact."""
    first = await target.open()
    second = await target.open()
    try:
        await asyncio.gather(
            *(db.quota.increment("u", "d") for db in (first, second) for _ in range(25))
        )
        assert await first.quota.count("u", "d") == 50
        assert await second.quota.count("u", "d") == 50
    finally:
        await first.close()
        await second.close()


async def test_try_take_stops_at_the_limit_and_give_back_returns_one(db: Database) -> None:
    assert await db.quota.try_take("u", "d", 0) is None  # no units at all
    assert [await db.quota.try_take("u", "d", 3) for _ in range(4)] == [1, 2, 3, None]
    assert await db.quota.count("u", "d") == 3  # the refused take changed nothing
    assert await db.quota.give_back("u", "d") == 2
    assert await db.quota.try_take("u", "d", 3) == 3
    assert await db.quota.give_back("nobody", "d") == 0  # never below zero, no row made
    assert await db.quota.count("nobody", "d") == 0


async def test_rate_buckets_refill_and_refund(db: Database) -> None:
    t = 1_000_000.0
    assert await db.rates.try_acquire("k", 0, 1.0, now=t) == 0.0  # burst 0: unlimited
    assert [await db.rates.try_acquire("k", 2, 6.0, now=t) for _ in range(2)] == [0.0, 0.0]
    wait = await db.rates.try_acquire("k", 2, 6.0, now=t)
    assert abs(wait - 10.0) < 1e-6  # 6 per minute: one token every 10 s
    assert abs(await db.rates.try_acquire("k", 2, 6.0, now=t + 4) - 6.0) < 1e-6
    assert await db.rates.try_acquire("k", 2, 6.0, now=t + 10) == 0.0  # refilled
    assert await db.rates.try_acquire("k", 2, 6.0, now=t + 10) > 0
    await db.rates.refund("k", 2)  # a cache hit gives its token back
    assert await db.rates.try_acquire("k", 2, 6.0, now=t + 10) == 0.0
    # A caller whose clock is behind does not refill the bucket backwards.
    assert await db.rates.try_acquire("k", 2, 6.0, now=t - 100) > 0
    assert await db.rates.try_acquire("other", 2, 6.0, now=t) == 0.0  # buckets are per key


async def test_try_take_of_an_amount_takes_all_or_nothing(db: Database) -> None:
    assert await db.quota.try_take("u", "d", 10, 4) == 4
    assert await db.quota.try_take("u", "d", 10, 4) == 8
    assert await db.quota.try_take("u", "d", 10, 4) is None  # 12 > 10: nothing taken
    assert await db.quota.count("u", "d") == 8
    assert await db.quota.try_take("u", "d", 10, 2) == 10
    assert await db.quota.try_take("u2", "d", 3, 4) is None  # more than the whole quota
    assert await db.quota.count("u2", "d") == 0
    assert await db.quota.give_back("u", "d", 4) == 6
    assert await db.quota.give_back("u", "d", 40) == 0  # never below zero
