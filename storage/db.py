"""`Database`: opens the database, migrates it, and exposes one small repository per table.

The target is a SQLite file (a path: the embedded default) or a PostgreSQL server (a
`postgresql://…` URL, shared by any number of processes and machines). Both hold the same
tables and behave the same through this API; see storage/README.md for what differs.

Usage::

    async with await Database.open(path_or_url) as db:
        user = db.hash_id("telegram", update.effective_user.id)
        await db.usage.record(UsageRecord(platform="telegram", status="ok", user_hash=user))
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import TracebackType

from storage.cache import (
    DEFAULT_BUDGET_BYTES,
    DEFAULT_INPUT_TTL_S,
    DEFAULT_RESULT_TTL_S,
    CacheRepo,
)
from storage.connection import DEFAULT_BUSY_TIMEOUT_MS, SqlConnection
from storage.errors import IdKeyError, StorageError
from storage.jobs import JobsRepo
from storage.migrations import apply_migrations, check_not_newer, schema_version
from storage.pg import PgConnection, is_url
from storage.prefs import PrefsRepo
from storage.privacy import checkpoint, default_key_file, derive_key, hash_id, load_key
from storage.quota import QuotaRepo
from storage.rates import RateRepo
from storage.sql import Sql
from storage.stats import DAY_S, StatsRepo
from storage.usage import UsageRepo

DEFAULT_QUOTA_KEEP_DAYS = 7


def default_cache_dir(db_path: Path) -> Path:
    """`<dir>/<stem>-cache`: next to the database, distinct per database file."""
    return db_path.with_name(f"{db_path.stem}-cache")


class Database:
    """The service's single handle on storage; create with `await Database.open(...)`."""

    def __init__(
        self,
        sql: Sql,
        secret: bytes,
        cache: CacheRepo,
        *,
        quota_keep_days: int,
        key_file: Path | None = None,
    ) -> None:
        self._sql = sql
        self._secret = secret
        self.key_file = key_file
        self._closed = False
        self.path = sql.path if isinstance(sql, SqlConnection) else None  # SQLite's file
        self.name = sql.name  # the file, or the URL without its password
        self.dialect = sql.dialect.name  # "sqlite" or "postgresql"
        self.cache = cache
        self.cache_dir = cache.cache_dir
        self.usage = UsageRepo(sql)
        self.prefs = PrefsRepo(sql)
        self.quota = QuotaRepo(sql)
        self.stats = StatsRepo(sql)
        self.jobs = JobsRepo(sql)
        self.rates = RateRepo(sql)
        self.quota_keep_days = quota_keep_days

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        cache_dir: Path | None = None,
        cache_budget_bytes: int = DEFAULT_BUDGET_BYTES,
        result_ttl_s: float = DEFAULT_RESULT_TTL_S,
        input_ttl_s: float = DEFAULT_INPUT_TTL_S,
        quota_keep_days: int = DEFAULT_QUOTA_KEEP_DAYS,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        key_file: Path | None = None,
    ) -> Database:
        """Open (creating if needed) and migrate; raises SchemaTooNewError for a database
        written by a newer release. `path` is a SQLite file (its parent directory is created)
        or a `postgresql://user:password@host:port/dbname` URL.

        The key that hashes ids lives in `key_file` (SQLite's default `<dir>/<stem>.key`, mode
        0600), never in the database; IdKeyError when it is missing or belongs to another
        database. A PostgreSQL database needs `key_file` given: every machine sharing the
        database must hold a copy of the same key file."""
        if is_url(path):
            return await cls._open_postgres(
                str(path),
                cache_budget_bytes=cache_budget_bytes,
                result_ttl_s=result_ttl_s,
                input_ttl_s=input_ttl_s,
                quota_keep_days=quota_keep_days,
                key_file=key_file,
            )
        db_path = Path(path)
        key_path = default_key_file(db_path) if key_file is None else Path(key_file)
        await asyncio.to_thread(db_path.parent.mkdir, parents=True, exist_ok=True)
        sql = await SqlConnection.open(db_path, busy_timeout_ms=busy_timeout_ms, wal=False)
        try:
            await check_not_newer(sql)  # before anything writes to a file we may not own
            await sql.enable_wal()
            await apply_migrations(sql)
            secret = await load_key(sql, key_path)
        except BaseException:
            await sql.close(optimize=False)
            raise
        cache = CacheRepo(
            sql,
            cache_dir if cache_dir is not None else default_cache_dir(db_path),
            budget_bytes=cache_budget_bytes,
            result_ttl_s=result_ttl_s,
            input_ttl_s=input_ttl_s,
        )
        return cls(sql, secret, cache, quota_keep_days=quota_keep_days, key_file=key_path)

    @classmethod
    async def _open_postgres(
        cls,
        url: str,
        *,
        cache_budget_bytes: int,
        result_ttl_s: float,
        input_ttl_s: float,
        quota_keep_days: int,
        key_file: Path | None,
    ) -> Database:
        if key_file is None:
            raise IdKeyError(
                "a PostgreSQL database needs the id key file named (ANIMEBOT_ID_KEY_FILE): "
                "every machine that shares the database must use a copy of the same file"
            )
        key_path = Path(key_file)
        sql = await PgConnection.open(url)
        try:
            await check_not_newer(sql)
            await apply_migrations(sql)
            secret = await load_key(sql, key_path)
        except BaseException:
            await sql.close()
            raise
        cache = CacheRepo(
            sql,
            None,
            budget_bytes=cache_budget_bytes,
            result_ttl_s=result_ttl_s,
            input_ttl_s=input_ttl_s,
        )
        return cls(sql, secret, cache, quota_keep_days=quota_keep_days, key_file=key_path)

    async def close(self) -> None:
        """Close the connection (idempotent); waits for an in-flight statement."""
        if self._closed:
            return
        self._closed = True
        await self._sql.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def hash_id(self, platform: str, raw_id: str | int) -> str:
        """Pseudonymous id to store instead of a raw platform user or chat id."""
        return hash_id(self._secret, platform, raw_id)

    def derive_key(self, purpose: str) -> bytes:
        """A key of this install for another use (e.g. signing cookies), derived from the id
        key so it needs no storage of its own, and independent of the id hashes."""
        return derive_key(self._secret, purpose)

    async def schema_version(self) -> int:
        """The migrated schema version of the open database."""
        return await schema_version(self._sql)

    async def ping(self) -> None:
        """One round trip to the database (for /readyz); raises when it does not answer.
        Callers bound it with a timeout: a server that is gone can take long to say so."""
        await self._sql.ping()

    def _sqlite(self, what: str) -> SqlConnection:
        if not isinstance(self._sql, SqlConnection):
            raise StorageError(
                f"{what} is SQLite's; for PostgreSQL use its own tools (pg_dump, amcheck)"
            )
        return self._sql

    async def integrity_check(self) -> str:
        """SQLite's `PRAGMA integrity_check` verdict ("ok" when healthy)."""
        rows = await self._sqlite("integrity_check").fetchall("PRAGMA integrity_check")
        return "\n".join(str(r[0]) for r in rows)

    async def backup(self, dest: str | Path) -> None:
        """Write a consistent, compacted copy of the database to `dest` (VACUUM INTO), safe
        while the service runs. The copy does not include the id key (`key_file`): keep a
        copy of that file too, separately, or the restored records match no one."""
        # SQLite itself refuses a non-empty existing target, so nothing is overwritten.
        await self._sqlite("backup").execute_outside_transaction(
            "VACUUM INTO ?", (str(Path(dest)),)
        )

    async def forget(self, platform: str, user_hash: str) -> dict[str, int]:
        """Delete everything stored about one user: usage rows, prefs, quota counters, pending
        jobs and the cache entries they own (bytes and rows). Other users are untouched.
        "files" counts the stored bytes removed: files (SQLite), or `cache_blobs` rows, which
        go with their entries in the same transaction (PostgreSQL).

        Files go first, so an interrupted call leaves rows a retry will find, never files
        nobody tracks; files of entries added meanwhile are removed after the rows.
        """
        early = await self.cache.owned_paths(user_hash)
        files = await self.cache.unlink(early)
        async with self._sql.transaction() as tx:
            usage = await tx.execute("DELETE FROM usage WHERE user_hash = ?", (user_hash,))
            prefs = await tx.execute(
                "DELETE FROM prefs WHERE platform = ? AND user_hash = ?", (platform, user_hash)
            )
            quota = await tx.execute("DELETE FROM quota WHERE user_hash = ?", (user_hash,))
            await tx.execute("DELETE FROM rate_limits WHERE key = ?", (user_hash,))
            await JobsRepo.delete_owned(tx, user_hash)  # pending requests (raw ids): gone too
            paths = await self.cache.delete_owned(tx, user_hash)
        already = set(early)
        files += await self.cache.unlink([p for p in paths if p not in already])
        if self.cache.cache_dir is None:
            files = len(paths)  # the bytes were rows of the same transaction
        await checkpoint(self._sql)  # the deleted rows are zeroed; now out of the WAL too
        return {
            "usage": usage,
            "prefs": prefs,
            "quota": quota,
            "cache": len(paths),
            "files": files,
        }

    async def purge(
        self,
        now: float | None = None,
        *,
        result_ttl_s: float | None = None,
        input_ttl_s: float | None = None,
        budget_bytes: int | None = None,
    ) -> dict[str, int]:
        """Housekeeping to run periodically: TTL expiry, then the size budget, then old
        quota counters, stale rate-limit buckets and orphaned cache files. Unset arguments use
        the open() values."""
        now_s = time.time() if now is None else now
        expired = await self.cache.expire(now_s, result_ttl_s, input_ttl_s)
        budget = self.cache.budget_bytes if budget_bytes is None else budget_bytes
        evicted = await self.cache.evict_to(budget)
        cutoff_day = time.strftime("%Y-%m-%d", time.gmtime(now_s - self.quota_keep_days * DAY_S))
        async with self._sql.transaction() as tx:
            quota = await tx.execute("DELETE FROM quota WHERE day < ?", (cutoff_day,))
        rates = await self.rates.delete_stale(now_s)
        # File ages are real mtimes, so the sweep uses the real clock, not `now`.
        orphans = await self.cache.sweep_orphans()
        return {
            "expired": expired,
            "evicted": evicted,
            "quota": quota,
            "rate_limits": rates,
            "orphans": orphans,
        }
