"""Fixtures for the Telegram front end: a real Runtime, the real PTB Application, and the local
Bot API stand-in between them (tests/standins/telegram_api.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bot.telegram import FrontEndOptions, TelegramFrontEnd
from service.runtime import Runtime
from tests.standins.telegram_api import TelegramStandIn
from tests.standins.telegram_fixtures import telegram_standin
from tests.telegram.helpers import ADMIN, FAST, Harness, StartBot

__all__ = ["telegram_standin"]  # re-exported so pytest finds the fixture


@pytest.fixture
async def start_bot(
    telegram_standin: TelegramStandIn, make_runtime: Callable[..., Awaitable[Runtime]]
) -> AsyncIterator[StartBot]:
    """Start Runtime + TelegramFrontEnd against the stand-in; keyword arguments override
    Settings (`options=` overrides FrontEndOptions). Stopped at teardown, newest first."""
    api = telegram_standin
    fronts: list[TelegramFrontEnd] = []

    async def start(*, options: FrontEndOptions = FAST, **overrides: Any) -> Harness:
        values: dict[str, Any] = {
            "telegram_token": api.token,
            "telegram_api_url": api.base_url,
            "telegram_admins": frozenset({str(ADMIN["id"])}),
        }
        values.update(overrides)
        runtime = await make_runtime(**values)
        front = TelegramFrontEnd(runtime, options)
        api.resume_long_polls()
        await front.start()
        fronts.append(front)
        return Harness(api, runtime, front)

    yield start
    for front in reversed(fronts):
        await front.stop()


@pytest.fixture
async def bot(start_bot: StartBot) -> Harness:
    return await start_bot()
