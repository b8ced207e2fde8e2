"""Content cache: bookkeeping rows in `cache`, the bytes either in files under `cache_dir`
(SQLite) or in the database itself (PostgreSQL: `cache_blobs`, bytea, one row per entry).

With files, the order of writes is file first (atomic rename), then the row. A crash in between
leaves an orphan file that `sweep_orphans` removes later; it never leaves a row pointing at a
torn file. A row whose file vanished or changed size is treated as a miss and deleted.

On PostgreSQL the bytes and the row are written in one transaction, so every machine sharing
the database sees the same cache, and there are no files to orphan. Writers of the cache take
the advisory lock "cache" in turn (as SQLite's single writer does), so the LRU clock stays
strictly increasing and the budget is enforced against the true total.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from storage import files
from storage.clock import now_ms, to_ms
from storage.sql import Row, Sql, Tx

Kind = Literal["result", "input"]
KINDS: frozenset[str] = frozenset({"result", "input"})

MB = 1_000_000
DEFAULT_BUDGET_BYTES = 500 * MB
DEFAULT_RESULT_TTL_S = 30 * 24 * 3600.0
DEFAULT_INPUT_TTL_S = 24 * 3600.0
ORPHAN_MIN_AGE_S = 3600.0

# last_used_at doubles as the LRU order, so it must never tie: it is max(now, newest + 1).
_NEXT_USE = "{greatest}(:now, coalesce((SELECT max(last_used_at) FROM cache), 0) + 1)"
_ROW = "key, kind, path, size, mime, owner_hash, created_at, last_used_at, hits, meta"


@dataclass(frozen=True)
class CacheEntry:
    """One cached object; `data` holds its bytes. Times are unix milliseconds. `path` is its
    file, or None where the bytes live in the database (PostgreSQL)."""

    key: str
    kind: Kind
    path: Path | None
    size: int
    mime: str
    owner_hash: str | None
    created_at: int
    last_used_at: int
    hits: int
    meta: dict[str, Any]
    data: bytes = field(repr=False)


class CacheRepo:
    """Get/put by key, platform upload handles, LRU eviction and TTL expiry."""

    def __init__(
        self,
        sql: Sql,
        cache_dir: Path | None,
        *,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
        result_ttl_s: float = DEFAULT_RESULT_TTL_S,
        input_ttl_s: float = DEFAULT_INPUT_TTL_S,
    ) -> None:
        self._sql = sql
        self._in_db = sql.dialect.blobs_in_db
        if cache_dir is None and not self._in_db:
            raise ValueError("a cache with files needs a cache_dir")
        self.cache_dir = None if self._in_db else cache_dir
        self._next_use = _NEXT_USE.format(greatest=sql.dialect.greatest)
        self.budget_bytes = budget_bytes
        self.result_ttl_s = result_ttl_s
        self.input_ttl_s = input_ttl_s

    async def get(self, key: str) -> CacheEntry | None:
        """The entry with its bytes, counting a hit; None on a miss (or a vanished file)."""
        files.check_key(key)
        if self._in_db:
            row = await self._sql.fetchone(
                f"SELECT {_ROW}, (SELECT data FROM cache_blobs b WHERE b.key = cache.key) AS data "
                "FROM cache WHERE key = ?",
                (key,),
            )
        else:
            row = await self._sql.fetchone(f"SELECT {_ROW} FROM cache WHERE key = ?", (key,))
        if row is None:
            return None
        data = await self._read(row)
        if data is None:
            async with self._sql.transaction(lock="cache") as tx:
                # Only this version of the row: a concurrent put may have replaced it.
                await tx.execute(
                    "DELETE FROM cache WHERE key = ? AND created_at = ? AND size = ?",
                    (key, row["created_at"], row["size"]),
                )
            return None
        async with self._sql.transaction(lock="cache") as tx:
            bumped = await tx.fetchone(
                f"UPDATE cache SET hits = hits + 1, last_used_at = {self._next_use} "
                "WHERE key = :key RETURNING hits, last_used_at",
                {"key": key, "now": now_ms()},
            )
        if bumped is not None:
            return self._entry(row, data, bumped["hits"], bumped["last_used_at"])
        return self._entry(row, data, row["hits"], row["last_used_at"])

    async def _read(self, row: Row) -> bytes | None:
        """The entry's bytes if they are all there (the recorded size), else None."""
        size = int(row["size"])
        if self._in_db:
            data = row["data"]
            return bytes(data) if data is not None and len(data) == size else None
        assert self.cache_dir is not None
        return await asyncio.to_thread(files.read_exact, self.cache_dir / row["path"], size)

    def _entry(self, row: Row, data: bytes, hits: int, used: int) -> CacheEntry:
        path = None if self.cache_dir is None else self.cache_dir / row["path"]
        return _entry(row, path, data, hits, used)

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        kind: Kind,
        mime: str,
        owner_hash: str | None,
        meta: Mapping[str, Any] | None = None,
    ) -> CacheEntry:
        """Store `data` under `key` (replacing any previous entry), then keep to the budget.

        The entry just written is never the one evicted, even if alone it exceeds the budget.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
        rel = files.relative_path(key)
        meta_json = json.dumps(dict(meta or {}), sort_keys=True, separators=(",", ":"))
        if self.cache_dir is not None:
            await asyncio.to_thread(files.write_atomic, self.cache_dir / rel, data)
        now = now_ms()
        async with self._sql.transaction(lock="cache") as tx:
            row = await tx.fetchone(
                f"""INSERT INTO cache ({_ROW})
                VALUES (:key, :kind, :path, :size, :mime, :owner, :now, {self._next_use}, 0,
                    :meta)
                ON CONFLICT(key) DO UPDATE SET
                    kind = excluded.kind, path = excluded.path, size = excluded.size,
                    mime = excluded.mime, owner_hash = excluded.owner_hash,
                    created_at = excluded.created_at, last_used_at = excluded.last_used_at,
                    meta = excluded.meta
                RETURNING {_ROW}""",
                {
                    "key": key,
                    "kind": kind,
                    "path": rel,
                    "size": len(data),
                    "mime": mime,
                    "owner": owner_hash,
                    "now": now,
                    "meta": meta_json,
                },
            )
            if self._in_db:
                await tx.execute(
                    "INSERT INTO cache_blobs (key, data) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET data = excluded.data",
                    (key, data),
                )
            # Handles point at the old bytes' upload; they are stale once the bytes change.
            await tx.execute("DELETE FROM cache_handles WHERE key = ?", (key,))
            total = int(await tx.scalar("SELECT coalesce(sum(size), 0) FROM cache"))
        assert row is not None  # RETURNING of an upsert always yields the row
        if total > self.budget_bytes:
            await self._evict(self.budget_bytes, protect=key)
        return self._entry(row, data, row["hits"], row["last_used_at"])

    async def set_handle(self, key: str, platform: str, handle: str) -> bool:
        """Remember the platform's id of an uploaded copy (e.g. a Telegram file_id).

        Returns False (and stores nothing) when the entry is not cached any more.
        """
        async with self._sql.transaction() as tx:
            changed = await tx.execute(
                """INSERT INTO cache_handles (key, platform, handle, created_at)
                SELECT :key, :platform, :handle, CAST(:now AS BIGINT) WHERE EXISTS
                    (SELECT 1 FROM cache WHERE key = :key)
                ON CONFLICT(key, platform) DO UPDATE SET
                    handle = excluded.handle, created_at = excluded.created_at""",
                {"key": key, "platform": platform, "handle": handle, "now": now_ms()},
            )
        return changed > 0

    async def get_handle(self, key: str, platform: str) -> str | None:
        """The stored handle, or None. A hit counts as a use of the entry (hits, LRU)."""
        async with self._sql.transaction(lock="cache") as tx:
            handle = await tx.scalar(
                "SELECT handle FROM cache_handles WHERE key = ? AND platform = ?",
                (key, platform),
            )
            if handle is not None:
                await tx.execute(
                    f"UPDATE cache SET hits = hits + 1, last_used_at = {self._next_use} "
                    "WHERE key = :key",
                    {"key": key, "now": now_ms()},
                )
        return None if handle is None else str(handle)

    async def total_bytes(self) -> int:
        """Sum of the sizes of all cached entries."""
        return int(await self._sql.scalar("SELECT coalesce(sum(size), 0) FROM cache"))

    async def evict_to(self, budget_bytes: int) -> int:
        """Delete least-recently-used entries until the total fits; returns how many."""
        return await self._evict(budget_bytes, protect=None)

    async def expire(
        self,
        now: float | None = None,
        result_ttl_s: float | None = None,
        input_ttl_s: float | None = None,
    ) -> int:
        """Delete results unused for `result_ttl_s` and inputs older than `input_ttl_s`.

        Inputs age from creation, not last use: a user's photo must not outlive its TTL just
        because they kept pressing "another style". `now` is unix seconds.
        """
        now_s = time.time() if now is None else now
        result_ttl = self.result_ttl_s if result_ttl_s is None else result_ttl_s
        input_ttl = self.input_ttl_s if input_ttl_s is None else input_ttl_s
        async with self._sql.transaction(lock="cache") as tx:
            rows = await tx.fetchall(
                """DELETE FROM cache WHERE
                    (kind = 'result' AND last_used_at < :result_cut)
                    OR (kind = 'input' AND created_at < :input_cut)
                RETURNING path""",
                {
                    "result_cut": to_ms(now_s - result_ttl),
                    "input_cut": to_ms(now_s - input_ttl),
                },
            )
        await self._unlink([r["path"] for r in rows])
        return len(rows)

    async def delete_owned(self, tx: Tx, owner_hash: str) -> list[str]:
        """Inside the caller's transaction: delete the owner's rows, return their paths."""
        rows = await tx.fetchall(
            "DELETE FROM cache WHERE owner_hash = ? RETURNING path", (owner_hash,)
        )
        return [str(r["path"]) for r in rows]

    async def owned_paths(self, owner_hash: str) -> list[str]:
        """Relative paths of the owner's files (to delete them before their rows); none
        where the bytes live in the database (they go with the rows)."""
        if self._in_db:
            return []
        rows = await self._sql.fetchall(
            "SELECT path FROM cache WHERE owner_hash = ?", (owner_hash,)
        )
        return [str(r["path"]) for r in rows]

    async def sweep_orphans(self, now: float | None = None) -> int:
        """Delete files no row refers to (crash leftovers) older than an hour."""
        if self.cache_dir is None:
            return 0  # bytes and rows are written together: nothing to orphan
        now_s = time.time() if now is None else now
        rows = await self._sql.fetchall("SELECT path FROM cache")
        known = {str(r["path"]) for r in rows}
        return await asyncio.to_thread(
            files.sweep_orphans, self.cache_dir, known, older_than=now_s - ORPHAN_MIN_AGE_S
        )

    async def unlink(self, rel_paths: list[str]) -> int:
        """Delete cache files by relative path, off the event loop."""
        return await self._unlink(rel_paths)

    async def _unlink(self, rel_paths: list[str]) -> int:
        if not rel_paths or self.cache_dir is None:
            return 0
        return await asyncio.to_thread(files.unlink_all, [self.cache_dir / p for p in rel_paths])

    async def _evict(self, budget_bytes: int, *, protect: str | None) -> int:
        async with self._sql.transaction(lock="cache") as tx:
            total = int(await tx.scalar("SELECT coalesce(sum(size), 0) FROM cache"))
            excess = total - budget_bytes
            if excess <= 0:
                return 0
            # Oldest first; delete every row whose predecessors alone do not cover the excess.
            rows = await tx.fetchall(
                """DELETE FROM cache WHERE key IN (
                    SELECT key FROM (
                        SELECT key, sum(size) OVER (ORDER BY last_used_at, key) - size AS before
                        FROM cache
                        WHERE CAST(:protect AS TEXT) IS NULL OR key <> CAST(:protect AS TEXT)
                    ) AS running WHERE before < CAST(:excess AS BIGINT)
                ) RETURNING path""",
                {"protect": protect, "excess": excess},
            )
        await self._unlink([r["path"] for r in rows])
        return len(rows)


def _entry(row: Row, path: Path | None, data: bytes, hits: int, used: int) -> CacheEntry:
    return CacheEntry(
        key=str(row["key"]),
        kind="input" if row["kind"] == "input" else "result",
        path=path,
        size=int(row["size"]),
        mime=str(row["mime"]),
        owner_hash=None if row["owner_hash"] is None else str(row["owner_hash"]),
        created_at=int(row["created_at"]),
        last_used_at=int(used),
        hits=int(hits),
        meta=dict(json.loads(row["meta"])),
        data=data,
    )
