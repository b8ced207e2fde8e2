"""Versioned schema migrations: `PRAGMA user_version` on SQLite, table `schema_version` on
PostgreSQL.

Each migration runs in its own transaction together with the version bump (PostgreSQL's DDL is
transactional too), so a crash or a failing statement leaves the database at the previous
version, never in between. Two processes starting at once take turns (SQLite's write lock, a
PostgreSQL advisory lock) and the second finds the work done. Each version is written once, as
a function of the engine's `Dialect`: the same tables and columns everywhere, with the
spellings that differ taken from storage/dialect.py (PostgreSQL's natural types: BIGINT for
milliseconds, an identity column, JSON checked by a cast; SQLite's STRICT tables). PostgreSQL
also keeps cache bytes in `cache_blobs` (SQLite keeps them in files). Migrations are
append-only: never edit a released one, add the next version instead; the dialect's schema
spellings are part of the released ones, so never change one either (add a new spelling).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from storage.dialect import Dialect
from storage.errors import SchemaTooNewError
from storage.sql import Sql, Tx

Statements = Callable[[Dialect], Sequence[str]]


@dataclass(frozen=True)
class Migration:
    """One schema step: `statements(dialect)` run in order in one transaction."""

    version: int
    description: str
    statements: Statements

    def statements_for(self, dialect: Dialect) -> tuple[str, ...]:
        return tuple(self.statements(dialect))


def _v1(d: Dialect) -> list[str]:
    cache_blobs = [
        """CREATE TABLE cache_blobs (
                key  TEXT PRIMARY KEY REFERENCES cache(key) ON DELETE CASCADE,
                data BYTEA NOT NULL
            )"""
    ]
    return [
        f"""CREATE TABLE meta (
                key   TEXT PRIMARY KEY,
                value TEXT NOT NULL
            ){d.table_options}""",
        f"""CREATE TABLE usage (
                id            {d.auto_id},
                created_at    {d.big_int} NOT NULL,
                platform      TEXT NOT NULL,
                user_hash     TEXT,
                chat_hash     TEXT,
                style         TEXT,
                faces         {d.flag} CHECK (faces IN (0, 1)),
                side_by_side  {d.flag} CHECK (side_by_side IN (0, 1)),
                input_bytes   {d.big_int} CHECK (input_bytes >= 0),
                input_w       INTEGER CHECK (input_w >= 0),
                input_h       INTEGER CHECK (input_h >= 0),
                output_bytes  {d.big_int} CHECK (output_bytes >= 0),
                cache_hit     {d.flag} NOT NULL DEFAULT 0 CHECK (cache_hit IN (0, 1)),
                queue_wait_ms {d.big_int} CHECK (queue_wait_ms >= 0),
                compute_ms    {d.big_int} CHECK (compute_ms >= 0),
                status        TEXT NOT NULL CHECK (status IN ('ok', 'error', 'refused')),
                error_kind    TEXT
            ){d.table_options}""",
        "CREATE INDEX usage_created_at ON usage(created_at)",
        "CREATE INDEX usage_user_hash ON usage(user_hash)",
        f"""CREATE TABLE cache (
                key          TEXT PRIMARY KEY,
                kind         TEXT NOT NULL CHECK (kind IN ('result', 'input')),
                path         TEXT NOT NULL,
                size         {d.big_int} NOT NULL CHECK (size >= 0),
                mime         TEXT NOT NULL,
                owner_hash   TEXT,
                created_at   {d.big_int} NOT NULL,
                last_used_at {d.big_int} NOT NULL,
                hits         {d.big_int} NOT NULL DEFAULT 0,
                meta         TEXT NOT NULL DEFAULT '{{}}' CHECK ({d.is_json("meta")})
            ){d.table_options}""",
        *(cache_blobs if d.blobs_in_db else []),
        f"""CREATE TABLE prefs (
                platform     TEXT NOT NULL,
                user_hash    TEXT NOT NULL,
                style        TEXT,
                faces        {d.flag} CHECK (faces IN (0, 1)),
                language     TEXT,
                side_by_side {d.flag} CHECK (side_by_side IN (0, 1)),
                updated_at   {d.big_int} NOT NULL,
                PRIMARY KEY (platform, user_hash)
            ){d.keyed_table_options}""",
        f"""CREATE TABLE quota (
                user_hash TEXT NOT NULL,
                day       TEXT NOT NULL,
                count     INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
                PRIMARY KEY (user_hash, day)
            ){d.keyed_table_options}""",
    ]


def _v2(d: Dialect) -> list[str]:
    return [
        f"""CREATE TABLE cache_handles (
                key        TEXT NOT NULL REFERENCES cache(key) ON DELETE CASCADE,
                platform   TEXT NOT NULL,
                handle     TEXT NOT NULL,
                created_at {d.big_int} NOT NULL,
                PRIMARY KEY (key, platform)
            ){d.keyed_table_options}""",
        "CREATE INDEX cache_last_used_at ON cache(last_used_at)",
        "CREATE INDEX cache_owner_hash ON cache(owner_hash)",
    ]


def _v3(d: Dialect) -> list[str]:
    return [
        "ALTER TABLE usage ADD COLUMN request_id TEXT",
        "CREATE INDEX usage_request_id ON usage(request_id) WHERE request_id IS NOT NULL",
        "CREATE INDEX usage_status_created_at ON usage(status, created_at)",
    ]


def _v4(d: Dialect) -> list[str]:
    return [
        f"""CREATE TABLE jobs (
                id         TEXT PRIMARY KEY,
                platform   TEXT NOT NULL,
                user_id    TEXT NOT NULL,
                user_hash  TEXT NOT NULL,
                chat_id    TEXT,
                lang       TEXT NOT NULL,
                source     TEXT NOT NULL DEFAULT '{{}}' CHECK ({d.is_json("source")}),
                options    TEXT NOT NULL DEFAULT '{{}}' CHECK ({d.is_json("options")}),
                reply      TEXT NOT NULL DEFAULT '{{}}' CHECK ({d.is_json("reply")}),
                created_at {d.big_int} NOT NULL,
                attempts   INTEGER NOT NULL DEFAULT 1 CHECK (attempts >= 0)
            ){d.table_options}""",
        "CREATE INDEX jobs_platform_created_at ON jobs(platform, created_at)",
        "CREATE INDEX jobs_user_hash ON jobs(user_hash)",
    ]


def _v5(d: Dialect) -> list[str]:
    return [
        f"""CREATE TABLE rate_limits (
                key        TEXT PRIMARY KEY,
                tokens     {d.double} NOT NULL,
                granted    {d.flag} NOT NULL CHECK (granted IN (0, 1)),
                updated_at {d.big_int} NOT NULL
            ){d.keyed_table_options}""",
        "CREATE INDEX rate_limits_updated_at ON rate_limits(updated_at)",
    ]


def _v6(d: Dialect) -> list[str]:
    return [
        "ALTER TABLE usage ADD COLUMN outcome_key TEXT",
        "CREATE UNIQUE INDEX usage_outcome_key ON usage(outcome_key)",
    ]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial tables: meta, usage, cache, prefs, quota", _v1),
    Migration(
        2,
        "cache_handles (platform upload ids, so a repeat reply costs no upload); "
        "LRU and owner indexes on cache",
        _v2,
    ),
    Migration(
        3, "usage.request_id to correlate a failure with the logs; failure-listing index", _v3
    ),
    Migration(
        4, "jobs: accepted requests not answered yet, durable across crashes and restarts", _v4
    ),
    Migration(
        5,
        "rate_limits: per-key token buckets shared by every process (front ends and workers)",
        _v5,
    ),
    Migration(
        6,
        "usage.outcome_key: one outcome row per request id (a job run again after a worker "
        "died replaces its row); older rows keep NULL",
        _v6,
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


_PG_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    one     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    version INTEGER NOT NULL
)"""


