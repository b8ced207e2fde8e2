"""Identical work done once (coalescing) and the memory held by jobs in flight."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import core.imageio
from core.imageio import DecodedImage
from service.convert import ConversionRequest
from service.fairqueue import QueueStatus
from service.runtime import Runtime
from tests.service.helpers import HeldConversion, distinct_png, usage_rows

MakeRuntime = Callable[..., Awaitable[Runtime]]


def request(user: int, image: bytes | None = None, **kw: Any) -> ConversionRequest:
    return ConversionRequest(platform="test", user_id=user, image=image, **kw)


class CountedConversions:
    """Counts the engine's conversions (installed under HeldConversion, so every call)."""

    def __init__(self, engine: Any) -> None:
        self._convert = engine.convert
        self.calls = 0
        engine.convert = self._counted

    async def _counted(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await self._convert(*args, **kwargs)


class Waiting:
    """Progress callbacks that note who is waiting in the queue; `all_waiting(n)` returns once
    n distinct requests have reported a place in the queue."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self._changed = asyncio.Event()

    def callback(self, who: int) -> Callable[[QueueStatus], Awaitable[None]]:
        async def report(status: QueueStatus) -> None:
            if status.position > 0:
                self.seen.add(who)
                self._changed.set()

        return report

    async def all_waiting(self, count: int) -> None:
        while len(self.seen) < count:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), 60)


async def test_identical_concurrent_requests_are_converted_once(make_runtime: MakeRuntime) -> None:
    """4 people send the same photo while the worker is busy: one conversion, 4 replies, 4
    usage rows (one computed, three answered by it as cache hits)."""
    rt = await make_runtime(workers=1)
    svc = rt.service
    counted = CountedConversions(rt.engine)
    held = HeldConversion(rt.engine)
    blocker = asyncio.create_task(svc.convert(request(9, distinct_png(70))))
    await asyncio.wait_for(held.started.wait(), 30)
    waiting = Waiting()
    photo = distinct_png(71)
    same = [
        asyncio.create_task(svc.convert(request(u, photo, on_progress=waiting.callback(u))))
        for u in (1, 2, 3, 4)
    ]
    await waiting.all_waiting(4)  # every one of them is in, waiting for the worker
    held.release()
    await blocker
    replies = await asyncio.gather(*same)
    assert counted.calls == 2  # the blocker and the shared photo, once
    assert len({r.data for r in replies}) == 1
    assert sorted(r.coalesced for r in replies) == [False, True, True, True]
    rows = usage_rows(rt.settings.database)[1:]
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    assert sorted(r["cache_hit"] for r in rows) == [0, 1, 1, 1]
    computed = next(r for r in rows if not r["cache_hit"])
    assert computed["compute_ms"] > 0
    assert all(r["compute_ms"] == 0 for r in rows if r["cache_hit"])
    assert (await svc.convert(request(5, photo))).cache_hit  # and it was stored


async def test_the_first_request_cancelled_leaves_the_work_to_the_others(
    make_runtime: MakeRuntime,
) -> None:
    rt = await make_runtime(workers=1)
    svc = rt.service
    counted = CountedConversions(rt.engine)
    held = HeldConversion(rt.engine)
    blocker = asyncio.create_task(svc.convert(request(9, distinct_png(72))))
    await asyncio.wait_for(held.started.wait(), 30)
    waiting = Waiting()
    photo = distinct_png(73)
    first = asyncio.create_task(svc.convert(request(1, photo, on_progress=waiting.callback(1))))
    await waiting.all_waiting(1)
    second = asyncio.create_task(svc.convert(request(2, photo, on_progress=waiting.callback(2))))
    await waiting.all_waiting(2)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    held.release()
    await blocker
    reply = await second
    assert reply.data and counted.calls == 2
    rows = {r["user_hash"]: r for r in usage_rows(rt.settings.database)}
    cancelled = rows[rt.db.hash_id("test", 1)]
    took_over = rows[rt.db.hash_id("test", 2)]
    assert (cancelled["status"], cancelled["error_kind"]) == ("error", "cancelled")
    # the request still there counts as the one that computed it
    assert took_over["status"] == "ok" and not took_over["cache_hit"]
    assert took_over["compute_ms"] > 0 and not reply.coalesced
    assert svc.queue.running == 0 and len(svc.computing) == 0


async def test_when_every_request_leaves_the_shared_work_stops(
    make_runtime: MakeRuntime,
) -> None:
    rt = await make_runtime(workers=1)
    svc = rt.service
    counted = CountedConversions(rt.engine)
    held = HeldConversion(rt.engine)
    blocker = asyncio.create_task(svc.convert(request(9, distinct_png(74))))
    await asyncio.wait_for(held.started.wait(), 30)
    waiting = Waiting()
    photo = distinct_png(75)
    both = [
        asyncio.create_task(svc.convert(request(u, photo, on_progress=waiting.callback(u))))
        for u in (1, 2)
    ]
    await waiting.all_waiting(2)
    for task in both:
        task.cancel()
    await asyncio.gather(*both, return_exceptions=True)
    assert svc.queue.waiting == 0  # its place in the queue freed
    assert len(svc.computing) == 1  # the blocker's job only
    held.release()
    await blocker
    assert counted.calls == 1  # only the blocker was converted
    assert len(svc.computing) == 0


async def test_identical_uploads_arriving_together_are_decoded_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes = 0
    real = runtime.engine._decode

    def counted(data: Any) -> DecodedImage:
        nonlocal decodes
        decodes += not isinstance(data, DecodedImage)  # pixels handed on are not decoded
        return real(data)

    monkeypatch.setattr(runtime.engine, "_decode", counted)
    photo = distinct_png(76)
    replies = await asyncio.gather(*(runtime.service.convert(request(u, photo)) for u in range(4)))
    assert len({r.input_key for r in replies}) == 1
    assert decodes <= 2  # identified once (plus at most once more inside the worker slot)


class AliveDecodes:
    """Every DecodedImage the decoder makes, weakly: how many are still in memory."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._alive = 0
        real = core.imageio._result

        def tracked(*args: Any, **kwargs: Any) -> DecodedImage:
            img = real(*args, **kwargs)
            self._alive += 1
            weakref.finalize(img, self._gone)
            return img

        monkeypatch.setattr(core.imageio, "_result", tracked)

    def _gone(self) -> None:
        self._alive -= 1

    def count(self) -> int:
        gc.collect()
        return self._alive


async def test_jobs_waiting_in_the_queue_hold_no_decoded_pixels(
    make_runtime: MakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight photos identified while the worker is still free (all of them would start at
    once, as far as each can tell): once one runs and seven wait, only the running one's
    pixels are in memory; the waiting ones keep their compressed upload."""
    rt = await make_runtime(workers=1)
    svc = rt.service
    alive = AliveDecodes(monkeypatch)
    count = 8
    identified = 0
    all_identified = asyncio.Event()
    real_get = svc.db.cache.get

    async def get_after_everyone(key: str) -> Any:  # the cache lookup right after identifying
        nonlocal identified
        identified += 1
        if identified >= count:
            all_identified.set()
        await all_identified.wait()
        return await real_get(key)

    monkeypatch.setattr(svc.db.cache, "get", get_after_everyone)
    held = HeldConversion(rt.engine)
    waiting = Waiting()
    jobs = [
        asyncio.create_task(
            svc.convert(request(u, distinct_png(80 + u), on_progress=waiting.callback(u)))
        )
        for u in range(count)
    ]
    await asyncio.wait_for(held.started.wait(), 60)
    await waiting.all_waiting(count - 1)
    assert svc.queue.waiting == count - 1
    assert alive.count() <= svc.queue.workers  # the running job's, at most
    held.release()
    await asyncio.gather(*jobs)
    assert alive.count() == 0
