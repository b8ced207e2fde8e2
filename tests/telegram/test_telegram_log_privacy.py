"""At ANIMEBOT_LOG_LEVEL=DEBUG no log line carries a person's id or first name (issue 15,
item 11): the real python-telegram-bot against the stand-in, every logger captured."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.startup import configure_logging
from tests.standins.telegram_api import make_user, private_chat
from tests.telegram.helpers import StartBot, replies_to, small_photo

ZED = make_user(7382194561, language_code="en", first_name="Zephyrine")
LIBRARY_LOGGERS = ("telegram", "httpx", "httpcore", "aiohttp", "tornado")


@pytest.fixture
def debug_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """`animebot serve` at ANIMEBOT_LOG_LEVEL=DEBUG, every record captured; levels restored."""
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    before = [logger.level for logger in loggers]
    caplog.set_level(logging.DEBUG)
    configure_logging("DEBUG")
    try:
        yield caplog
    finally:
        for logger, level in zip(loggers, before, strict=True):
            logger.setLevel(level)


async def convert_one(start_bot: StartBot, photos_dir: Path) -> None:
    bot = await start_bot()
    image = small_photo(photos_dir / "street_shopfront.jpg")
    sent = await bot.api.send_photo(ZED, private_chat(ZED), image)
    (reply,) = await bot.api.wait_for("sendPhoto", replies_to(sent))
    assert reply.ok


def leaks(text: str) -> list[str]:
    return [s for s in (str(ZED["id"]), ZED["first_name"]) if s in text]


async def test_debug_logs_carry_no_ids_or_names(
    start_bot: StartBot, photos_dir: Path, debug_logging: pytest.LogCaptureFixture
) -> None:
    await convert_one(start_bot, photos_dir)
    assert any(r.levelno == logging.DEBUG for r in debug_logging.records)  # it was on
    assert leaks(debug_logging.text) == []


async def test_library_debug_output_is_scrubbed_too(
    start_bot: StartBot, photos_dir: Path, debug_logging: pytest.LogCaptureFixture
) -> None:
    """Someone turns the library loggers back to DEBUG: their payloads are scrubbed."""
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    await convert_one(start_bot, photos_dir)
    text = debug_logging.text
    assert "getUpdates" in text and "[redacted]" in text  # the payloads were logged...
    assert leaks(text) == []  # ... without the person in them
