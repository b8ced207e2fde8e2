"""pytest glue for the Telegram stand-in.

Use in a test module::

    from tests.standins.telegram_api import application_builder, running_application
    from tests.standins.telegram_fixtures import telegram_standin

    __all__ = ["telegram_standin"]  # re-exported so pytest finds the fixture


    async def test_something(telegram_standin: TelegramStandIn) -> None:
        app = application_builder(telegram_standin).build()
        app.add_handler(...)
        async with running_application(app, telegram_standin):
            await telegram_standin.send_text(user, None, "/start")
            (reply,) = await telegram_standin.wait_for("sendMessage")
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.standins.telegram_api import TelegramStandIn


@pytest.fixture
async def telegram_standin() -> AsyncIterator[TelegramStandIn]:
    """A running Bot API stand-in on 127.0.0.1 (stopped, long polls released, after the test).
    Fails the test if the stand-in itself raised while answering (it answered 500 then)."""
    async with TelegramStandIn() as api:
        yield api
    assert not api.internal_errors, f"the Telegram stand-in failed: {api.internal_errors!r}"
