"""Web fixtures: a real Runtime (models, SQLite in tmp_path, service) behind `make_app`, served
by aiohttp's own TestServer (pytest-aiohttp is not needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.runtime import Runtime
from tests.web.helpers import MakeClient
from web import make_app


@pytest.fixture
async def make_client(
    make_runtime: Callable[..., Awaitable[Runtime]],
) -> AsyncIterator[MakeClient]:
    """`await make_client(**settings_overrides)`: a client of a fresh app and runtime."""
    clients: list[TestClient[Any, Any]] = []

    async def make(**overrides: Any) -> TestClient[Any, Any]:
        runtime = await make_runtime(**overrides)
        client: TestClient[Any, Any] = TestClient(TestServer(make_app(runtime)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[Any, Any]:
    return await make_client()
