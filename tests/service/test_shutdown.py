"""Shutting down with more work than the grace period (issue 15, items 2 and 3): waiting requests
are turned away with ShuttingDown when the grace ends, running ones finish, requests arriving
meanwhile are refused too, and every one of them leaves exactly one usage row."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from service.convert import ConversionReply, ConversionRequest
from service.errors import ShuttingDown
from service.fairqueue import QueueStatus
from service.runtime import Runtime
from tests.service.helpers import HeldConversion, distinct_png, usage_rows

MakeRuntime = Callable[..., Awaitable[Runtime]]


async def test_the_grace_ends_waiting_requests_with_one_refusal_each(
    make_runtime: MakeRuntime,
) -> None:
    rt = await make_runtime(workers=1)
    svc = rt.service
    held = HeldConversion(rt.engine)
    waiting = 0
    all_waiting = asyncio.Event()

    async def on_progress(status: QueueStatus) -> None:
        nonlocal waiting
        if status.position > 0 and status.eta_s >= 0:
            waiting += 1
            if waiting == 6:
                all_waiting.set()

    def start(user: int) -> asyncio.Task[ConversionReply]:
        req = ConversionRequest(
            platform="test", user_id=user, image=distinct_png(300 + user), on_progress=on_progress
        )
        return asyncio.create_task(svc.convert(req))

    running = start(0)
    await asyncio.wait_for(held.started.wait(), 30)
    queued = [start(user) for user in range(1, 7)]
    await asyncio.wait_for(all_waiting.wait(), 30)

    began = time.monotonic()
    draining = asyncio.create_task(svc.drain(timeout_s=0.3))
    results = await asyncio.wait_for(asyncio.gather(*queued, return_exceptions=True), 30)
    assert all(isinstance(r, ShuttingDown) for r in results), results
    assert time.monotonic() - began < 5  # right when the grace ended, not when work ran out
    with pytest.raises(ShuttingDown):  # a request arriving now is refused at once
        await svc.convert(ConversionRequest(platform="test", user_id=9, image=distinct_png(399)))
    assert not running.done()  # the conversion in the engine keeps its slot ...
    held.release()
    assert (await running).data  # ... and answers
    assert await draining

    rows = usage_rows(rt.settings.database)
    outcomes = sorted((r["status"], r["error_kind"] or "") for r in rows)
    assert outcomes == [("ok", "")] + [("refused", "shutting_down")] * 7
    assert svc.queue.running == 0 and svc.queue.waiting == 0


async def test_one_grace_period_for_the_whole_process(make_runtime: MakeRuntime) -> None:
    """Later callers (each front end, then the runtime) share the first deadline."""
    rt = await make_runtime(workers=1, shutdown_grace_s=30)
    svc = rt.service
    svc.begin_shutdown(0.5)
    assert 0 < svc.grace_left() <= 0.5
    svc.begin_shutdown(30)  # does not extend it
    assert svc.grace_left() <= 0.5
    assert await svc.drain(30)  # nothing in flight: at once
