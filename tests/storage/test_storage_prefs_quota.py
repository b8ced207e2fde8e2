"""Preferences (partial upserts, persistence) and quota counters (atomic under concurrency)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from storage import Database, UserPrefs


async def test_prefs_default_update_and_clear(db: Database) -> None:
    assert await db.prefs.get("telegram", "u") == UserPrefs()
    got = await db.prefs.update("telegram", "u", style="hayao", faces=False)
    assert got == UserPrefs(style="hayao", faces=False)
    got = await db.prefs.update("telegram", "u", language="ja", side_by_side=True)
    assert got == UserPrefs(style="hayao", faces=False, language="ja", side_by_side=True)
    got = await db.prefs.update("telegram", "u", style=None)  # None clears a field
    assert got == UserPrefs(faces=False, language="ja", side_by_side=True)
    assert await db.prefs.get("discord", "u") == UserPrefs()  # keyed by platform too


async def test_prefs_persist_across_reopen(db_path: Path) -> None:
    async with await Database.open(db_path) as db:
        await db.prefs.update("web", "u", style="shinkai", faces=True)
    async with await Database.open(db_path) as db:
        assert await db.prefs.get("web", "u") == UserPrefs(style="shinkai", faces=True)


async def test_quota_increment_is_atomic(db: Database) -> None:
    assert await db.quota.count("u", "2024-05-01") == 0
    results = await asyncio.gather(*(db.quota.increment("u", "2024-05-01") for _ in range(50)))
    assert sorted(results) == list(range(1, 51))  # every caller saw a distinct count
    assert await db.quota.count("u", "2024-05-01") == 50
    assert await db.quota.count("u", "2024-05-02") == 0
    assert await db.quota.increment("u", "2024-05-02") == 1


async def test_quota_across_two_connections(db_path: Path) -> None:
    """Two processes (bot and web) sharing the file: SQLite's locking keeps counts exact."""
    first = await Database.open(db_path)
    second = await Database.open(db_path)
    try:
        await asyncio.gather(
            *(db.quota.increment("u", "d") for db in (first, second) for _ in range(25))
        )
        assert await first.quota.count("u", "d") == 50
        assert await second.quota.count("u", "d") == 50
    finally:
        await first.close()
        await second.close()
