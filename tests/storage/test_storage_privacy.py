"""Pseudonymous ids and the right to be forgotten (on both backends, except the tests of
SQLite's own file bytes)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storage import Database, IdKeyError, UsageRecord
from tests.storage.conftest import Target, has_bytes

RAW_ID = 987_654_321_123


def db_text(path: Path) -> bytes:
    """Database file plus WAL, so uncheckpointed pages are searched too."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_hash_id_stable_and_scoped(target: Target, tmp_path: Path) -> None:
    async with await target.open() as db:
        h = db.hash_id("telegram", RAW_ID)
        assert h == db.hash_id("telegram", str(RAW_ID))
        assert len(h) == 64 and int(h, 16) >= 0
        assert h != db.hash_id("discord", RAW_ID)  # same number, other platform, other person
        assert h != db.hash_id("telegram", RAW_ID + 1)
    async with await target.open() as db:
        assert db.hash_id("telegram", RAW_ID) == h  # stable across reopen
    async with await Database.open(tmp_path / "other" / "animebot.db") as other:
        assert other.hash_id("telegram", RAW_ID) != h  # a different install


async def test_raw_ids_never_reach_the_file(sqlite_db: Database, db_path: Path) -> None:
    db = sqlite_db
    user = db.hash_id("telegram", RAW_ID)
    await db.usage.record(UsageRecord(platform="telegram", status="ok", user_hash=user))
    await db.prefs.update("telegram", user, style="hayao")
    await db.quota.increment(user, "2024-01-01")
    assert str(RAW_ID).encode() not in db_text(db_path)
    assert user.encode() in db_text(db_path)


async def seed_user(db: Database, user: str, n: int) -> list[str]:
    await db.usage.record(UsageRecord(platform="telegram", status="ok", user_hash=user))
    await db.usage.record(UsageRecord(platform="telegram", status="error", user_hash=user))
    await db.prefs.update("telegram", user, style="paprika", language="de")
    await db.quota.increment(user, "2024-01-01")
    await db.quota.increment(user, "2024-01-02")
    paths = []
    for i, kind in enumerate(("input", "result")):
        key = f"{n:02x}{i:02x}" + "a" * 60
        await db.cache.put(key, b"img", kind=kind, mime="image/png", owner_hash=user)
        await db.cache.set_handle(key, "telegram", f"file-{n}-{i}")
        paths.append(key)
    return paths


async def any_bytes(db: Database, keys: list[str]) -> list[bool]:
    return [await has_bytes(db, k) for k in keys]


async def test_forget_removes_one_user_only(db: Database) -> None:
    alice = db.hash_id("telegram", 1)
    bob = db.hash_id("telegram", 2)
    alice_files = await seed_user(db, alice, 1)
    bob_files = await seed_user(db, bob, 2)

    report = await db.forget("telegram", alice)
    assert report == {"usage": 2, "prefs": 1, "quota": 2, "cache": 2, "files": 2}
    assert not any(await any_bytes(db, alice_files))
    assert all(await any_bytes(db, bob_files))

    for table, column in (
        ("usage", "user_hash"),
        ("prefs", "user_hash"),
        ("quota", "user_hash"),
        ("cache", "owner_hash"),
    ):
        mine = await db._sql.scalar(f"SELECT count(*) FROM {table} WHERE {column} = ?", (alice,))
        theirs = await db._sql.scalar(f"SELECT count(*) FROM {table} WHERE {column} = ?", (bob,))
        assert mine == 0, table
        assert theirs > 0, table
    assert await db._sql.scalar("SELECT count(*) FROM cache_handles") == 2
    assert (await db.prefs.get("telegram", alice)).style is None
    assert (await db.prefs.get("telegram", bob)).style == "paprika"
    assert await db.quota.count(bob, "2024-01-02") == 1
    # Forgetting twice is harmless.
    assert await db.forget("telegram", alice) == {
        "usage": 0,
        "prefs": 0,
        "quota": 0,
        "cache": 0,
        "files": 0,
    }


async def test_backup_is_a_working_copy_without_the_key(
    sqlite_db: Database, tmp_path: Path
) -> None:
    db = sqlite_db
    user = db.hash_id("web", "someone")
    await db.prefs.update("web", user, style="hayao")
    target = tmp_path / "backup" / "copy.db"
    target.parent.mkdir()
    await db.backup(target)
    with pytest.raises(IdKeyError):  # the key stays out of the backup: it is a separate file
        await Database.open(target)
    assert db.key_file is not None
    async with await Database.open(target, key_file=db.key_file) as copy:
        assert copy.hash_id("web", "someone") == user
        assert (await copy.prefs.get("web", user)).style == "hayao"
        assert await copy.integrity_check() == "ok"
    with pytest.raises(sqlite3.OperationalError):
        await db.backup(target)  # never overwrites an existing file


async def test_forgotten_rows_leave_no_bytes_behind(sqlite_db: Database, db_path: Path) -> None:
    """Deleted rows are zeroed and checkpointed out of the WAL: a copy of the files made after
    /forget holds nothing of the person (the same holds for the moved id key and spent jobs)."""
    db = sqlite_db
    user = db.hash_id("telegram", RAW_ID)
    marker = "forgotten-marker-" + "q" * 40
    await db.prefs.update("telegram", user, style=marker)
    await db.usage.record(
        UsageRecord(platform="telegram", status="ok", user_hash=user, style=marker)
    )
    await db.prefs.update("telegram", db.hash_id("telegram", 2), style="hayao")  # pages stay used
    assert marker.encode() in db_text(db_path)
    await db.forget("telegram", user)
    assert marker.encode() not in db_text(db_path)
    assert user.encode() not in db_text(db_path)
