"""Discord `/anime` through the shared queue: a front end (gateway, its own runtime) queues
the job on Redis; a worker runtime with only the token's HTTP session (no gateway) fetches the
attachment and answers through the interaction's follow-up webhook. Both runtimes live in this
process (the Discord stand-in patches discord.py in-process) and share one SQLite file."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.discord import DiscordFrontEnd
from bot.discord.worker import DiscordWorkerOutlet
from service.queue.roles import QueueRoles
from service.runtime import Runtime
from tests.queue.fixtures import redis_url
from tests.service.helpers import distinct_png
from tests.standins.discord_api import DiscordStandIn
from tests.standins.discord_fixtures import discord_standin

__all__ = ["discord_standin", "redis_url"]


def conversions(runtime: Runtime) -> float:
    metric = runtime.service.metrics.requests
    return sum(s.value for m in metric.collect() for s in m.samples if s.name.endswith("_total"))


@contextlib.asynccontextmanager
async def front_and_worker(
    make_runtime: Callable[..., Awaitable[Runtime]],
    standin: DiscordStandIn,
    **shared: Any,
) -> AsyncIterator[tuple[Runtime, Runtime]]:
    """A Discord front end (gateway) and a worker runtime (the token's HTTP session only)
    on one queue and database: (front runtime, worker runtime)."""
    front_rt = await make_runtime(discord_token=standin.token, **shared)
    worker_rt = await make_runtime(discord_token=standin.token, **shared)
    front_queue = QueueRoles(front_rt, "front")
    worker_queue = QueueRoles(worker_rt, "worker")
    await front_queue.start_front()
    front = DiscordFrontEnd(front_rt, guild_ready_timeout=0.05, ready_timeout=10)
    await front.start()
    await front_queue.start_workers()
    outlet = DiscordWorkerOutlet(worker_rt)
    await outlet.start()
    await worker_queue.start_workers()
    try:
        yield front_rt, worker_rt
    finally:
        await worker_queue.stop(5)
        await outlet.stop()
        await front.stop()
        await front_queue.stop(5)


async def test_anime_is_converted_and_answered_by_a_worker(
    make_runtime: Callable[..., Awaitable[Runtime]],
    discord_standin: DiscordStandIn,
    redis_url: str,
    tmp_path: Path,
) -> None:
    shared = {"queue_url": redis_url, "data_dir": tmp_path / "shared"}
    async with front_and_worker(make_runtime, discord_standin, **shared) as (front_rt, worker_rt):
        record = await discord_standin.invoke_slash(
            "anime", attachments={"image": ("p.png", distinct_png(7, side=160), "image/png")}
        )
        (reply,) = await record.wait_followups(1, timeout=60)
        assert len(reply.files) == 1  # the converted picture
        assert conversions(front_rt) == 0  # the front end only queued it
        assert conversions(worker_rt) == 1  # the worker converted and answered
        # Anime-fy: several photos, one answer, also from the worker.
        target = discord_standin.make_message(
            [
                ("a.png", distinct_png(8, side=160), "image/png"),
                ("b.png", distinct_png(9, side=160), "image/png"),
            ]
        )
        record = await discord_standin.invoke_message_command("Anime-fy", target)
        (reply,) = await record.wait_followups(1, timeout=60)
        assert len(reply.files) == 2
        assert conversions(front_rt) == 0 and conversions(worker_rt) == 3
