"""service.clips: a clip through the real engine and service (fair queue, quota, cache,
progress, cancellation), built from the shared photos."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from core.video import DamagedVideo
from service.clips import ClipRequest, ClipService, chunk_frames, clip_cost
from service.convert import ConversionRequest
from service.errors import QuotaExceeded, RateLimited
from service.runtime import Runtime
from tests.clipgen import make_mp4, probe_output
from tests.service.helpers import distinct_png, usage_rows

MakeRuntime = Callable[..., Awaitable[Runtime]]


@pytest.fixture
def clip(tmp_path: Path, photos_dir: Path) -> bytes:
    path = make_mp4(
        tmp_path / "c.mp4", photos_dir / "street_shopfront.jpg", seconds=1, fps=12, audio=True
    )
    return path.read_bytes()


async def test_clip_comes_back_as_mp4_with_audio_and_is_cached(
    make_runtime: MakeRuntime, clip: bytes
) -> None:
    rt = await make_runtime(daily_quota=1000)
    clips = ClipService(rt.service)
    seen: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        seen.append((done, total))

    reply = await clips.convert(ClipRequest("web", 1, clip, on_frames=progress))
    info = probe_output(reply.clip.data)
    assert (info["width"], info["height"], info["frames"], info["audio"]) == (320, 240, 12, "aac")
    assert not reply.cache_hit and reply.cost == clip_cost_of(reply)
    assert seen[-1] == (12, 12) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert 0.3 < reply.flicker < 3.0
    again = await clips.convert(ClipRequest("web", 1, clip))
    assert again.cache_hit and again.clip.data == reply.clip.data
    rows = usage_rows(rt.settings.database)
    assert [(r["status"], r["cache_hit"]) for r in rows] == [("ok", 0), ("ok", 1)]
    assert await rt.service.db.quota.count(rows[0]["user_hash"], _today()) == reply.cost


def clip_cost_of(reply: Any) -> int:
    return -(-reply.clip.frames * reply.clip.width * reply.clip.height // 1_250_000)


def _today() -> str:
    from service.admission import today_utc

    return today_utc()


async def test_a_clip_counts_as_many_photos_against_the_quota(
    make_runtime: MakeRuntime, clip: bytes
) -> None:
    rt = await make_runtime(daily_quota=1, clip_photo_pixels=100_000)
    with pytest.raises(QuotaExceeded):
        await ClipService(rt.service).convert(ClipRequest("web", 1, clip))
    (row,) = usage_rows(rt.settings.database)
    assert (row["status"], row["error_kind"]) == ("refused", "quota")


async def test_damaged_clip_is_a_typed_error_with_one_row(make_runtime: MakeRuntime) -> None:
    rt = await make_runtime()
    with pytest.raises(DamagedVideo):
        await ClipService(rt.service).convert(
            ClipRequest("web", 1, b"\x1a\x45\xdf\xa3" + bytes(5000))
        )
    (row,) = usage_rows(rt.settings.database)
    assert (row["status"], row["error_kind"]) == ("error", "damaged_video")


async def test_photos_get_in_between_the_chunks_of_a_clip(
    make_runtime: MakeRuntime, tmp_path: Path, photos_dir: Path
) -> None:
    rt = await make_runtime(workers=1, clip_photo_pixels=320 * 240 * 2)
    path = make_mp4(tmp_path / "long.mp4", photos_dir / "street_shopfront.jpg", seconds=2, fps=15)
    progress: list[int] = []
    clip_started = asyncio.Event()
    at_photo: list[int] = []

    async def on_frames(done: int, total: int) -> None:
        progress.append(done)
        clip_started.set()

    async def photo() -> None:
        await clip_started.wait()
        await rt.service.convert(ConversionRequest("web", 2, distinct_png(1)))
        at_photo.append(progress[-1])

    clip_task = asyncio.ensure_future(
        ClipService(rt.service).convert(
            ClipRequest("web", 1, path.read_bytes(), on_frames=on_frames)
        )
    )
    await asyncio.wait_for(photo(), 120)
    reply = await asyncio.wait_for(clip_task, 120)
    assert reply.clip.frames == 30
    assert at_photo[0] <= 6  # the photo waited for one 2-frame chunk or so, not 30 frames


async def test_cancelling_a_clip_frees_its_worker_at_once(
    make_runtime: MakeRuntime, tmp_path: Path, photos_dir: Path
) -> None:
    rt = await make_runtime(workers=1, clip_photo_pixels=320 * 240)
    path = make_mp4(tmp_path / "c.mp4", photos_dir / "street_shopfront.jpg", seconds=3, fps=15)
    started = asyncio.Event()

    async def on_frames(done: int, total: int) -> None:
        started.set()

    task = asyncio.ensure_future(
        ClipService(rt.service).convert(
            ClipRequest("web", 1, path.read_bytes(), on_frames=on_frames)
        )
    )
    await asyncio.wait_for(started.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rt.service.queue.running == 0
    # a photo gets the worker straight away
    reply = await asyncio.wait_for(
        rt.service.convert(ConversionRequest("web", 2, distinct_png(3))), 60
    )
    assert reply.queue_wait_ms < 1000
    kinds = [(r["status"], r["error_kind"]) for r in usage_rows(rt.settings.database)]
    assert ("error", "cancelled") in kinds


def test_cost_is_frames_times_pixels() -> None:
    from core.video import ClipInfo, ClipPlan

    info = ClipInfo("mp4", 640, 480, 0, 30, 10, None, False)
    from fractions import Fraction

    plan = ClipPlan(info, Fraction(30), 300, 640, 480, 10.0, False)
    assert clip_cost(plan, 640 * 480) == 300
    assert clip_cost(plan, 640 * 480 * 10) == 30
    assert chunk_frames(plan, 640 * 480 * 3, workers=2) == 4  # whole rounds on both cores
    assert chunk_frames(plan, 640 * 480, workers=1) == 1


async def test_a_clip_cache_hit_is_free_like_a_photos(
    make_runtime: MakeRuntime, clip: bytes
) -> None:
    """One admission helper for photos and clips: a cache hit gives the rate token back and
    counts as a cache hit, a computed clip keeps its token."""
    rt = await make_runtime(rate_burst=2, rate_per_minute=0.001)
    clips = ClipService(rt.service)
    await clips.convert(ClipRequest("web", 1, clip))  # one token used
    for _ in range(3):  # free: the second token stays
        assert (await clips.convert(ClipRequest("web", 1, clip))).cache_hit
    hits = rt.service.metrics.cache_hits.labels("web")._value.get()
    assert hits == 3
    await rt.service.convert(ConversionRequest("web", 1, distinct_png(3)))  # the second token
    with pytest.raises(RateLimited):
        await rt.service.convert(ConversionRequest("web", 1, distinct_png(4)))
