"""Several front ends in webhook mode behind one reverse proxy (the test plays the proxy): any
front end takes any update, every photo is answered once, and Telegram's retry of an update
that reaches another front end after the first answered it is not answered again (marks shared
through Redis, one database for both)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from bot.telegram.webhook import SECRET_HEADER
from tests.queue.fixtures import redis_url
from tests.queue.redis_server import free_port
from tests.service.helpers import distinct_png
from tests.standins.telegram_api import make_user
from tests.telegram.helpers import Harness, StartBot

__all__ = ["redis_url"]


async def test_two_webhook_front_ends_answer_each_update_once(
    start_bot: StartBot, redis_url: str, tmp_path: Path
) -> None:
    fronts: list[tuple[Harness, str]] = []
    for _ in range(2):
        port = free_port()
        url = f"http://127.0.0.1:{port}/telegram/hook"
        harness = await start_bot(
            telegram_webhook_url=url,
            telegram_webhook_port=port,
            queue_url=redis_url,
            data_dir=tmp_path / "shared",  # one database for both front ends
        )
        fronts.append((harness, url))
    api = fronts[0][0].api
    updates = []
    for i in range(6):
        message = await api.send_photo(make_user(9100 + i), None, distinct_png(i, side=128))
        updates.append({"update_id": 5000 + i, "message": message})

    async def post(front: int, update: dict) -> int:
        harness, url = fronts[front]
        headers = {SECRET_HEADER: harness.front.webhook_secret}
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=update, headers=headers) as response,
        ):
            return response.status

    # The proxy spreads the updates over both front ends.
    statuses = await asyncio.gather(*(post(i % 2, u) for i, u in enumerate(updates)))
    assert statuses == [200] * 6
    await api.wait_for("sendPhoto", count=6, timeout=60)
    # Telegram retries update 0 (say our 200 was lost); the proxy sends it to the other one.
    assert await post(1, updates[0]) == 200
    late = await api.send_photo(make_user(9200), None, distinct_png(99, side=128))
    assert await post(1, {"update_id": 5100, "message": late}) == 200
    await api.wait_for("sendPhoto", count=7, timeout=60)
    for harness, _ in fronts:  # nothing of the retry still running anywhere
        await asyncio.wait_for(_idle(harness), 30)
    replies = [(c.chat_id, c.reply_to_message_id) for c in api.calls_to("sendPhoto") if c.ok]
    asked = [(u["message"]["chat"]["id"], u["message"]["message_id"]) for u in updates]
    asked.append((late["chat"]["id"], late["message_id"]))
    assert sorted(replies) == sorted(asked)  # each once, the retry not again


async def _idle(harness: Harness) -> None:
    tasks = [t for t in harness.front.deps.inflight if not t.done()]
    if tasks:
        await asyncio.wait(tasks)
