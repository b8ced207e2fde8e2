"""Versioned schema migrations, tracked in `PRAGMA user_version`.

Each migration runs in its own IMMEDIATE transaction together with the version bump, so a
crash or a failing statement leaves the file at the previous version, never in between.
Migrations are append-only: never edit a released one, add the next version instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.connection import SqlConnection
from storage.errors import SchemaTooNewError


@dataclass(frozen=True)
class Migration:
    """One schema step; `statements` run in order inside one transaction."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial tables: meta, usage, cache, prefs, quota",
        (
            """CREATE TABLE meta (
                key   TEXT PRIMARY KEY,
                value TEXT NOT NULL
            ) STRICT""",
            """CREATE TABLE usage (
                id            INTEGER PRIMARY KEY AUTOINCREMENT,
                created_at    INTEGER NOT NULL,
                platform      TEXT NOT NULL,
                user_hash     TEXT,
                chat_hash     TEXT,
                style         TEXT,
                faces         INTEGER CHECK (faces IN (0, 1)),
                side_by_side  INTEGER CHECK (side_by_side IN (0, 1)),
                input_bytes   INTEGER CHECK (input_bytes >= 0),
                input_w       INTEGER CHECK (input_w >= 0),
                input_h       INTEGER CHECK (input_h >= 0),
                output_bytes  INTEGER CHECK (output_bytes >= 0),
                cache_hit     INTEGER NOT NULL DEFAULT 0 CHECK (cache_hit IN (0, 1)),
                queue_wait_ms INTEGER CHECK (queue_wait_ms >= 0),
                compute_ms    INTEGER CHECK (compute_ms >= 0),
                status        TEXT NOT NULL CHECK (status IN ('ok', 'error', 'refused')),
                error_kind    TEXT
            ) STRICT""",
            "CREATE INDEX usage_created_at ON usage(created_at)",
            "CREATE INDEX usage_user_hash ON usage(user_hash)",
            """CREATE TABLE cache (
                key          TEXT PRIMARY KEY,
                kind         TEXT NOT NULL CHECK (kind IN ('result', 'input')),
                path         TEXT NOT NULL,
                size         INTEGER NOT NULL CHECK (size >= 0),
                mime         TEXT NOT NULL,
                owner_hash   TEXT,
                created_at   INTEGER NOT NULL,
                last_used_at INTEGER NOT NULL,
                hits         INTEGER NOT NULL DEFAULT 0,
                meta         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(meta))
            ) STRICT""",
            """CREATE TABLE prefs (
                platform     TEXT NOT NULL,
                user_hash    TEXT NOT NULL,
                style        TEXT,
                faces        INTEGER CHECK (faces IN (0, 1)),
                language     TEXT,
                side_by_side INTEGER CHECK (side_by_side IN (0, 1)),
                updated_at   INTEGER NOT NULL,
                PRIMARY KEY (platform, user_hash)
            ) STRICT, WITHOUT ROWID""",
            """CREATE TABLE quota (
                user_hash TEXT NOT NULL,
                day       TEXT NOT NULL,
                count     INTEGER NOT NULL DEFAULT 0 CHECK (count >= 0),
                PRIMARY KEY (user_hash, day)
            ) STRICT, WITHOUT ROWID""",
        ),
    ),
    Migration(
        2,
        "cache_handles (platform upload ids, so a repeat reply costs no upload); "
        "LRU and owner indexes on cache",
        (
            """CREATE TABLE cache_handles (
                key        TEXT NOT NULL REFERENCES cache(key) ON DELETE CASCADE,
                platform   TEXT NOT NULL,
                handle     TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                PRIMARY KEY (key, platform)
            ) STRICT, WITHOUT ROWID""",
            "CREATE INDEX cache_last_used_at ON cache(last_used_at)",
            "CREATE INDEX cache_owner_hash ON cache(owner_hash)",
        ),
    ),
    Migration(
        3,
        "usage.request_id to correlate a failure with the logs; failure-listing index",
        (
            "ALTER TABLE usage ADD COLUMN request_id TEXT",
            "CREATE INDEX usage_request_id ON usage(request_id) WHERE request_id IS NOT NULL",
            "CREATE INDEX usage_status_created_at ON usage(status, created_at)",
        ),
    ),
    Migration(
        4,
        "jobs: accepted requests not answered yet, durable across crashes and restarts",
        (
            """CREATE TABLE jobs (
                id         TEXT PRIMARY KEY,
                platform   TEXT NOT NULL,
                user_id    TEXT NOT NULL,
                user_hash  TEXT NOT NULL,
                chat_id    TEXT,
                lang       TEXT NOT NULL,
                source     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(source)),
                options    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(options)),
                reply      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(reply)),
                created_at INTEGER NOT NULL,
                attempts   INTEGER NOT NULL DEFAULT 1 CHECK (attempts >= 0)
            ) STRICT""",
            "CREATE INDEX jobs_platform_created_at ON jobs(platform, created_at)",
            "CREATE INDEX jobs_user_hash ON jobs(user_hash)",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


async def schema_version(sql: SqlConnection) -> int:
    """The file's `user_version` (0 for a new, empty file)."""
    return int(await sql.scalar("PRAGMA user_version"))


async def check_not_newer(sql: SqlConnection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Raise SchemaTooNewError if the file is newer than `migrations`; returns their latest."""
    _check_sequence(migrations)
    latest = migrations[-1].version if migrations else 0
    found = await schema_version(sql)
    if found > latest:
        raise SchemaTooNewError(str(sql.path), found, latest)
    return latest


async def apply_migrations(
    sql: SqlConnection,
    *,
    target: int | None = None,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> list[int]:
    """Bring the file up to `target` (default: newest); returns the versions applied.

    Refuses (SchemaTooNewError) a file newer than anything in `migrations`: an older release
    must not write to a schema it does not understand.
    """
    latest = await check_not_newer(sql, migrations)
    goal = latest if target is None else target
    if not 0 <= goal <= latest:
        raise ValueError(f"target version {goal} outside 0..{latest}")
    applied: list[int] = []
    for migration in migrations:
        if migration.version > goal:
            break
        async with sql.transaction() as tx:
            # Re-read under the write lock: another process may have migrated meanwhile.
            current = int(await tx.scalar("PRAGMA user_version"))
            if current > latest:
                raise SchemaTooNewError(str(sql.path), current, latest)
            if current >= migration.version:
                continue
            for statement in migration.statements:
                await tx.execute(statement)
            # PRAGMA takes no bound parameters; the version is an int from our own table.
            await tx.execute(f"PRAGMA user_version = {int(migration.version)}")
        applied.append(migration.version)
    return applied


def _check_sequence(migrations: Sequence[Migration]) -> None:
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise ValueError(f"migration versions must be 1, 2, 3…; got {migration.version}")
