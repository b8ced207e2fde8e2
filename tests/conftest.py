"""Shared fixtures. Tests that need ../shared skip with a clear reason when it is absent.

Real servers (tests/servers.py): `postgres_server` and `redis_server` (one each per session),
`pg_url` (a fresh, empty PostgreSQL database per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from models.pairs import shared_dir
from service.runtime import Runtime
from service.settings import Settings
from tests.servers import PostgresServer, RedisServer, ServerUnavailable

SHARED = shared_dir()
PHOTOS = SHARED / "data" / "photos"
EDGE = PHOTOS / "edge"

needs_shared = pytest.mark.skipif(
    not (SHARED / "data").is_dir(),
    reason=f"shared test material not found at {SHARED} (set ANIMEBOT_SHARED to ../shared)",
)


@pytest.fixture
def photos_dir() -> Path:
    if not PHOTOS.is_dir():
        pytest.skip(f"shared test photos not found at {PHOTOS}")
    return PHOTOS


@pytest.fixture
def edge_dir() -> Path:
    if not EDGE.is_dir():
        pytest.skip(f"shared edge-case inputs not found at {EDGE}")
    return EDGE


@pytest.fixture
async def make_runtime(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Runtime]]]:
    """Start a real Runtime (engine with the installed models, SQLite in tmp_path, service);
    keyword arguments override Settings. Every runtime started is stopped at teardown."""
    started: list[Runtime] = []

    async def start(**overrides: Any) -> Runtime:
        values: dict[str, Any] = {
            "data_dir": tmp_path / f"data{len(started)}",
            "workers": 2,
            "rate_burst": 0,
            "daily_quota": 0,
            "shutdown_grace_s": 10.0,
        }
        values.update(overrides)
        # No warm-up conversion (service.warmup): a second or two per runtime, and no test
        # times a first request. tests/service/test_warmup.py checks the warm-up itself.
        runtime = await Runtime.start(Settings(**values), warm=False)
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        await runtime.stop()


@pytest.fixture
async def runtime(make_runtime: Callable[..., Awaitable[Runtime]]) -> Runtime:
    """A Runtime with default test settings (no rate limits, no quota)."""
    return await make_runtime()


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_Server = TypeVar("_Server", bound=_Stoppable)


def _serving(start: Callable[[], _Server]) -> Iterator[_Server]:
    """Start a real server for the session, skip with its reason when it cannot start, stop it
    afterwards."""
    try:
        server = start()
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL 15 server for the whole session (as `nobody` when we are root)."""
    yield from _serving(PostgresServer.start)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the whole session (no persistence, temporary directory)."""
    yield from _serving(RedisServer.start)


@pytest.fixture
async def pg_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """The URL of a new, empty database on the session's server, dropped after the test."""
    import asyncpg

    name = postgres_server.new_database_name()
    admin = await asyncpg.connect(postgres_server.url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield postgres_server.url(name)
    admin = await asyncpg.connect(postgres_server.url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
