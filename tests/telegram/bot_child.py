"""Child process for the crash and shutdown tests: what `python -m bot.telegram` runs (the real
Runtime and TelegramFrontEnd, settings from the environment, stopped by SIGTERM), plus, with
`--hold`, an engine whose first conversion never finishes, so the queue fills up behind it
deterministically. Prints `ready` (flushed) once the bot is polling."""

from __future__ import annotations

import asyncio
import signal
import sys

from bot.telegram.app import TelegramFrontEnd
from service.runtime import Runtime
from service.settings import Settings
from service.startup import configure_logging
from tests.service.helpers import HeldConversion


async def main(hold: bool) -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    runtime = await Runtime.start(settings)
    try:
        if hold:
            HeldConversion(runtime.engine)
        front = TelegramFrontEnd(runtime)
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
    asyncio.run(main("--hold" in sys.argv[1:]))
