"""`python -m bot.discord`: run only the Discord bot, configured from the environment.

Exit status (the same as `python -m bot.telegram`): 0 after a clean stop (SIGINT/SIGTERM); 1
when the bot cannot start (Discord rejected the token, cannot be reached, ...); 2 when a setting
is missing or invalid (DISCORD_TOKEN unset, DISCORD_ADMINS not user ids, ...). Either failure is
one line on stderr. Use `animebot serve` to run it beside the web page and the Telegram bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from bot.discord.client import DiscordFrontEnd, DiscordStartError
from core.errors import AnimeBotError
from service.runtime import Runtime
from service.settings import Settings
from service.startup import configure_logging, load_settings

log = logging.getLogger("animebot.discord")


async def serve(
    settings: Settings,
    stop: asyncio.Event | None = None,
    *,
    install_signals: bool = True,
    guild_ready_timeout: float = 2.0,
) -> None:
    """Start the runtime and the bot; run until `stop` is set (or SIGINT/SIGTERM arrives), or
    until the connection fails for good; then stop both cleanly."""
    stop = stop or asyncio.Event()
    if install_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
    runtime = await Runtime.start(settings)
    try:
        frontend = DiscordFrontEnd(runtime, guild_ready_timeout=guild_ready_timeout)
        await frontend.start()
        stopped = asyncio.create_task(stop.wait())
        closed = asyncio.create_task(frontend.wait_closed())
        await asyncio.wait({stopped, closed}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        closed.cancel()
        await frontend.stop()
    finally:
        await runtime.stop()


EXIT_OK, EXIT_CANNOT_START, EXIT_SETTINGS = 0, 1, 2


def main() -> int:
    settings = load_settings("discord")
    if settings is None:
        return EXIT_SETTINGS
    if not settings.discord_token.strip():
        print("discord: DISCORD_TOKEN is not set (see README.md, Discord bot)", file=sys.stderr)
        return EXIT_SETTINGS
    configure_logging(settings.log_level)
    try:
        asyncio.run(serve(settings))
    except DiscordStartError as exc:
        print(f"discord: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # the runtime itself (a model file, the database): one line too
        log.debug("the Discord bot could not start", exc_info=exc)
        if isinstance(exc, AnimeBotError):
            print(f"discord: cannot start: {' '.join(str(exc).split())}", file=sys.stderr)
        else:
            print(
                "discord: the bot failed to start; ANIMEBOT_LOG_LEVEL=DEBUG shows why",
                file=sys.stderr,
            )
        return EXIT_CANNOT_START
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
