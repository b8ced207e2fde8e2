"""Content cache: bytes stored (files on SQLite, bytea on PostgreSQL), hit counting, LRU under a
byte budget, TTLs, handles. Every test runs on both backends unless it is about files."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from storage import Database
from tests.storage.conftest import Target, has_bytes


def key(n: int) -> str:
    return f"{n:02x}" + "0" * 62  # looks like a sha256 hex digest


def exists(path: Path) -> bool:
    return path.exists()


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def age(path: Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


async def test_put_writes_a_file_on_sqlite(sqlite_db: Database) -> None:
    db = sqlite_db
    k = key(0xAB)
    put = await db.cache.put(k, b"png-bytes", kind="result", mime="image/png", owner_hash="u1")
    assert db.cache_dir is not None and put.path == db.cache_dir / "ab" / k
    assert put.path.read_bytes() == b"png-bytes"
    assert [p.name for p in put.path.parent.iterdir()] == [k]  # no temp file left behind


async def test_put_get_counts_hits(db: Database) -> None:
    k = key(0xAB)
    put = await db.cache.put(
        k, b"png-bytes", kind="result", mime="image/png", owner_hash="u1", meta={"style": "hayao"}
    )
    assert put.hits == 0 and put.size == 9
    assert await has_bytes(db, k)

    first = await db.cache.get(k)
    second = await db.cache.get(k)
    assert first is not None and second is not None
    assert (first.data, first.mime, first.meta, first.kind) == (
        b"png-bytes",
        "image/png",
        {"style": "hayao"},
        "result",
    )
    assert (first.hits, second.hits) == (1, 2)
    assert second.last_used_at > first.last_used_at > put.last_used_at
    assert await db.cache.get(key(1)) is None
    assert await db.cache.total_bytes() == 9


async def test_put_replaces_and_rejects_unsafe_keys(db: Database) -> None:
    k = key(1)
    await db.cache.put(k, b"old", kind="input", mime="image/jpeg", owner_hash=None)
    await db.cache.put(k, b"newer", kind="result", mime="image/webp", owner_hash="u")
    entry = await db.cache.get(k)
    assert entry is not None and (entry.data, entry.kind, entry.size) == (b"newer", "result", 5)
    assert await db.cache.total_bytes() == 5
    for bad in ("../etc/passwd", "a/b", "", ".hidden", "x"):
        with pytest.raises(ValueError, match="cache key"):
            await db.cache.put(bad, b"x", kind="result", mime="x", owner_hash=None)
    with pytest.raises(ValueError, match="kind"):
        await db.cache.put(key(2), b"x", kind="other", mime="x", owner_hash=None)  # type: ignore[arg-type]


async def test_lru_eviction_follows_touch_order(target: Target) -> None:
    async with await target.open(cache_budget_bytes=300) as db:
        for i in range(3):
            await db.cache.put(key(i), bytes([i]) * 100, kind="result", mime="x", owner_hash=None)
        assert await db.cache.get(key(0)) is not None  # 0 is now the most recent; 1 the oldest
        # A fourth entry overflows the 300-byte budget: exactly the LRU entry (1) goes.
        await db.cache.put(key(3), b"d" * 100, kind="result", mime="x", owner_hash=None)
        assert not await has_bytes(db, key(1))
        assert await db.cache.get(key(1)) is None
        assert await has_bytes(db, key(0)) and await has_bytes(db, key(2))
        assert await db.cache.total_bytes() == 300
        # Explicit eviction to 150 bytes drops the two least recently used (2, then 0).
        assert await db.cache.evict_to(150) == 2
        assert not await has_bytes(db, key(2)) and not await has_bytes(db, key(0))
        assert await db.cache.get(key(3)) is not None
        assert await db.cache.total_bytes() == 100


async def test_new_entry_survives_even_when_larger_than_budget(target: Target) -> None:
    async with await target.open(cache_budget_bytes=50) as db:
        await db.cache.put(key(1), b"a" * 40, kind="result", mime="x", owner_hash=None)
        await db.cache.put(key(2), b"b" * 80, kind="result", mime="x", owner_hash=None)
        assert await db.cache.get(key(1)) is None
        assert await has_bytes(db, key(2)) and await db.cache.get(key(2)) is not None


async def test_concurrent_puts_from_two_processes_stay_within_the_budget(
    target: Target,
) -> None:
    """Two handles (two processes' worth of connections) filling one cache at once: the total
    never ends above the budget, and the bytes of every entry still listed are there."""
    budget = 1000
    first = await target.open(cache_budget_bytes=budget)
    second = await target.open(cache_budget_bytes=budget)
    try:

        async def fill(db: Database, offset: int) -> None:
            for i in range(20):
                data = bytes([i]) * 90
                await db.cache.put(key(offset + i), data, kind="result", mime="x", owner_hash=None)

        await asyncio.gather(fill(first, 0), fill(second, 100))
        assert await first.cache.total_bytes() <= budget
        keys = [str(r["key"]) for r in await first._sql.fetchall("SELECT key FROM cache")]
        assert len(keys) == budget // 90
        assert all([await has_bytes(first, k) for k in keys])
        if first.cache_dir is None:
            assert await first._sql.scalar("SELECT count(*) FROM cache_blobs") == len(keys)
    finally:
        await first.close()
        await second.close()


async def test_ttl_expiry(db: Database) -> None:
    now = time.time()
    await db.cache.put(key(1), b"r", kind="result", mime="x", owner_hash=None)
    await db.cache.put(key(2), b"i", kind="input", mime="x", owner_hash=None)
    # Within both TTLs nothing goes.
    assert await db.cache.expire(now + 3600, result_ttl_s=86_400, input_ttl_s=7200) == 0
    # After the input TTL only the input goes, even though it was used a moment ago.
    assert await db.cache.get(key(2)) is not None
    assert await db.cache.expire(now + 3 * 3600, result_ttl_s=86_400, input_ttl_s=7200) == 1
    assert not await has_bytes(db, key(2)) and await has_bytes(db, key(1))
    # Results age from their last use (defaults: 30 days).
    assert await db.cache.expire(now + 29 * 86_400) == 0
    assert await db.cache.expire(now + 31 * 86_400) == 1
    assert not await has_bytes(db, key(1))
    assert await db.cache.total_bytes() == 0


async def test_handles(db: Database) -> None:
    k = key(5)
    assert not await db.cache.set_handle(k, "telegram", "nope")  # not cached: not stored
    await db.cache.put(k, b"x", kind="result", mime="x", owner_hash=None)
    assert await db.cache.set_handle(k, "telegram", "file-1")
    assert await db.cache.set_handle(k, "telegram", "file-2")  # replaced
    assert await db.cache.set_handle(k, "discord", "https://cdn/x")
    assert await db.cache.get_handle(k, "telegram") == "file-2"
    assert await db.cache.get_handle(k, "web") is None
    entry = await db.cache.get(k)
    assert entry is not None and entry.hits == 2  # the handle hit counted as a use
    # New bytes under the key invalidate uploads of the old bytes.
    await db.cache.put(k, b"y", kind="result", mime="x", owner_hash=None)
    assert await db.cache.get_handle(k, "discord") is None
    # Eviction takes the handles with the entry (ON DELETE CASCADE).
    await db.cache.set_handle(k, "telegram", "file-3")
    await db.cache.evict_to(0)
    assert await db.cache.get_handle(k, "telegram") is None
    assert await db._sql.scalar("SELECT count(*) FROM cache_handles") == 0


async def test_missing_or_truncated_file_is_a_miss(sqlite_db: Database) -> None:
    db = sqlite_db
    gone = await db.cache.put(key(1), b"abc", kind="result", mime="x", owner_hash=None)
    short = await db.cache.put(key(2), b"abcdef", kind="result", mime="x", owner_hash=None)
    gone.path.unlink()
    write(short.path, b"ab")
    assert await db.cache.get(key(1)) is None
    assert await db.cache.get(key(2)) is None
    assert await db._sql.scalar("SELECT count(*) FROM cache") == 0
    assert await db.cache.total_bytes() == 0


async def test_missing_or_short_bytes_are_a_miss_on_postgres(pg_db: Database) -> None:
    db = pg_db
    await db.cache.put(key(1), b"abc", kind="result", mime="x", owner_hash=None)
    await db.cache.put(key(2), b"abcdef", kind="result", mime="x", owner_hash=None)
    assert db.cache_dir is None and (await db.cache.get(key(1))) is not None
    await db._sql.scalar("DELETE FROM cache_blobs WHERE key = ? RETURNING 1", (key(1),))
    await db._sql.scalar(
        "UPDATE cache_blobs SET data = ? WHERE key = ? RETURNING 1", (b"ab", key(2))
    )
    assert await db.cache.get(key(1)) is None
    assert await db.cache.get(key(2)) is None
    assert await db._sql.scalar("SELECT count(*) FROM cache") == 0


async def test_purge_applies_ttl_budget_and_sweeps_orphans(sqlite_db: Database) -> None:
    db = sqlite_db
    now = time.time()
    kept = await db.cache.put(key(1), b"k" * 10, kind="result", mime="x", owner_hash=None)
    await db.cache.put(key(2), b"i", kind="input", mime="x", owner_hash=None)
    await db.cache.put(key(3), b"e" * 10, kind="result", mime="x", owner_hash=None)
    await db.cache.get(key(1))  # key 3 is now the least recently used result
    old_orphan = db.cache_dir / "ff" / ("f" * 64)
    fresh_orphan = db.cache_dir / "ee" / ("e" * 64)  # maybe a put between file and row
    write(old_orphan, b"crash leftover")
    write(fresh_orphan, b"in flight")
    age(old_orphan, 2 * 3600)
    await db.quota.increment("u", "2000-01-01")
    await db.quota.increment("u", time.strftime("%Y-%m-%d", time.gmtime(now)))

    report = await db.purge(now + 25 * 3600, budget_bytes=10)
    assert report == {"expired": 1, "evicted": 1, "quota": 1, "rate_limits": 0, "orphans": 1}
    assert exists(kept.path) and not exists(old_orphan) and exists(fresh_orphan)
    assert await db.cache.total_bytes() == 10


async def test_purge_applies_ttl_budget_and_quota_days(db: Database) -> None:
    now = time.time()
    await db.cache.put(key(1), b"k" * 10, kind="result", mime="x", owner_hash=None)
    await db.cache.put(key(2), b"i", kind="input", mime="x", owner_hash=None)
    await db.cache.put(key(3), b"e" * 10, kind="result", mime="x", owner_hash=None)
    await db.cache.get(key(1))
    await db.quota.increment("u", "2000-01-01")
    await db.quota.increment("u", time.strftime("%Y-%m-%d", time.gmtime(now)))
    await db.rates.try_acquire("old", 5, 1.0, now=now - 3 * 86_400)
    await db.rates.try_acquire("new", 5, 1.0, now=now + 25 * 3600)
    report = await db.purge(now + 25 * 3600, budget_bytes=10)
    assert report == {"expired": 1, "evicted": 1, "quota": 1, "rate_limits": 1, "orphans": 0}
    assert await has_bytes(db, key(1)) and not await has_bytes(db, key(3))
    assert await db.cache.total_bytes() == 10
