"""SQLite: one aiosqlite connection plus the discipline around it: pragmas, a lock, transactions.

aiosqlite runs every statement on one worker thread, in the order they were queued. Two
coroutines sharing the connection could still interleave statements *inside* each other's
transactions, so every use goes through an `asyncio.Lock`. Transactions roll back on any
exception, `asyncio.CancelledError` included, and the rollback (or commit) always runs to
completion before the lock is released, so a cancelled task never leaves half a write behind.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from storage.dialect import SQLITE
from storage.sql import Params, Row

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_MS = 5000


async def run_to_completion(coro: Coroutine[Any, Any, T]) -> T:
    """Await `coro` even if the caller is cancelled meanwhile; re-raise the cancellation after.

    Used for COMMIT and ROLLBACK: abandoning them half-way would release the lock while the
    transaction is still open on the shared connection.
    """
    task = asyncio.ensure_future(coro)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        if not task.cancelled():
            task.exception()  # mark retrieved; the cancellation wins
        raise asyncio.CancelledError
    return task.result()


class SqliteTx:
    """Statement helpers bound to a connection whose lock the holder already owns."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        async with self._conn.execute(sql, params) as cur:
            return int(cur.rowcount)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one statement (SELECT or ... RETURNING) and fetch every row in one hop."""
        return list(await self._conn.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """First row of `fetchall`, or None."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Params = ()) -> Any:
        """First column of the first row, or None."""
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


class SqlConnection:
    """The single shared connection; hand out `SqliteTx` only while holding the lock."""

    dialect = SQLITE

    def __init__(
        self,
        conn: aiosqlite.Connection,
        path: Path,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._busy_timeout_ms = busy_timeout_ms
        self.path = path

    @property
    def name(self) -> str:
        return str(self.path)

    @classmethod
    async def open(
        cls, path: Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, wal: bool = True
    ) -> SqlConnection:
        """Connect in autocommit mode (we issue BEGIN/COMMIT ourselves) and set the pragmas.

        `wal=False` defers `enable_wal`, which writes to the file, until the caller has
        checked that it may write to this file at all.
        """
        conn = await aiosqlite.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000)
        try:
            conn.row_factory = sqlite3.Row
            if wal:
                await _enable_wal(conn, busy_timeout_ms)
            await _scalar(conn, "PRAGMA synchronous=NORMAL")
            await _scalar(conn, "PRAGMA foreign_keys=ON")
            # Deleted rows are zeroed, not left in free space: /forget, expired jobs (which
            # hold raw chat ids) and the moved id key leave nothing behind in the file.
            await _scalar(conn, "PRAGMA secure_delete=ON")
            await _scalar(conn, f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        except BaseException:
            await run_to_completion(conn.close())
            raise
        return cls(conn, path, busy_timeout_ms)

    async def enable_wal(self) -> None:
        """Switch the file to write-ahead logging (persistent; readers never block writers)."""
        async with self._lock:
            await _enable_wal(self._conn, self._busy_timeout_ms)

    async def close(self, *, optimize: bool = True) -> None:
        """Wait for any user of the connection, let SQLite refresh statistics, close.

        `optimize=False` for a file we refused: PRAGMA optimize may write to it.
        """
        async with self._lock:
            try:
                if optimize:
                    await _scalar(self._conn, "PRAGMA optimize")
            finally:
                await run_to_completion(self._conn.close())

    @asynccontextmanager
    async def transaction(self, lock: str | None = None) -> AsyncIterator[SqliteTx]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception (cancellation included).

        IMMEDIATE takes the write lock up front, so another process cannot make us fail with
        SQLITE_BUSY half-way through; busy_timeout makes us wait for it instead. That lock is
        the whole file's, so it already covers any named `lock`.
        """
        async with self._lock:
            try:
                # Inside the try: even a cancelled BEGIN has been queued and will run.
                await _scalar(self._conn, "BEGIN IMMEDIATE")
                yield SqliteTx(self._conn)
                await run_to_completion(self._conn.commit())
            except BaseException:
                # A no-op when no transaction is open (COMMIT done, or SQLite ended it).
                await run_to_completion(self._conn.rollback())
                raise

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[SqliteTx]:
        """A read transaction: several SELECTs that see one consistent state."""
        async with self._lock:
            try:
                await _scalar(self._conn, "BEGIN DEFERRED")
                yield SqliteTx(self._conn)
            finally:
                await run_to_completion(self._conn.rollback())

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """One read statement outside any transaction."""
        async with self._lock:
            return await SqliteTx(self._conn).fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """First row of one read statement, or None."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def scalar(self, sql: str, params: Params = ()) -> Any:
        """First column of the first row of one read statement, or None."""
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def ping(self) -> None:
        """A trivial statement through the connection's thread (a wedged one never answers)."""
        await self.scalar("SELECT 1")

    async def execute_outside_transaction(self, sql: str, params: Params = ()) -> Any:
        """Statements SQLite refuses inside a transaction (VACUUM INTO, some PRAGMAs)."""
        async with self._lock:
            return await _scalar(self._conn, sql, params)


async def _enable_wal(conn: aiosqlite.Connection, busy_timeout_ms: int) -> None:
    """Switch to WAL, waiting out another connection that holds the file meanwhile.

    SQLite does not call the busy handler on every path of a journal-mode change (two
    processes opening a fresh file at once get SQLITE_BUSY at once), so retry here, within
    the same busy timeout. A file already in WAL needs no write at all.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    delay = 0.005
    while True:
        try:
            if str(await _scalar(conn, "PRAGMA journal_mode")).lower() == "wal":
                return
            mode = await _scalar(conn, "PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() + delay > deadline:
                raise
            await asyncio.sleep(delay)  # back off; not synchronisation, the lock holder decides
            delay = min(delay * 2, 0.2)
            continue
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"could not enable WAL (got {mode!r})")
        return


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


async def _scalar(conn: aiosqlite.Connection, sql: str, params: Params = ()) -> Any:
    rows = list(await conn.execute_fetchall(sql, params))
    return rows[0][0] if rows and len(rows[0]) else None