async def schema_version(sql: Sql) -> int:
    """The database's schema version (0 for a new, empty one)."""
    if sql.dialect.name == "postgresql":
        if await sql.scalar("SELECT to_regclass('schema_version') IS NOT NULL") is not True:
            return 0
        return int(await sql.scalar("SELECT coalesce(max(version), 0) FROM schema_version"))
    return int(await sql.scalar("PRAGMA user_version"))


async def _version_in(tx: Tx, dialect: str) -> int:
    if dialect == "postgresql":
        await tx.execute(_PG_VERSION_TABLE)
        return int(await tx.scalar("SELECT coalesce(max(version), 0) FROM schema_version"))
    return int(await tx.scalar("PRAGMA user_version"))


async def _set_version(tx: Tx, dialect: str, version: int) -> None:
    if dialect == "postgresql":
        await tx.execute(
            "INSERT INTO schema_version (one, version) VALUES (TRUE, ?) "
            "ON CONFLICT (one) DO UPDATE SET version = excluded.version",
            (int(version),),
        )
        return
    # PRAGMA takes no bound parameters; the version is an int from our own table.
    await tx.execute(f"PRAGMA user_version = {int(version)}")


async def check_not_newer(sql: Sql, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Raise SchemaTooNewError if the database is newer than `migrations`; returns their
    latest."""
    _check_sequence(migrations)
    latest = migrations[-1].version if migrations else 0
    found = await schema_version(sql)
    if found > latest:
        raise SchemaTooNewError(sql.name, found, latest)
    return latest


async def apply_migrations(
    sql: Sql,
    *,
    target: int | None = None,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> list[int]:
    """Bring the database up to `target` (default: newest); returns the versions applied.

    Refuses (SchemaTooNewError) a database newer than anything in `migrations`: an older
    release must not write to a schema it does not understand.
    """
    latest = await check_not_newer(sql, migrations)
    goal = latest if target is None else target
    if not 0 <= goal <= latest:
        raise ValueError(f"target version {goal} outside 0..{latest}")
    dialect = sql.dialect.name
    applied: list[int] = []
    for migration in migrations:
        if migration.version > goal:
            break
        async with sql.transaction(lock="migrations") as tx:
            # Re-read under the lock: another process may have migrated meanwhile.
            current = await _version_in(tx, dialect)
            if current > latest:
                raise SchemaTooNewError(sql.name, current, latest)
            if current >= migration.version:
                continue
            for statement in migration.statements_for(sql.dialect):
                await tx.execute(statement)
            await _set_version(tx, dialect, migration.version)
        applied.append(migration.version)
    return applied


def _check_sequence(migrations: Sequence[Migration]) -> None:
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise ValueError(f"migration versions must be 1, 2, 3…; got {migration.version}")
