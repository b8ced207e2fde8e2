"""What the repositories need from a connection, whichever engine is behind it.

`storage.connection.SqlConnection` (SQLite, one aiosqlite connection) and
`storage.pg.PgConnection` (PostgreSQL, an asyncpg pool) both provide it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from storage.dialect import Dialect

Params = Sequence[Any] | dict[str, Any]


class Row(Protocol):
    """A result row: by position or by column name (sqlite3.Row, asyncpg.Record)."""

    def __getitem__(self, key: Any, /) -> Any: ...


class Tx(Protocol):
    """Statements inside one transaction."""

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; the number of rows it changed."""
        ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    async def scalar(self, sql: str, params: Params = ()) -> Any: ...


class Sql(Protocol):
    """A database handle: transactions plus single read statements."""

    dialect: Dialect

    @property
    def name(self) -> str:
        """What to call the database in messages (a path, or a URL without its password)."""
        ...

    def transaction(self, lock: str | None = None) -> AbstractAsyncContextManager[Tx]:
        """A write transaction, rolled back on any exception. `lock` names a resource that
        writers in every process take in turn (SQLite's write lock already covers it)."""
        ...

    def snapshot(self) -> AbstractAsyncContextManager[Tx]:
        """A read-only transaction: several SELECTs that see one consistent state."""
        ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    async def scalar(self, sql: str, params: Params = ()) -> Any: ...

    async def ping(self) -> None:
        """One round trip to the server; raises when it does not answer."""
        ...

    async def close(self, *, optimize: bool = True) -> None: ...
