"""Schema versions: fresh file, upgrade from v1 with data, idempotent reopen, newer refused."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from storage import LATEST_VERSION, Database, SchemaTooNewError
from storage.connection import SqlConnection
from storage.migrations import MIGRATIONS, Migration, apply_migrations

TABLES = {"meta", "usage", "cache", "cache_handles", "prefs", "quota", "jobs", "rate_limits"}


def schema(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name"
        ).fetchall()
    conn.close()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def file_bytes(path: Path) -> bytes:
    return path.read_bytes()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_at_least_two_versions() -> None:
    assert LATEST_VERSION >= 2
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))


async def test_fresh_file_gets_latest_strict_schema(sqlite_db: Database, db_path: Path) -> None:
    db = sqlite_db
    assert await db.schema_version() == LATEST_VERSION
    conn = sqlite3.connect(db_path)
    try:
        tables = {
            str(r[1]): int(r[5])
            for r in conn.execute("PRAGMA table_list")
            if r[0] == "main" and not str(r[1]).startswith("sqlite_")
        }
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    assert set(tables) == TABLES
    assert all(tables.values()), f"every table must be STRICT: {tables}"


async def test_connection_pragmas(sqlite_db: Database) -> None:
    db = sqlite_db
    sql = db._sql
    assert await sql.scalar("PRAGMA foreign_keys") == 1
    assert await sql.scalar("PRAGMA synchronous") == 1  # NORMAL
    assert await sql.scalar("PRAGMA busy_timeout") >= 1000


async def test_upgrade_from_v1_keeps_data(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    sql = await SqlConnection.open(db_path)
    try:
        assert await apply_migrations(sql, target=1) == [1]
        async with sql.transaction() as tx:
            await tx.execute(
                "INSERT INTO meta (key, value) VALUES ('install_secret', ?)", ("ab" * 32,)
            )
            await tx.execute(
                "INSERT INTO usage (created_at, platform, user_hash, style, status, compute_ms)"
                " VALUES (1700000000000, 'telegram', 'u1', 'hayao', 'ok', 120)"
            )
            await tx.execute(
                "INSERT INTO cache (key, kind, path, size, mime, owner_hash, created_at,"
                " last_used_at, hits) VALUES ('abc123', 'result', 'ab/abc123', 3,"
                " 'image/png', 'u1', 1, 1, 4)"
            )
            await tx.execute(
                "INSERT INTO prefs (platform, user_hash, style, updated_at)"
                " VALUES ('telegram', 'u1', 'paprika', 1)"
            )
            await tx.execute("INSERT INTO quota (user_hash, day, count) VALUES ('u1', 'd', 7)")
    finally:
        await sql.close()
    assert user_version(db_path) == 1
    (db_path.parent / "animebot-cache" / "ab").mkdir(parents=True)
    (db_path.parent / "animebot-cache" / "ab" / "abc123").write_bytes(b"xyz")

    async with await Database.open(db_path) as db:
        assert await db.schema_version() == LATEST_VERSION
        row = await db._sql.fetchone("SELECT style, compute_ms, request_id FROM usage")
        assert row is not None and tuple(row) == ("hayao", 120, None)
        assert (await db.prefs.get("telegram", "u1")).style == "paprika"
        assert await db.quota.count("u1", "d") == 7
        entry = await db.cache.get("abc123")
        assert entry is not None and entry.data == b"xyz" and entry.hits == 5
        # v2 table works against migrated rows, v3 column accepts data.
        assert await db.cache.set_handle("abc123", "telegram", "file-id-1")
        assert await db.cache.get_handle("abc123", "telegram") == "file-id-1"
        # The v1 install secret is kept, so hashes stay stable across the upgrade.
        assert db._secret == bytes.fromhex("ab" * 32)


async def test_reopen_is_a_noop(db_path: Path) -> None:
    async with await Database.open(db_path) as db:
        first_hash = db.hash_id("telegram", 1)
    before = schema(db_path)
    sql = await SqlConnection.open(db_path)
    try:
        assert await apply_migrations(sql) == []
    finally:
        await sql.close()
    async with await Database.open(db_path) as db:
        assert db.hash_id("telegram", 1) == first_hash
    assert schema(db_path) == before
    assert user_version(db_path) == LATEST_VERSION


async def test_newer_version_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = file_bytes(db_path)
    with pytest.raises(SchemaTooNewError, match=r"schema version 99.*up to") as info:
        await Database.open(db_path)
    assert info.value.found == 99 and info.value.supported == LATEST_VERSION
    assert file_bytes(db_path) == before  # not even the journal mode was touched


async def test_failed_migration_leaves_previous_version(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    broken = (
        MIGRATIONS[0],
        Migration(2, "half broken", lambda _: ("CREATE TABLE extra (x INTEGER) STRICT", "NOT SQL")),
    )
    sql = await SqlConnection.open(db_path)
    try:
        with pytest.raises(sqlite3.OperationalError):
            await apply_migrations(sql, migrations=broken)
        assert await sql.scalar("PRAGMA user_version") == 1
        assert await sql.scalar("SELECT count(*) FROM sqlite_master WHERE name = 'extra'") == 0
    finally:
        await sql.close()
    async with await Database.open(db_path) as db:  # the real v2 still applies afterwards
        assert await db.schema_version() == LATEST_VERSION


async def test_two_processes_opening_a_fresh_file_agree(db_path: Path) -> None:
    first, second = await asyncio.gather(Database.open(db_path), Database.open(db_path))
    try:
        assert first.hash_id("discord", 42) == second.hash_id("discord", 42)
        assert await first.schema_version() == await second.schema_version() == LATEST_VERSION
    finally:
        await first.close()
        await second.close()


async def test_opening_waits_out_another_process_that_holds_the_fresh_file(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite answers the WAL switch with SQLITE_BUSY at once (no busy handler) while another
    connection holds the write lock: the race two bot processes hit on a fresh file."""
    import storage.connection as connection

    db_path.parent.mkdir(parents=True)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the other process, mid-way through its own open
    busy_seen: list[bool] = []
    real_is_busy = connection._is_busy

    def release_on_first_busy(exc: sqlite3.OperationalError) -> bool:
        busy_seen.append(real_is_busy(exc))
        if holder.in_transaction:
            holder.execute("COMMIT")  # the other process finishes; our retry must succeed
        return busy_seen[-1]

    monkeypatch.setattr(connection, "_is_busy", release_on_first_busy)
    try:
        async with await Database.open(db_path) as db:
            assert await db.schema_version() == LATEST_VERSION
            assert await db._sql.scalar("PRAGMA journal_mode") == "wal"
    finally:
        holder.close()
    assert busy_seen and busy_seen[0]  # the open did meet the held lock


async def test_a_file_held_past_the_busy_timeout_is_refused_with_sqlite_busy(
    db_path: Path,
) -> None:
    db_path.parent.mkdir(parents=True)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await Database.open(db_path, busy_timeout_ms=50)
    finally:
        holder.close()


async def test_both_engines_get_the_same_tables_and_columns(
    sqlite_db: Database, pg_db: Database
) -> None:
    """Each migration is written once for both engines: only where cache bytes live differs."""
    lite: dict[str, list[str]] = {}
    for table in TABLES:
        rows = await sqlite_db._sql.fetchall(f"SELECT name FROM pragma_table_info('{table}')")
        lite[table] = sorted(str(r[0]) for r in rows)
    rows = await pg_db._sql.fetchall(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name <> 'schema_version'"
    )
    pg: dict[str, list[str]] = {}
    for table, column in rows:
        pg.setdefault(str(table), []).append(str(column))
    assert sorted(pg.pop("cache_blobs")) == ["data", "key"]
    assert {t: sorted(c) for t, c in pg.items()} == lite
    assert await sqlite_db.schema_version() == await pg_db.schema_version() == LATEST_VERSION
