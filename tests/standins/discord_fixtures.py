"""pytest glue for the Discord stand-in: a fixture and a helper that runs a discord.py client.

Use in a test module::

    from tests.standins.discord_fixtures import discord_standin, running_client  # noqa: F401

    async def test_something(discord_standin: DiscordStandIn) -> None:
        bot = MyBot(intents=discord.Intents.none(), guild_ready_timeout=0.05)
        async with running_client(bot, discord_standin):
            record = await discord_standin.invoke_slash("ping")
            reply = await record.wait_response()
"""

# Waits take a ``timeout`` on purpose (each runs under asyncio.timeout).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import discord
import pytest

from tests.standins.discord_api import DiscordStandIn, patch_discord


@pytest.fixture
async def discord_standin(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DiscordStandIn]:
    """A running stand-in with discord.py's REST base and gateway pointed at it."""
    async with DiscordStandIn() as standin:
        patch_discord(monkeypatch, standin)
        yield standin
    if standin.errors:
        pytest.fail(f"the Discord stand-in failed to handle requests: {standin.errors!r}")


@contextlib.asynccontextmanager
async def running_client(
    client: discord.Client, standin: DiscordStandIn, *, timeout: float = 10.0
) -> AsyncIterator[discord.Client]:
    """Start ``client`` against ``standin``, wait for on_ready, close it cleanly on exit.

    Create the client with ``guild_ready_timeout=0.05`` or ``on_ready`` waits 2 s for guilds.
    Errors from ``client.start`` (login, gateway) are raised here.
    """
    async with client:  # binds the client's loop-dependent state; closes it on exit
        task = asyncio.create_task(client.start(standin.token), name="discord-client")
        error: BaseException | None = None
        try:
            ready = asyncio.create_task(client.wait_until_ready(), name="discord-ready")
            done, _ = await asyncio.wait(
                {task, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if ready not in done:
                ready.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ready
                if task in done:
                    task.result()
                raise TimeoutError(f"discord client not ready after {timeout}s")
            yield client
        finally:
            await client.close()
            finished, _ = await asyncio.wait({task}, timeout=timeout)
            if not finished:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                error = TimeoutError(f"discord client did not stop within {timeout}s")
            elif not task.cancelled():
                error = task.exception()
        if error is not None:
            raise error
