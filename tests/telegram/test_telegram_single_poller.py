"""Long polling has one consumer per token: with ANIMEBOT_QUEUE set, a second front end that
would poll the same token is refused at start with a clear message (a lock in Redis); the
lock is free again once the first stops. Without Redis, Telegram's own 409 Conflict is logged
as the same clear message."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.telegram.app import POLLER_CONFLICT, PollerConflict
from tests.queue.fixtures import redis_url
from tests.telegram.helpers import StartBot

__all__ = ["redis_url"]


async def test_a_second_poller_on_the_same_token_is_refused(
    start_bot: StartBot, redis_url: str
) -> None:
    first = await start_bot(queue_url=redis_url)
    with pytest.raises(PollerConflict) as refused:
        await start_bot(queue_url=redis_url)
    assert "only one poller may run per TELEGRAM_TOKEN" in str(refused.value)
    assert "TELEGRAM_WEBHOOK_URL" in str(refused.value)
    await first.front.stop()
    again = await start_bot(queue_url=redis_url)  # the lock went with the first poller
    assert again.front.running


async def test_without_redis_telegrams_409_conflict_is_logged_clearly(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    def conflicts() -> list[logging.LogRecord]:
        return [r for r in caplog.records if POLLER_CONFLICT in r.getMessage()]

    with caplog.at_level(logging.ERROR, logger="animebot.telegram"):
        await start_bot()
        await start_bot()  # the stand-in, like Telegram, answers 409 to the superseded poll
        async with asyncio.timeout(20):
            while not conflicts():  # noqa: ASYNC110 (a log record: nothing to await)
                await asyncio.sleep(0.05)
    assert "409 Conflict" in conflicts()[0].getMessage()
