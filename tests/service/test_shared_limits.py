"""Limits that hold across processes, and one usage row per request, on both backends.

Two runtimes (two engines, two services, two job runners) share one database, as a front end
and a worker, or two workers, do: a SQLite file, or a real PostgreSQL server. The daily quota
is taken atomically (`db.quota.try_take`) before computing and given back when no result comes
of it; rate limits are token buckets in the database (`db.rates`); a job run again after its
worker died replaces its usage row instead of adding a second one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from service.admission import today_utc
from service.clips import ClipRequest
from service.convert import ConversionRequest
from service.errors import InternalError, QuotaExceeded, RateLimited
from service.runtime import Runtime
from tests.clipgen import make_mp4
from tests.service.helpers import distinct_png
from tests.service.test_lifecycle import Recorder, job_of

StartRuntime = Callable[..., Awaitable[Runtime]]


@pytest.fixture(params=["sqlite", "postgresql"])
def shared(
    request: pytest.FixtureRequest, make_runtime: StartRuntime, tmp_path: Path
) -> StartRuntime:
    """Start runtimes that all open the same database with the same id key file."""
    if request.param == "sqlite":
        target = str(tmp_path / "shared.sqlite3")
    else:
        target = request.getfixturevalue("pg_url")

    async def start(**overrides: Any) -> Runtime:
        return await make_runtime(
            db_url=target, id_key_file=tmp_path / "animebot.key", workers=1, **overrides
        )

    return start


def request_of(user: int, image: bytes, **kw: Any) -> ConversionRequest:
    return ConversionRequest(platform="test", user_id=user, image=image, **kw)


async def usage(rt: Runtime) -> list[Any]:
    return await rt.db._sql.fetchall("SELECT * FROM usage ORDER BY id")


async def test_the_last_quota_unit_goes_to_one_of_two_workers(shared: StartRuntime) -> None:
    first, second = await shared(daily_quota=1), await shared(daily_quota=1)
    results = await asyncio.gather(
        first.service.convert(request_of(1, distinct_png(40))),
        second.service.convert(request_of(1, distinct_png(41))),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["ConversionReply", "QuotaExceeded"]
    user = first.db.hash_id("test", 1)
    assert await first.db.quota.count(user, today_utc()) == 1
    rows = await usage(first)
    assert sorted((r["status"], r["error_kind"]) for r in rows) == [
        ("ok", None),
        ("refused", "quota"),
    ]


async def test_a_failed_computation_gives_its_quota_unit_back(
    shared: StartRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = await shared(daily_quota=1)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the engine broke")

    with monkeypatch.context() as patch:
        patch.setattr(rt.engine, "convert", broken)
        with pytest.raises(InternalError):
            await rt.service.convert(request_of(1, distinct_png(42)))
    assert await rt.db.quota.count(rt.db.hash_id("test", 1), today_utc()) == 0
    assert (await rt.service.convert(request_of(1, distinct_png(42)))).data  # still allowed
    with pytest.raises(QuotaExceeded):
        await rt.service.convert(request_of(1, distinct_png(43)))


async def test_rate_limits_hold_across_workers_and_cache_hits_are_free(
    shared: StartRuntime,
) -> None:
    first = await shared(rate_burst=2, rate_per_minute=0.001)
    second = await shared(rate_burst=2, rate_per_minute=0.001)
    photo = distinct_png(44)
    await first.service.convert(request_of(1, photo))  # one token used
    assert (await second.service.convert(request_of(1, photo))).cache_hit  # refunded
    await second.service.convert(request_of(1, distinct_png(45)))  # the second token
    with pytest.raises(RateLimited) as refused:
        await first.service.convert(request_of(1, distinct_png(46)))
    assert refused.value.retry_after_s > 60
    await first.service.convert(request_of(2, distinct_png(46)))  # someone else: own bucket


async def test_a_job_run_again_after_a_worker_died_keeps_one_usage_row(
    shared: StartRuntime,
) -> None:
    first, second = await shared(), await shared()
    recorders = [Recorder(), Recorder()]
    for rt, recorder in zip((first, second), recorders, strict=True):
        rt.runner.outlets.register("test", recorder.outlet)
    job = job_of(first.runner, distinct_png(47))
    # The first worker converted and recorded, then died before the job was marked done:
    # the queue hands the same job to another worker.
    assert await first.runner.execute(job) is not None
    assert await second.runner.execute(job) is not None
    rows = [r for r in await usage(first) if r["request_id"] == job.request_id]
    assert [(r["status"], r["cache_hit"]) for r in rows] == [("ok", 1)]  # the later run's
    # A later outcome (its result could not be delivered) changes that one row.
    await second.service.update_outcome("test", job.request_id, "error", "delivery_failed")
    rows = [r for r in await usage(first) if r["request_id"] == job.request_id]
    assert [(r["status"], r["error_kind"]) for r in rows] == [("error", "delivery_failed")]


def clip_of(tmp_path: Path, photos_dir: Path, name: str) -> bytes:
    """A 12-frame 320x240 clip: 921,600 pixels, 10 photos at `clip_photo_pixels=100_000`."""
    path = make_mp4(tmp_path / f"{name}.mp4", photos_dir / f"{name}.jpg", seconds=1, fps=12)
    return path.read_bytes()


async def test_the_last_clip_quota_goes_to_one_of_two_workers(
    shared: StartRuntime, tmp_path: Path, photos_dir: Path
) -> None:
    """Each clip takes its whole cost (10) atomically before computing: of two clips racing
    for a quota of 15, one is converted and one refused. Counting first and adding the cost
    after the conversion would let both through (20 of 15)."""
    first = await shared(daily_quota=15, clip_photo_pixels=100_000)
    second = await shared(daily_quota=15, clip_photo_pixels=100_000)
    results = await asyncio.gather(
        first.clips.convert(
            ClipRequest("test", 1, clip_of(tmp_path, photos_dir, "street_shopfront"))
        ),
        second.clips.convert(
            ClipRequest("test", 1, clip_of(tmp_path, photos_dir, "city_tokyo_tower"))
        ),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["ClipReply", "QuotaExceeded"]
    assert await first.db.quota.count(first.db.hash_id("test", 1), today_utc()) == 10
    rows = await usage(first)
    assert sorted((r["status"], r["error_kind"]) for r in rows) == [
        ("ok", None),
        ("refused", "quota"),
    ]


async def test_a_cancelled_or_failed_clip_gives_its_quota_back(
    shared: StartRuntime, tmp_path: Path, photos_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = await shared(daily_quota=15, clip_photo_pixels=100_000)
    user = rt.db.hash_id("test", 1)
    data = clip_of(tmp_path, photos_dir, "street_shopfront")
    started = asyncio.Event()

    async def on_frames(done: int, total: int) -> None:
        started.set()

    task = asyncio.ensure_future(
        rt.clips.convert(ClipRequest("test", 1, data, on_frames=on_frames))
    )
    await asyncio.wait_for(started.wait(), 120)
    assert await rt.db.quota.count(user, today_utc()) == 10  # taken before computing
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await rt.db.quota.count(user, today_utc()) == 0

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the encoder broke")

    with monkeypatch.context() as patch:
        patch.setattr(rt.clips, "_run", broken)
        with pytest.raises(RuntimeError):
            await rt.clips.convert(ClipRequest("test", 1, data))
    assert await rt.db.quota.count(user, today_utc()) == 0
    assert (await rt.clips.convert(ClipRequest("test", 1, data))).clip.frames == 12
    assert await rt.db.quota.count(user, today_utc()) == 10
