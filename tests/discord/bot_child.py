"""Child process for the Discord crash test: the real Runtime and DiscordFrontEnd, settings from
the environment, talking to the Discord stand-in whose REST base and gateway URL are the first
two arguments; stopped by SIGTERM. With `--hold` the engine's first conversion never finishes,
so the queue fills up behind it. Prints `ready` (flushed) once Discord reports ready."""

from __future__ import annotations

import asyncio
import signal
import sys

import discord.gateway
import discord.http
import yarl

from bot.discord.client import DiscordFrontEnd
from service.runtime import Runtime
from service.settings import Settings
from service.startup import configure_logging
from tests.service.helpers import HeldConversion


async def main(api_base: str, gateway: str, hold: bool) -> None:
    discord.http.Route.BASE = api_base  # what tests.standins.discord_api.patch_discord does
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    runtime = await Runtime.start(settings)
    try:
        if hold:
            HeldConversion(runtime.engine)
        front = DiscordFrontEnd(runtime, guild_ready_timeout=0.05, ready_timeout=60)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await front.start()
        print("ready", flush=True)
        try:
            await stop.wait()
        finally:
            await front.stop()
    finally:
        await runtime.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], "--hold" in sys.argv[3:]))
