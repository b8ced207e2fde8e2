"""At ANIMEBOT_LOG_LEVEL=DEBUG no log line carries a person's id, name or an interaction token
(issue 15, item 11): the real discord.py against the stand-in, every logger captured."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from service.startup import configure_logging
from tests.discord.conftest import StartBot
from tests.standins.discord_api import DiscordStandIn

PERSON = 1_234_567_890_123_456_789  # the stand-in names them user6789 / User6789
LIBRARY_LOGGERS = ("discord", "aiohttp", "websockets")


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


async def convert_one(start_bot: StartBot, standin: DiscordStandIn, street: bytes) -> str:
    await start_bot()
    record = await standin.invoke_slash(
        "anime", {}, attachments={"image": ("p.jpg", street, "image/jpeg")}, user_id=PERSON
    )
    (reply,) = await record.wait_followups(1, timeout=30)
    assert reply.files
    return record.token


def leaks(text: str, token: str) -> list[str]:
    return [s for s in (str(PERSON), "user6789", "User6789", token) if s in text]


async def test_debug_logs_carry_no_ids_names_or_tokens(
    start_bot: StartBot,
    discord_standin: DiscordStandIn,
    street: bytes,
    debug_logging: pytest.LogCaptureFixture,
) -> None:
    token = await convert_one(start_bot, discord_standin, street)
    assert any(r.levelno == logging.DEBUG for r in debug_logging.records)  # it was on
    assert leaks(debug_logging.text, token) == []


async def test_library_debug_output_is_scrubbed_too(
    start_bot: StartBot,
    discord_standin: DiscordStandIn,
    street: bytes,
    debug_logging: pytest.LogCaptureFixture,
) -> None:
    """Someone turns the library loggers back to DEBUG: their payloads are scrubbed."""
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    token = await convert_one(start_bot, discord_standin, street)
    text = debug_logging.text
    assert "INTERACTION_CREATE" in text  # the gateway payload was logged...
    assert leaks(text, token) == []  # ... without the person or the token in it
