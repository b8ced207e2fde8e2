"""The styles' preview images as one album above the /style keyboard, so people choose a style
by looking rather than by name."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from telegram import Bot, Message
from telegram.error import BadRequest

from bot.telegram.delivery import Delivery, Target
from bot.telegram.texts import style_label

log = logging.getLogger("animebot.telegram")

ALBUM_MAX = 10  # Telegram: an album holds 2 to 10 photos


def album_sizes(count: int) -> list[int]:
    """Even album sizes for `count` photos: 11 -> [6, 5], never a lone photo (an album needs 2)."""
    if count < 2:
        return []
    albums = math.ceil(count / ALBUM_MAX)
    base, extra = divmod(count, albums)
    return [base + 1 if i < extra else base for i in range(albums)]


@dataclass
class PreviewAlbum:
    """Uploads each preview once per process; later albums reuse Telegram's file_id."""

    file_ids: dict[str, str] = field(default_factory=dict)

    async def send(
        self,
        delivery: Delivery,
        bot: Bot,
        target: Target,
        previews: Sequence[tuple[str, Path]],
        lang: str,
    ) -> None:
        """Send the previews (style, file); a stale file_id is forgotten, never fatal."""
        start = 0
        for size in album_sizes(len(previews)):
            chunk = previews[start : start + size]
            start += size
            captioned = [
                (await self.media(style, path), style_label(style, lang)) for style, path in chunk
            ]
            try:
                sent = await delivery.album(bot, target, captioned)
            except BadRequest as exc:  # e.g. a file_id Telegram no longer knows
                log.warning("style previews not sent: %s", exc)
                for style, _ in chunk:
                    self.file_ids.pop(style, None)
                return
            self.remember(chunk, sent)

    async def media(self, style: str, path: Path) -> str | bytes:
        known = self.file_ids.get(style)
        return known if known is not None else await asyncio.to_thread(path.read_bytes)

    def remember(self, chunk: Sequence[tuple[str, Path]], sent: Sequence[Message]) -> None:
        for (style, _), message in zip(chunk, sent, strict=False):
            if message.photo:
                self.file_ids[style] = message.photo[-1].file_id
