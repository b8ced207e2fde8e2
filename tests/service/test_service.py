"""The conversion service end to end: a real engine and models, SQLite in a temp folder."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from core.errors import DamagedImage, ImageTooSmall, NotAnImage, UnknownStyle
from core.imageio import decode, encode
from service.convert import ConversionRequest
from service.errors import Busy, InputExpired, InternalError, QuotaExceeded, RateLimited
from service.fairqueue import QueueStatus
from service.runtime import Runtime
from tests.service.helpers import HeldConversion, distinct_png, usage_rows

MakeRuntime = Callable[..., Awaitable[Runtime]]


def request(user: int, image: bytes | None = None, **kw: Any) -> ConversionRequest:
    return ConversionRequest(platform="test", user_id=user, image=image, **kw)


async def test_convert_returns_an_image_and_records_it(runtime: Runtime) -> None:
    reply = await runtime.service.convert(request(1, distinct_png(0), fmt="png"))
    out = decode(reply.data)
    assert (out.width, out.height) == (96, 96) and reply.mime == "image/png"
    assert not reply.cache_hit and reply.style == runtime.engine.registry.default_style()
    (row,) = usage_rows(runtime.settings.database)
    assert (
        row["status"] == "ok"
        and row["style"] == reply.style
        and row["output_bytes"] == len(reply.data)
    )
    assert row["user_hash"] != "1" and len(row["user_hash"]) >= 32  # hashed, never the raw id


async def test_cache_hit_on_a_reencoded_copy_of_the_same_photo(
    runtime: Runtime, edge_dir: Path
) -> None:
    rotated_jpeg = (edge_dir / "exif_orientation6.jpg").read_bytes()
    upright = decode(rotated_jpeg)
    assert upright.width > upright.height  # the EXIF rotation was applied
    as_png = encode(upright.rgb, fmt="png").data  # a different file with the same upright pixels
    first = await runtime.service.convert(request(1, rotated_jpeg, faces=False))
    again = await runtime.service.convert(request(2, as_png, faces=False))
    assert not first.cache_hit and again.cache_hit
    assert again.data == first.data and again.input_key == first.input_key
    rows = usage_rows(runtime.settings.database)
    assert [r["cache_hit"] for r in rows] == [0, 1]
    assert rows[1]["compute_ms"] == 0


async def test_same_bytes_again_and_other_options_are_distinct_entries(runtime: Runtime) -> None:
    photo = distinct_png(1)
    a = await runtime.service.convert(request(1, photo))
    b = await runtime.service.convert(request(1, photo))
    c = await runtime.service.convert(request(1, photo, side_by_side=True))
    assert (a.cache_hit, b.cache_hit, c.cache_hit) == (False, True, False)
    assert decode(c.data).width == 2 * decode(a.data).width


async def test_buttons_reuse_the_cached_input_and_forget_removes_it(runtime: Runtime) -> None:
    first = await runtime.service.convert(request(7, distinct_png(2)))
    other_style = next(s for s in runtime.service.styles() if s != first.style)
    again = await runtime.service.convert(request(7, input_key=first.input_key, style=other_style))
    assert again.style == other_style and not again.cache_hit
    keep = await runtime.service.convert(request(8, distinct_png(3)))
    removed = await runtime.service.forget("test", 7)
    assert removed["usage"] == 2 and removed["cache"] >= 3
    with pytest.raises(InputExpired):
        await runtime.service.convert(request(7, input_key=first.input_key))
    assert (await runtime.service.convert(request(8, input_key=keep.input_key))).cache_hit


async def test_daily_quota_refuses_new_work_but_not_cached_repeats_or_admins(
    make_runtime: MakeRuntime,
) -> None:
    rt = await make_runtime(daily_quota=2)
    await rt.service.convert(request(1, distinct_png(10)))
    await rt.service.convert(request(1, distinct_png(11)))
    with pytest.raises(QuotaExceeded) as refused:
        await rt.service.convert(request(1, distinct_png(12)))
    assert 0 < refused.value.retry_after_s <= 86400
    assert (await rt.service.convert(request(1, distinct_png(10)))).cache_hit
    await rt.service.convert(request(1, distinct_png(13), is_admin=True))
    await rt.service.convert(request(2, distinct_png(14)))  # other people are unaffected
    kinds = [(r["status"], r["error_kind"]) for r in usage_rows(rt.settings.database)]
    assert kinds.count(("refused", "quota")) == 1


async def test_rate_limit_refuses_bursts_with_a_retry_time(make_runtime: MakeRuntime) -> None:
    rt = await make_runtime(rate_burst=2, rate_per_minute=6)
    await rt.service.convert(request(1, distinct_png(20)))
    await rt.service.convert(request(1, distinct_png(21)))
    with pytest.raises(RateLimited) as refused:
        await rt.service.convert(request(1, distinct_png(22)))
    assert 5 <= refused.value.retry_after_s <= 10  # one token every 10 s
    await rt.service.convert(request(1, distinct_png(23), is_admin=True))
    await rt.service.convert(request(2, distinct_png(24)))


async def test_every_outcome_writes_exactly_one_usage_row(
    make_runtime: MakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = await make_runtime(rate_burst=4, rate_per_minute=1)
    svc = rt.service
    await svc.convert(request(1, distinct_png(30)))
    await svc.convert(request(1, distinct_png(30)))
    with pytest.raises(NotAnImage):
        await svc.convert(request(1, b"%PDF-1.7 not a photo"))
    with pytest.raises(UnknownStyle):
        await svc.convert(request(2, distinct_png(31), style="picasso"))

    with pytest.raises(RateLimited):  # two tokens left of the four (the cache hit was free)
        for seed in (33, 34, 35):
            await svc.convert(request(1, distinct_png(seed)))

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("model exploded")

    monkeypatch.setattr(rt.engine, "convert", broken)
    with pytest.raises(InternalError) as internal:
        await svc.convert(request(2, distinct_png(32)))
    rows = usage_rows(rt.settings.database)
    outcomes = [(r["status"], r["error_kind"], r["cache_hit"]) for r in rows]
    assert outcomes == [
        ("ok", None, 0),
        ("ok", None, 1),
        ("error", "not_image", 0),
        ("error", "unknown_style", 0),
        ("ok", None, 0),
        ("ok", None, 0),
        ("refused", "rate_limited", 0),
        ("error", "internal", 0),
    ]
    assert rows[-1]["request_id"] == internal.value.request_id


@pytest.mark.parametrize("name", ["truncated.jpg", "tiny_8x8.png", "not_an_image.jpg", "empty.jpg"])
async def test_bad_edge_files_are_typed_errors(runtime: Runtime, edge_dir: Path, name: str) -> None:
    expected = {"truncated.jpg": DamagedImage, "tiny_8x8.png": ImageTooSmall}.get(name, Exception)
    with pytest.raises(expected) as err:
        await runtime.service.convert(request(1, (edge_dir / name).read_bytes()))
    assert getattr(err.value, "code", "") in {"damaged", "too_small", "not_image", "empty"}
    (row,) = usage_rows(runtime.settings.database)
    assert row["status"] == "error" and row["error_kind"] == err.value.code  # type: ignore[attr-defined]


async def test_fair_queue_lets_a_newcomer_in_after_one_job(make_runtime: MakeRuntime) -> None:
    """User A sends 20 photos at once; user B's one photo waits for at most one of A's."""
    rt = await make_runtime(workers=1)
    svc = rt.service
    held = HeldConversion(rt.engine)
    finished: list[str] = []
    queued, b_queued = asyncio.Event(), asyncio.Event()
    waiting: set[int] = set()

    def progress(i: int) -> Callable[[QueueStatus], Awaitable[None]]:
        async def cb(status: QueueStatus) -> None:
            if status.position > 0 and i == 20:
                b_queued.set()
            elif status.position > 0:
                waiting.add(i)
                if len(waiting) == 19:
                    queued.set()

        return cb

    async def run(user: int, i: int, seed: int) -> None:
        await svc.convert(request(user, distinct_png(seed), on_progress=progress(i)))
        finished.append(f"{'AB'[user - 1]}{i}")

    a_jobs = [asyncio.create_task(run(1, i, 100 + i)) for i in range(20)]
    await asyncio.wait_for(queued.wait(), 60)  # A's first runs (held), the other 19 wait
    b_job = asyncio.create_task(run(2, 20, 500))
    await asyncio.wait_for(b_queued.wait(), 60)
    held.release()
    await asyncio.gather(*a_jobs, b_job)
    assert finished[0].startswith("A") and finished[1] == "B20", finished


async def test_queue_positions_count_down_and_a_full_queue_is_busy(
    make_runtime: MakeRuntime,
) -> None:
    rt = await make_runtime(workers=1, queue_max=2)
    svc = rt.service
    held = HeldConversion(rt.engine)
    seen: list[int] = []
    first_waiting = asyncio.Event()

    async def track(status: QueueStatus) -> None:
        seen.append(status.position)
        if status.position > 0:
            first_waiting.set()

    other_waiting = asyncio.Event()

    async def note(status: QueueStatus) -> None:
        if status.position > 0:
            other_waiting.set()

    running = asyncio.create_task(svc.convert(request(1, distinct_png(40))))
    await asyncio.wait_for(held.started.wait(), 30)
    tracked = asyncio.create_task(svc.convert(request(2, distinct_png(41), on_progress=track)))
    await asyncio.wait_for(first_waiting.wait(), 30)
    third = asyncio.create_task(svc.convert(request(3, distinct_png(42), on_progress=note)))
    await asyncio.wait_for(other_waiting.wait(), 30)
    with pytest.raises(Busy) as busy:
        await svc.convert(request(4, distinct_png(43)))
    assert busy.value.retry_after_s > 0
    held.release()
    await asyncio.gather(running, tracked, third)
    assert seen[0] >= 1 and seen[-1] == 0 and seen == sorted(seen, reverse=True)


async def test_cancelled_request_leaves_one_clean_row_and_frees_its_place(
    make_runtime: MakeRuntime,
) -> None:
    rt = await make_runtime(workers=1)
    svc = rt.service
    held = HeldConversion(rt.engine)
    queued = asyncio.Event()

    async def on_progress(status: QueueStatus) -> None:
        if status.position > 0:
            queued.set()

    blocker = asyncio.create_task(svc.convert(request(1, distinct_png(50))))
    await asyncio.wait_for(held.started.wait(), 30)
    victim = asyncio.create_task(svc.convert(request(2, distinct_png(51), on_progress=on_progress)))
    await asyncio.wait_for(queued.wait(), 30)
    victim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await victim
    held.release()
    await blocker
    assert svc.queue.waiting == 0 and svc.queue.running == 0
    after = await svc.convert(request(3, distinct_png(52)))
    assert not after.cache_hit
    kinds = sorted((r["status"], r["error_kind"] or "") for r in usage_rows(rt.settings.database))
    assert kinds == [("error", "cancelled"), ("ok", ""), ("ok", "")]


async def test_drain_waits_for_running_and_queued_work_and_then_refuses(
    make_runtime: MakeRuntime,
) -> None:
    rt = await make_runtime(workers=1)
    held = HeldConversion(rt.engine)
    queued = asyncio.Event()

    async def on_progress(status: QueueStatus) -> None:
        if status.position > 0:
            queued.set()

    running = asyncio.create_task(rt.service.convert(request(1, distinct_png(60))))
    await asyncio.wait_for(held.started.wait(), 30)
    waiting = asyncio.create_task(
        rt.service.convert(request(2, distinct_png(61), on_progress=on_progress))
    )
    await asyncio.wait_for(queued.wait(), 30)
    draining = asyncio.create_task(rt.service.drain(timeout_s=60))
    held.release()
    assert await draining
    assert running.done() and waiting.done()
    assert (await running).data and (await waiting).data
    with pytest.raises(Busy):
        await rt.service.convert(request(3, distinct_png(62)))
