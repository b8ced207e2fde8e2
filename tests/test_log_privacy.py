"""No log line carries tokens, people's ids or names, at any level (issue 15, item 11): the
settings line, the library logger caps and the process-wide scrubber."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from service import logprivacy
from service.settings import Settings
from service.startup import configure_logging

LIBRARIES = ("telegram", "discord", "httpx", "httpcore", "aiohttp", "PIL")


@pytest.fixture
def restore_levels() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in (*LIBRARIES, "animebot")]
    before = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, before, strict=True):
        logger.setLevel(level)


def test_the_settings_line_shows_how_many_admins_not_who() -> None:
    settings = Settings(
        telegram_admins=frozenset({"5550001234", "5550005678"}),
        discord_admins=frozenset({"1100000000000000099"}),
        telegram_token="123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        admin_token="s3cret-admin-token",
    )
    text = "\n".join(settings.describe())
    for private in ("5550001234", "5550005678", "1100000000000000099", "ABCDEFGHIJ", "s3cret"):
        assert private not in text
    assert "TELEGRAM_ADMINS=(2 set)" in text and "DISCORD_ADMINS=(1 set)" in text


@pytest.mark.usefixtures("restore_levels")
def test_debug_opens_our_loggers_not_the_libraries_payloads() -> None:
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET)
    configure_logging("DEBUG")
    assert not logging.getLogger("telegram.ext.ExtBot").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("discord.gateway").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)  # URLs with the token
    assert logging.getLogger("discord.client").isEnabledFor(logging.INFO)
    configure_logging("ERROR")
    assert not logging.getLogger("telegram").isEnabledFor(logging.WARNING)


@pytest.mark.parametrize(
    ("logger", "message", "private"),
    [
        (
            "telegram.ext.ExtBot",
            "Call to Bot API endpoint `getUpdates` finished with return value `[{'update_id': 1,"
            " 'message': {'from': {'id': 7382194561, 'is_bot': False, 'first_name': 'Zephyrine',"
            " 'last_name': 'O\\'Hara', 'username': 'zeph'}, 'chat': {'id': -1001234567890}}}]`",
            ("7382194561", "Zephyrine", "Hara", "zeph", "1001234567890"),
        ),
        (
            "telegram.ext.Application",
            "Processing update Update(message=Message(chat=Chat(first_name='Zephyrine',"
            " id=7382194561, type=<ChatType.PRIVATE>), from_user=User(first_name='Zephyrine',"
            " id=7382194561, is_bot=False)))",
            ("7382194561", "Zephyrine"),
        ),
        (
            "telegram.ext.ExtBot",
            "Calling Bot API endpoint `sendPhoto` with parameters `{'chat_id': 7382194561}`",
            ("7382194561",),
        ),
        (
            "discord.gateway",
            "For Shard ID None: WebSocket Event: {'t': 'INTERACTION_CREATE', 'd': {'id': "
            "'1577849759446597640', 'token': 'aW50ZXJhY3Rpb246MTU3Nzg0OTc1OTQ0NjU5NzY0MDp0b2tlbg',"
            " 'member': {'user': {'id': '1234567890123456789', 'username': 'ann.k',"
            " 'global_name': 'Ann K'}, 'nick': 'annie'}}}",
            ("1234567890123456789", "aW50ZXJhY3Rpb24", "ann.k", "Ann K", "annie"),
        ),
        (
            "discord.webhook.async_",
            "Webhook ID 1577849759446597640 with POST https://discord.com/api/v10/webhooks/"
            "1100000000000000001/aW50ZXJhY3Rpb246MTU3Nzg0OTc1OTQ0NjU5NzY0MDp0b2tlbg/messages/"
            "@original has returned status code 200",
            ("aW50ZXJhY3Rpb24",),
        ),
        (
            "aiohttp.access",
            '127.0.0.1 "POST /api/v10/interactions/1577849759446597640/'
            'aW50ZXJhY3Rpb246MTU3Nzg0OTc1OTQ0NjU5NzY0MDp0b2tlbg/callback HTTP/1.1" 204',
            ("aW50ZXJhY3Rpb24",),
        ),
        (
            "discord.http",
            'POST https://x/channels/1 with {"content": "hi <@1234567890123>"}',
            ("1234567890123",),
        ),
    ],
)
def test_library_payloads_are_scrubbed(
    caplog: pytest.LogCaptureFixture, logger: str, message: str, private: tuple[str, ...]
) -> None:
    logprivacy.install()
    with caplog.at_level(logging.DEBUG, logger=logger):
        logging.getLogger(logger).debug("%s", message)
    (record,) = [r for r in caplog.records if r.name == logger]
    text = record.getMessage()
    assert [p for p in private if p in text] == []
    assert "[redacted]" in text or "[id]" in text


def test_tracebacks_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    logprivacy.install()
    try:
        raise RuntimeError("bad update {'from': {'id': 7382194561, 'first_name': 'Zephyrine'}}")
    except RuntimeError:
        logging.getLogger("telegram.ext.Application").exception("Error while processing update")
    assert "7382194561" not in caplog.text and "Zephyrine" not in caplog.text


def test_our_own_figures_are_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    logprivacy.install()
    with caplog.at_level(logging.INFO, logger="animebot.test"):
        logging.getLogger("animebot.test").info("converted in %d ms, %d bytes", 123456, 7654321)
    assert "converted in 123456 ms, 7654321 bytes" in caplog.text
