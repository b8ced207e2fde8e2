"""Starting and stopping the Discord front end: clear start errors, one command sync (global or
to the test guild), in-flight interactions answered on stop, the token never logged."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.discord import DiscordFrontEnd, DiscordStartError
from bot.discord.__main__ import serve
from i18n import t
from service.runtime import Runtime
from service.settings import Settings
from tests.standins.discord_api import DiscordStandIn

StartBot = Callable[..., Awaitable[DiscordFrontEnd]]
ROOT = Path(__file__).resolve().parents[2]


async def test_a_wrong_token_is_one_clear_line_without_the_token(
    start_bot: StartBot, discord_standin: DiscordStandIn
) -> None:
    secret = "not-the-right-token.abc123"
    with pytest.raises(DiscordStartError) as caught:
        await start_bot(discord_token=secret)
    message = str(caught.value)
    assert "DISCORD_TOKEN" in message and "\n" not in message and secret not in message
    assert discord_standin.syncs == [] and discord_standin.identify_count == 0
    leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("discord")]
    assert leftover == []


async def test_refused_command_registration_is_one_clear_line(
    start_bot: StartBot, discord_standin: DiscordStandIn
) -> None:
    discord_standin.fail_next(
        r"^PUT /applications/", status=403, code=50001, message="Missing Access"
    )
    with pytest.raises(DiscordStartError, match=r"applications\.commands") as caught:
        await start_bot()
    assert "\n" not in str(caught.value)
    assert discord_standin.identify_count == 0  # stopped before connecting the gateway


async def test_a_missing_token_is_refused_before_connecting(
    make_runtime: Callable[..., Awaitable[Runtime]], discord_standin: DiscordStandIn
) -> None:
    frontend = DiscordFrontEnd(await make_runtime(discord_token=""))
    with pytest.raises(DiscordStartError, match="DISCORD_TOKEN is not set"):
        await frontend.start()
    assert discord_standin.requests == []
    await frontend.stop()  # harmless when never started


async def test_guild_id_syncs_to_that_guild_only(
    start_bot: StartBot, discord_standin: DiscordStandIn, street: bytes
) -> None:
    await start_bot(discord_guild_id=str(discord_standin.guild_id))
    (sync,) = await discord_standin.wait_for_sync()
    assert sync.guild_id == discord_standin.guild_id
    assert sorted(sync.names) == ["Anime-fy", "anime", "stats", "styles"]
    assert discord_standin.commands(None) == []  # nothing global
    record = await discord_standin.invoke_slash(
        "anime", attachments={"image": ("p.jpg", street, "image/jpeg")}
    )
    assert record.data["guild_id"] == str(discord_standin.guild_id)
    (reply,) = await record.wait_followups(1, timeout=30)
    assert len(reply.files) == 1


async def test_stop_answers_interactions_in_flight_and_refuses_new_ones(
    start_bot: StartBot,
    discord_standin: DiscordStandIn,
    street: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bot = await start_bot()
    service = bot.runtime.service
    started, release = asyncio.Event(), asyncio.Event()
    convert = service.convert

    async def held(request: Any) -> Any:
        started.set()
        await release.wait()
        return await convert(request)

    monkeypatch.setattr(service, "convert", held)
    busy = await discord_standin.invoke_slash(
        "anime", attachments={"image": ("p.jpg", street, "image/jpeg")}
    )
    async with asyncio.timeout(10):
        await started.wait()
    stopping = asyncio.create_task(bot.stop())
    async with asyncio.timeout(10):
        await bot.stopping.wait()

    late = await discord_standin.invoke_slash("stats", locale="ru")
    refusal = await late.wait_response()
    assert refusal.ephemeral and refusal.content == t("dc.shutting_down", "ru")
    assert not stopping.done()  # still waiting for the conversion in flight

    release.set()
    (reply,) = await busy.wait_followups(1, timeout=30)
    assert not reply.ephemeral and len(reply.files) == 1
    async with asyncio.timeout(15):
        await stopping
    assert bot.client is None and not bot.running


async def test_stop_gives_up_on_interactions_after_the_grace_period(
    start_bot: StartBot,
    discord_standin: DiscordStandIn,
    street: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bot = await start_bot(shutdown_grace_s=0.2)
    started = asyncio.Event()

    async def stuck(request: Any) -> Any:
        started.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(bot.runtime.service, "convert", stuck)
    record = await discord_standin.invoke_slash(
        "anime", attachments={"image": ("p.jpg", street, "image/jpeg")}
    )
    async with asyncio.timeout(10):
        await started.wait()
    async with asyncio.timeout(10):
        await bot.stop()
    assert bot.client is None
    # Cut short, the person is told privately instead of waiting on "thinking…" forever: the
    # picture is posted when the bot is back (the job stays stored for the next start).
    deferral = await record.wait_response()
    (reply,) = await record.wait_followups(1)
    assert reply.ephemeral and reply.content == t("job.deferred_interaction", "en")
    assert record.deleted_message_ids == [deferral.message_id]
    (kept,) = await bot.runtime.service.jobs.pending("discord")
    assert kept.reply["token"] == record.token and kept.reply.get("thinking_id") is None


async def test_the_token_is_never_logged(
    start_bot: StartBot,
    discord_standin: DiscordStandIn,
    street: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await start_bot()
    record = await discord_standin.invoke_slash(
        "anime", attachments={"image": ("p.jpg", street, "image/jpeg")}
    )
    await record.wait_followups(1, timeout=30)
    await bot.stop()
    identify = next(f for f in discord_standin.gateway_received if f["op"] == 2)
    assert identify["d"]["token"] == discord_standin.token  # it was used ...
    assert len(caplog.records) > 20  # ... with discord.py's debug logging on ...
    for rec in caplog.records:  # ... and never written to the log
        assert discord_standin.token not in rec.getMessage()
    assert discord_standin.token not in caplog.text
    assert discord_standin.token not in repr(bot.runtime.settings)


async def test_serve_runs_the_bot_alone_until_told_to_stop(
    discord_standin: DiscordStandIn, tmp_path: Path, street: bytes
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        workers=2,
        rate_burst=0,
        daily_quota=0,
        discord_token=discord_standin.token,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(
        serve(settings, stop, install_signals=False, guild_ready_timeout=0.05)
    )
    await discord_standin.wait_for_sync(timeout=30)
    record = await discord_standin.invoke_slash(
        "anime", attachments={"image": ("p.jpg", street, "image/jpeg")}, timeout=30
    )
    (reply,) = await record.wait_followups(1, timeout=30)
    assert len(reply.files) == 1
    stop.set()
    async with asyncio.timeout(30):
        await running


def test_python_m_bot_discord_without_a_token_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "ANIMEBOT_"))}
    env["ANIMEBOT_DATA"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "bot.discord"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2  # a missing setting: the same code as python -m bot.telegram
    assert done.stderr.strip().splitlines() == [
        "discord: DISCORD_TOKEN is not set (see README.md, Discord bot)"
    ]
