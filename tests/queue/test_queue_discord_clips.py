"""A Discord clip through the shared queue: the front end (gateway) defers and queues it; a
worker runtime with only the token's HTTP session converts it, edits the percentage into the
deferred "thinking" message by its id (the follow-up webhook: the live interaction is in the
other runtime), deletes it and posts the MP4. Both runtimes live in this process (the Discord
stand-in patches discord.py in-process) and share one SQLite file."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from service.runtime import Runtime
from tests.clipgen import make_mp4, probe_output
from tests.queue.fixtures import redis_url
from tests.queue.test_queue_discord import conversions, front_and_worker
from tests.standins.discord_api import DiscordStandIn
from tests.standins.discord_fixtures import discord_standin

__all__ = ["discord_standin", "redis_url"]


async def test_a_clip_is_converted_by_a_worker_with_progress_in_the_thinking_message(
    make_runtime: Callable[..., Awaitable[Runtime]],
    discord_standin: DiscordStandIn,
    redis_url: str,
    tmp_path: Path,
    photos_dir: Path,
) -> None:
    clip = make_mp4(
        tmp_path / "walk.mp4", photos_dir / "street_shopfront.jpg", seconds=2, fps=12, audio=True
    ).read_bytes()
    # Two frames a fair-queue turn: a dozen progress reports (edits at most every 1.5 s).
    shared = {
        "queue_url": redis_url,
        "data_dir": tmp_path / "shared",
        "clip_photo_pixels": 320 * 240 * 2,
    }
    async with front_and_worker(make_runtime, discord_standin, **shared) as (front_rt, worker_rt):
        record = await discord_standin.invoke_slash(
            "anime", {}, attachments={"image": ("walk.mp4", clip, "video/mp4")}
        )
        deferral = await record.wait_response()
        assert deferral.thinking and not deferral.ephemeral
        (reply,) = await record.wait_followups(1, timeout=120)
        assert not reply.ephemeral
        ((name, data),) = reply.files.items()
        assert name == "anime-walk.mp4"
        info = probe_output(data)
        assert (info["codec"], info["frames"], info["audio"]) == ("h264", 24, "aac")
        shown = [e.content for e in record.edits]
        assert shown and all(text and text.startswith("Animating your clip") for text in shown)
        assert record.deleted_message_ids == [deferral.message_id]  # the progress goes
        assert conversions(front_rt) == 0  # the front end only queued it
        assert conversions(worker_rt) == 1  # the worker converted, showed progress, answered
