"""The web page holds a bounded amount of upload bytes in memory at once."""

from __future__ import annotations

import asyncio

import pytest

from service.convert import ConversionReply, ConversionRequest
from tests.service.helpers import HeldConversion
from tests.web.helpers import MakeClient, form, tiny_png
from web.app import STATE
from web.uploads import UPLOADS, UploadBudget


async def test_uploads_beyond_the_budget_wait_unread(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for one upload, three sent at once enter the service one after the other;
    the two waiting have not been read (nothing of them is in the server's memory)."""
    client = await make_client(workers=1)
    app = client.app
    assert app is not None
    runtime = app[STATE].runtime
    photos = [tiny_png(seed, size=128) for seed in (1, 2, 3)]
    budget = app[UPLOADS]
    budget.limit = min(map(len, photos))  # each request's body is larger: one at a time
    inside = 0
    most_inside = 0
    convert = runtime.service.convert

    async def counted(request: ConversionRequest) -> ConversionReply:
        nonlocal inside, most_inside
        inside += 1
        most_inside = max(most_inside, inside)
        try:
            return await convert(request)
        finally:
            inside -= 1

    monkeypatch.setattr(runtime.service, "convert", counted)
    held = HeldConversion(runtime.engine)
    posts = [asyncio.create_task(client.post("/api/convert", data=form(photo))) for photo in photos]
    await asyncio.wait_for(held.started.wait(), 30)
    await asyncio.wait_for(budget.wait_until(lambda b: b.waiting == 2), 30)
    assert inside == 1 and budget.held == budget.limit
    held.release()
    responses = await asyncio.gather(*posts)
    assert [r.status for r in responses] == [200, 200, 200]
    assert most_inside == 1 and budget.held == 0 and budget.waiting == 0


async def test_the_default_budget_admits_many_typical_photos_at_once(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    app = client.app
    assert app is not None
    budget = app[UPLOADS]
    body_limit = app[STATE].body_limit
    assert budget.limit >= 2 * body_limit  # the two largest uploads, or ~20 typical photos


async def test_a_waiting_upload_that_is_cancelled_gives_its_turn_away() -> None:
    budget = UploadBudget(10)
    first_in = asyncio.Event()
    release_first = asyncio.Event()

    async def holder() -> None:
        async with budget.hold(10):
            first_in.set()
            await release_first.wait()

    async def waiter(size: int, done: list[int]) -> None:
        async with budget.hold(size):
            done.append(size)

    done: list[int] = []
    first = asyncio.create_task(holder())
    await first_in.wait()
    cancelled = asyncio.create_task(waiter(8, done))
    later = asyncio.create_task(waiter(4, done))
    await budget.wait_until(lambda b: b.waiting == 2)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert budget.waiting == 1
    release_first.set()
    await asyncio.gather(first, later)
    assert done == [4] and budget.held == 0
