"""`python -m bot.telegram`: run only the Telegram bot (settings from the environment).

Useful for debugging the bot without the web page; `animebot serve` runs both in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from bot.telegram.app import TelegramFrontEnd
from bot.telegram.redact import protect_token
from service.runtime import Runtime
from service.settings import Settings
from service.startup import configure_logging, load_settings


async def serve(settings: Settings) -> None:
    runtime = await Runtime.start(settings)
    try:
        front = TelegramFrontEnd(runtime)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on Windows
                loop.add_signal_handler(sig, stop.set)
        await front.start()
        try:
            await stop.wait()
        finally:
            await front.stop()
    finally:
        await runtime.stop()


def main() -> int:
    settings = load_settings("telegram")
    if settings is None:
        return 2
    if not settings.telegram_token:
        print("TELEGRAM_TOKEN is not set: create a bot with @BotFather first", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    protect_token(settings.telegram_token)  # before anything can log a Bot API URL
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
