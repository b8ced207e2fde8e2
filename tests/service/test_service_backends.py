"""The service's storage behaviour on both backends: one usage row per request, the daily quota,
/forget and the statistics, with a real engine and SQLite or a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from service.convert import ConversionRequest
from service.errors import InputExpired, QuotaExceeded
from service.runtime import Runtime
from tests.service.helpers import distinct_png

StartRuntime = Callable[..., Awaitable[Runtime]]


@pytest.fixture(params=["sqlite", "postgresql"])
def start(request: pytest.FixtureRequest, make_runtime: StartRuntime) -> StartRuntime:
    """make_runtime, with ANIMEBOT_DB pointing at a fresh PostgreSQL database for the
    postgresql run."""
    if request.param == "sqlite":
        return make_runtime
    url: str = request.getfixturevalue("pg_url")

    async def on_postgres(**overrides: Any) -> Runtime:
        return await make_runtime(db_url=url, **overrides)

    return on_postgres


def request(user: int, image: bytes | None = None, **kw: Any) -> ConversionRequest:
    return ConversionRequest(platform="test", user_id=user, image=image, **kw)


async def usage(rt: Runtime) -> list[Any]:
    return await rt.db._sql.fetchall("SELECT * FROM usage ORDER BY id")


async def test_quota_forget_and_stats(start: StartRuntime) -> None:
    rt = await start(daily_quota=2)
    assert rt.settings.db.is_sqlite == (rt.db.dialect == "sqlite")
    first = await rt.service.convert(request(1, distinct_png(30)))
    await rt.service.convert(request(1, distinct_png(31)))
    with pytest.raises(QuotaExceeded):
        await rt.service.convert(request(1, distinct_png(32)))
    assert (await rt.service.convert(request(1, distinct_png(30)))).cache_hit  # free repeat
    await rt.service.convert(request(2, distinct_png(33)))

    rows = await usage(rt)
    assert [(r["status"], r["error_kind"], r["cache_hit"]) for r in rows] == [
        ("ok", None, 0),
        ("ok", None, 0),
        ("refused", "quota", 0),
        ("ok", None, 1),
        ("ok", None, 0),
    ]
    summary = await rt.service.stats(days=1)
    assert (summary.total, summary.ok, summary.refused, summary.unique_users) == (5, 4, 1, 2)
    assert summary.cache_hits == 1 and summary.refusal_reasons == {"quota": 1}

    removed = await rt.service.forget("test", 1)
    assert removed["usage"] == 4 and removed["cache"] >= 3 and removed["quota"] == 1
    assert [r["user_hash"] for r in await usage(rt)] == [rt.db.hash_id("test", 2)]
    with pytest.raises(InputExpired):  # the photo kept for the buttons went with the rest
        await rt.service.convert(request(1, input_key=first.input_key))
