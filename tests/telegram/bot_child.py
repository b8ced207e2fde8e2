"""Child process for the crash and shutdown tests: what `python -m bot.telegram` runs (the real
Runtime and TelegramFrontEnd, settings from the environment, stopped by SIGTERM), plus, with
`--hold`, an engine whose first conversion never finishes, so the queue fills up behind it
deterministically, or with `--hold-clip`, one that converts a clip's first chunk of frames and
never the next (so a test stops the process in the middle of a clip, after some progress).
Prints `ready` (flushed) once the bot is polling."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from bot.telegram.app import TelegramFrontEnd
from service.runtime import Runtime
from service.settings import Settings
from service.startup import configure_logging
from tests.service.helpers import HeldConversion


class HeldClip:
    """Lets the first chunk of frames through (`Engine.run_job`), then holds every later one
    until the process ends."""

    def __init__(self, engine: Any) -> None:
        self._run_job = engine.run_job
        self._calls = 0
        self._never = asyncio.Event()
        engine.run_job = self._held

    async def _held(self, fn: Any) -> Any:
        self._calls += 1
        if self._calls > 1:
            await self._never.wait()
        return await self._run_job(fn)


async def main(hold: bool, hold_clip: bool) -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    runtime = await Runtime.start(settings)
    try:
        if hold:
            HeldConversion(runtime.engine)
        if hold_clip:
            HeldClip(runtime.engine)
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
    asyncio.run(main("--hold" in sys.argv[1:], "--hold-clip" in sys.argv[1:]))
