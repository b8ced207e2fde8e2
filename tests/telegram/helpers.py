"""Helpers for the Telegram front-end tests: people, pictures, predicates, the harness."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import sqlite3
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image

from bot.telegram import FrontEndOptions, TelegramFrontEnd
from bot.telegram.delivery import RetryPolicy
from i18n import catalogue
from service.runtime import Runtime
from tests.standins.telegram_api import Call, TelegramStandIn, make_user

# Waits shortened so tests stay fast; behaviour is the production one.
FAST = FrontEndOptions(
    status_interval_s=0.0,
    retry=RetryPolicy(attempts=4, base_s=0.01, max_s=0.05),
    rate_limit_retries=3,
    poll_timeout_s=10.0,
)

ALICE = make_user(1001, language_code="en", first_name="Alice")
BORIS = make_user(1002, language_code="ru", first_name="Борис")
CHEN = make_user(1003, language_code="zh-hans", first_name="Chen")
ADMIN = make_user(4242, language_code="en", first_name="Ada")


@dataclass
class Harness:
    api: TelegramStandIn
    runtime: Runtime
    front: TelegramFrontEnd

    async def usage_rows(self) -> list[dict[str, Any]]:
        """The usage log, oldest first, read through a separate read-only connection (WAL
        lets it see every committed row). Ids are hashes: compare them with `user_hash`."""
        uri = f"file:{self.runtime.settings.database}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute("SELECT * FROM usage ORDER BY id")]

    async def settled(self) -> None:
        """Wait until every handler running now, and every job they handed to the runner, has
        finished (its last rows written)."""
        while running := [
            *(task for task in self.front.deps.inflight if not task.done()),
            *self.runtime.runner.pending_tasks(),
        ]:
            await asyncio.gather(*running, return_exceptions=True)

    def user_hash(self, user: dict[str, Any]) -> str:
        return self.runtime.db.hash_id("telegram", user["id"])

    async def rows_of(self, user: dict[str, Any]) -> list[dict[str, Any]]:
        return [r for r in await self.usage_rows() if r["user_hash"] == self.user_hash(user)]


StartBot = Callable[..., Awaitable[Harness]]  # the start_bot fixture (conftest.py)


# --------------------------------------------------------------------------- images


def encode(img: Image.Image, fmt: str = "JPEG", **params: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


@cache
def small_photo(path: Path, max_side: int = 480, quality: int = 88) -> bytes:
    """A shared photo scaled down (tests that are not about the image stay fast)."""
    with Image.open(path) as img:
        rgb = img.convert("RGB")
        rgb.thumbnail((max_side, max_side))
        return encode(rgb, quality=quality)


def synthetic_jpeg(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    """A distinct small picture per seed (distinct pixels: never a cache hit of another)."""
    img = Image.new("RGB", (width, height), (30 + seed * 37 % 200, 120, 200))
    for x in range(0, width, 16):
        img.paste((x % 255, (x * 3 + seed * 11) % 255, 90), (x, 0, x + 8, height))
    return encode(img, quality=90)


def decoded_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def replies_to(message: dict[str, Any]) -> Callable[[Call], bool]:
    """A wait_for predicate: a call answering `message` (same chat, quoting it)."""
    chat_id = message["chat"]["id"]
    return lambda c: c.chat_id == chat_id and c.reply_to_message_id == message["message_id"]


def to_chat(chat_id: int) -> Callable[[Call], bool]:
    return lambda c: c.chat_id == chat_id


def matches(key: str, lang: str, text: str | None) -> bool:
    """Whether `text` is the catalogue message `key` with any values filled in."""
    template = catalogue(lang)[key]
    pattern = ""
    for literal, field, _, _ in string.Formatter().parse(template):
        pattern += re.escape(literal) + (".+?" if field is not None else "")
    return text is not None and re.fullmatch(pattern, text, re.DOTALL) is not None
