"""`python -m bot.telegram`: run only the Telegram bot (settings from the environment).

Useful for debugging the bot without the web page; `animebot serve` runs both in one process.

Exit status (the same as `python -m bot.discord`): 0 after a clean stop (SIGINT/SIGTERM); 1 when
the bot cannot start (Telegram rejected the token, the Bot API cannot be reached, ...); 2 when a
setting is missing or invalid (TELEGRAM_TOKEN unset, TELEGRAM_ADMINS not user ids, ...). Either
failure is one line on stderr; ANIMEBOT_LOG_LEVEL=DEBUG logs the traceback too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from urllib.parse import urlsplit

from telegram.error import InvalidToken, NetworkError, TelegramError

from bot.telegram.app import TelegramFrontEnd
from bot.telegram.redact import protect_token
from core.errors import AnimeBotError
from service.reachability import unreachable_reason
from service.runtime import Runtime
from service.settings import Settings
from service.startup import configure_logging, load_settings

log = logging.getLogger("animebot.telegram")

EXIT_OK, EXIT_CANNOT_START, EXIT_SETTINGS = 0, 1, 2
DEFAULT_API = "https://api.telegram.org"


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


def start_error(exc: BaseException, settings: Settings) -> str:
    """One line that says what went wrong and what to do; never the token."""
    api = urlsplit(settings.telegram_api_url or DEFAULT_API).netloc or DEFAULT_API
    if isinstance(exc, InvalidToken):
        return (
            "Telegram rejected TELEGRAM_TOKEN (mistyped or revoked?): copy the token again "
            "from @BotFather"
        )
    if isinstance(exc, NetworkError):  # TimedOut included
        why = unreachable_reason(exc) or "the connection failed"
        fix = (
            "check TELEGRAM_API_URL and that the Bot API server runs"
            if settings.telegram_api_url
            else "check the network connection"
        )
        return f"cannot reach the Telegram Bot API at {api} ({why}): {fix}"
    if isinstance(exc, TelegramError):
        return f"Telegram refused to start the bot: {exc.message}"
    if isinstance(exc, OSError) and settings.telegram_webhook_url:
        why = exc.strerror or "the address cannot be used"
        return (
            f"cannot listen for the webhook on {settings.host}:"
            f"{settings.telegram_webhook_port}: {why}"
        )
    if isinstance(exc, AnimeBotError):  # our own sentences (a broken model file, ...)
        return f"cannot start: {' '.join(str(exc).split())}"
    return "the Telegram bot failed to start; ANIMEBOT_LOG_LEVEL=DEBUG shows why"


def main() -> int:
    settings = load_settings("telegram")
    if settings is None:
        return EXIT_SETTINGS
    if not settings.telegram_token:
        print(
            "telegram: TELEGRAM_TOKEN is not set: create a bot with @BotFather first "
            "(README.md, Telegram bot)",
            file=sys.stderr,
        )
        return EXIT_SETTINGS
    configure_logging(settings.log_level)
    protect_token(settings.telegram_token)  # before anything can log a Bot API URL
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        log.debug("the Telegram bot could not start", exc_info=exc)
        print(f"telegram: {start_error(exc, settings)}", file=sys.stderr)
        return EXIT_CANNOT_START
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
