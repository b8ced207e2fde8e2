"""PostgreSQL: an asyncpg connection pool behind the same interface as the SQLite connection.

Unlike SQLite, PostgreSQL serves many connections at once, from any number of processes and
machines, so there is no process-wide lock: each transaction takes a connection from the pool.
Where the repositories relied on SQLite's single writer (the cache's LRU clock and budget, the
migrations), they name a `lock`, which here is a transaction-scoped advisory lock, so writers of
that resource take turns across every process, and nothing else waits.

The repositories write `:name` (or `?`) parameters, as sqlite3 does; they are rewritten to
asyncpg's `$1, $2, …` once per statement text and cached.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from storage.connection import run_to_completion
from storage.dialect import POSTGRES
from storage.errors import DatabaseUnavailable
from storage.sql import Params, Row

URL_SCHEMES = ("postgresql://", "postgres://")
DEFAULT_POOL_SIZE = 10
CONNECT_TIMEOUT_S = 10.0

# A quoted literal or identifier (skipped), a `:name` parameter (not a `::` cast), or `?`.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|(?<![:\w]):([A-Za-z_]\w*)|\?")


def is_url(target: object) -> bool:
    """Whether a database setting names a PostgreSQL server rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(URL_SCHEMES)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> tuple[str, tuple[str, ...] | int]:
    """`:name`/`?` placeholders to `$n`. Returns the new text and either the parameter names
    in `$n` order (a repeated name reuses its number) or the count of positional ones."""
    names: list[str] = []
    positional = 0

    def swap(match: re.Match[str]) -> str:
        nonlocal positional
        token = match.group(0)
        if token.startswith(("'", '"')):
            return token
        if token == "?":
            positional += 1
            return f"${positional}"
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    text = _TOKEN.sub(swap, sql)
    if names and positional:
        raise ValueError("a statement uses either :name or ? parameters, not both")
    return text, (tuple(names) if names else positional)


def _args(sql: str, params: Params) -> tuple[str, Sequence[Any]]:
    text, spec = translate(sql)
    if isinstance(spec, tuple):
        if not isinstance(params, dict):
            raise TypeError("this statement takes named parameters (a dict)")
        return text, [params[name] for name in spec]
    if isinstance(params, dict):
        raise TypeError("this statement takes positional parameters (a sequence)")
    if len(params) != spec:
        raise ValueError(f"statement takes {spec} parameters, {len(params)} given")
    return text, list(params)


def _rowcount(status: str) -> int:
    """asyncpg's command tag ("INSERT 0 1", "UPDATE 3", "DELETE 0") to a row count."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def lock_id(name: str) -> int:
    """A stable 64-bit advisory lock key for a resource name."""
    return zlib.crc32(f"animebot:{name}".encode()) | (0x616E696D << 32)


class PgTx:
    """Statements on one pooled connection inside its transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        text, args = _args(sql, params)
        return _rowcount(await self._conn.execute(text, *args))

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        text, args = _args(sql, params)
        return list(await self._conn.fetch(text, *args))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        text, args = _args(sql, params)
        row: Row | None = await self._conn.fetchrow(text, *args)
        return row

    async def scalar(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


class PgConnection:
    """A pool of connections to one PostgreSQL database."""

    dialect = POSTGRES

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self.url = url

    @property
    def name(self) -> str:
        return redact(self.url)

    @classmethod
    async def open(cls, url: str, *, pool_size: int = DEFAULT_POOL_SIZE) -> PgConnection:
        """Connect (the first connection is made now, so a wrong URL or a server that is down
        fails here, as DatabaseUnavailable naming the server without its password)."""
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                timeout=CONNECT_TIMEOUT_S,
                server_settings={"application_name": "animebot", "timezone": "UTC"},
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            reason = str(exc).replace(url, redact(url)) or type(exc).__name__
            raise DatabaseUnavailable(
                f"cannot connect to the PostgreSQL database {redact(url)}: {reason}"
            ) from None
        return cls(pool, url)

    @asynccontextmanager
    async def transaction(self, lock: str | None = None) -> AsyncIterator[PgTx]:
        """BEGIN … COMMIT on a pooled connection, ROLLBACK on any exception (cancellation
        included); `lock` takes that resource's advisory lock until the transaction ends."""
        async with self._pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                if lock is not None:
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id(lock))
                yield PgTx(conn)
            except BaseException:
                await run_to_completion(tx.rollback())
                raise
            await run_to_completion(tx.commit())

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[PgTx]:
        """REPEATABLE READ, READ ONLY: every statement sees the state of the first one."""
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield PgTx(conn)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._pool.acquire() as conn:
            return await PgTx(conn).fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self._pool.acquire() as conn:
            return await PgTx(conn).fetchone(sql, params)

    async def scalar(self, sql: str, params: Params = ()) -> Any:
        async with self._pool.acquire() as conn:
            return await PgTx(conn).scalar(sql, params)

    async def ping(self) -> None:
        await self.scalar("SELECT 1")

    async def close(self, *, optimize: bool = True) -> None:
        """Wait for connections in use to come back, then close them all."""
        await self._pool.close()
