"""Fixtures for the storage tests: a fresh database per test, always closed.

`db` and `target` run each test twice: on SQLite (a file in tmp_path) and on PostgreSQL (a
fresh database on the session's real server, tests/servers.py). Tests of SQLite's own file
(bytes on disk, pragmas, WAL) use `sqlite_db` / `db_path`, which are SQLite only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from storage import Database


@dataclass(frozen=True)
class Target:
    """Where a test's database lives; `open()` can be called again to reopen it."""

    backend: str  # "sqlite" | "postgresql"
    location: str | Path
    key_file: Path

    async def open(self, **kwargs: Any) -> Database:
        kwargs.setdefault("key_file", self.key_file)
        return await Database.open(self.location, **kwargs)


async def has_bytes(db: Database, key: str) -> bool:
    """Whether a cache entry's bytes are stored: its file (SQLite) or its bytea row."""
    if db.cache_dir is None:
        found = await db._sql.scalar("SELECT count(*) FROM cache_blobs WHERE key = ?", (key,))
        return bool(found)
    return (db.cache_dir / key[:2] / key).exists()


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "sqlite":
        data = tmp_path / "data"
        return Target("sqlite", data / "animebot.db", data / "animebot.key")
    url: str = request.getfixturevalue("pg_url")
    return Target("postgresql", url, tmp_path / "keys" / "animebot.key")


@pytest.fixture
async def db(target: Target) -> AsyncIterator[Database]:
    database = await target.open()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "animebot.db"


@pytest.fixture
async def sqlite_db(db_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(db_path)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def pg_db(pg_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    """PostgreSQL only: for what only PostgreSQL has (its bytea cache, its version table)."""
    database = await Database.open(pg_url, key_file=tmp_path / "animebot.key")
    try:
        yield database
    finally:
        await database.close()
