"""Fixtures for the Discord front end: the real discord.py against the local stand-in, on a
real Runtime (engine with the installed models, SQLite in tmp_path, service)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.discord import DiscordFrontEnd
from service.runtime import Runtime
from tests.standins.discord_api import DiscordStandIn
from tests.standins.discord_fixtures import discord_standin

__all__ = ["discord_standin"]  # the stand-in fixture, re-exported for the tests here

StartBot = Callable[..., Awaitable[DiscordFrontEnd]]


@pytest.fixture
async def start_bot(
    discord_standin: DiscordStandIn, make_runtime: Callable[..., Awaitable[Runtime]]
) -> AsyncIterator[StartBot]:
    """Start a Runtime (settings overridable) and the Discord front end against the stand-in;
    every bot started is stopped at teardown (before its runtime and the stand-in)."""
    started: list[DiscordFrontEnd] = []

    async def start(**overrides: Any) -> DiscordFrontEnd:
        values: dict[str, Any] = {"discord_token": discord_standin.token}
        values.update(overrides)
        runtime = await make_runtime(**values)
        frontend = DiscordFrontEnd(runtime, guild_ready_timeout=0.05, ready_timeout=10)
        await frontend.start()
        started.append(frontend)
        return frontend

    yield start
    for frontend in started:
        await frontend.stop()


@pytest.fixture
async def bot(start_bot: StartBot) -> DiscordFrontEnd:
    return await start_bot()


@cache
def _photo(path: Path, max_side: int) -> bytes:
    with Image.open(path) as im:
        im.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        im.convert("RGB").save(buf, format="JPEG", quality=90)
        return buf.getvalue()


@pytest.fixture
def portrait(photos_dir: Path) -> bytes:
    """A real portrait (one face), at most 480 px: small enough to be quick."""
    return _photo(photos_dir / "face_single_lowlight.jpg", 480)


@pytest.fixture
def street(photos_dir: Path) -> bytes:
    """A street scene, at most 320 px."""
    return _photo(photos_dir / "street_shopfront.jpg", 320)
