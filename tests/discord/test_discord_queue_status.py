"""While a photo waits its turn, Discord shows its place in the queue (as Telegram does): the
deferred "thinking…" response is edited with the position and ETA the service reports, and
deleted once the result is posted."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.discord import DiscordFrontEnd
from i18n import t
from service.runtime import Runtime
from tests.discord.conftest import StartBot
from tests.discord.test_discord_anime import WAIT_S, anime, result
from tests.standins.discord_api import DiscordStandIn


@asynccontextmanager
async def all_workers_busy(runtime: Runtime) -> AsyncIterator[asyncio.Event]:
    """Hold every slot of the service's fair queue until the yielded event is set, so photos
    sent meanwhile wait their turn."""
    release = asyncio.Event()
    held = [asyncio.Event() for _ in range(runtime.settings.workers)]

    async def hold(n: int) -> None:
        async with runtime.service.queue.slot(f"someone-else-{n}"):
            held[n].set()
            await release.wait()

    tasks = [asyncio.create_task(hold(n)) for n in range(len(held))]
    for event in held:
        await event.wait()
    try:
        yield release
    finally:
        release.set()
        await asyncio.gather(*tasks)


def queued(lang: str) -> re.Pattern[str]:
    template = t("dc.status.queued", lang, position="POSITION", seconds="SECONDS")
    pattern = re.escape(template).replace("POSITION", r"(\d+)").replace("SECONDS", r"(\d+)")
    return re.compile(pattern)


async def test_a_waiting_photo_shows_its_place_in_the_queue(
    start_bot: StartBot, discord_standin: DiscordStandIn, street: bytes
) -> None:
    bot = await start_bot(workers=1)
    async with all_workers_busy(bot.runtime) as release:
        record = await anime(discord_standin, street, locale="zh-TW")
        deferral = await record.wait_response()
        assert deferral.thinking and not deferral.ephemeral
        (status,) = await record.wait_edits(1, timeout=WAIT_S)
        assert status.message_id == deferral.message_id  # the "thinking" message, edited
        found = queued("zh-TW").fullmatch(status.payload["content"])
        assert found is not None, status.payload["content"]
        assert found.group(1) == "1"  # one job ahead of it
        assert record.followups == []  # still waiting
        release.set()  # its turn comes
    reply, _, _ = await result(record)
    # Any later edit said it is being drawn (shown only when the drawing outlasts the 1 s
    # between edits).
    assert all(e.payload["content"] == t("dc.status.working", "zh-TW") for e in record.edits[1:])
    assert reply.message_id != deferral.message_id  # the result is a new message ...
    await discord_standin.wait_until(
        lambda: record.deleted_message_ids == [deferral.message_id], WAIT_S, "status deleted"
    )  # ... and the status goes, after it
    routes = [r.route for r in discord_standin.requests]
    posted = max(i for i, r in enumerate(routes) if r.startswith("POST /webhooks/"))
    deleted = max(i for i, r in enumerate(routes) if r.startswith("DELETE /webhooks/"))
    assert posted < deleted
    assert record.original_message is None


async def test_a_photo_converted_at_once_gets_no_status(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, street: bytes
) -> None:
    record = await anime(discord_standin, street)
    deferral = await record.wait_response()
    reply, _, _ = await result(record)
    assert reply.message_id == deferral.message_id  # the result replaced "thinking", as before
    assert record.edits == [] and record.deleted_message_ids == []
