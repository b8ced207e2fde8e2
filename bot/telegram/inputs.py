"""What in a message can be converted: a photo, an image sent as a file, a static sticker."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from telegram import Message

# getFile refuses files over 20 MB for bots (https://core.telegram.org/bots/api#getfile).
TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jfif", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic",
     ".heif", ".avif"}
)  # fmt: skip

_ANIME_COMMAND = re.compile(r"^/anime(?:@(\w+))?(?:\s|$)", re.IGNORECASE)

MediaKind = Literal["photo", "document", "sticker"]
Unsupported = Literal["document", "animated_sticker", "other"]


@dataclass(frozen=True)
class Media:
    kind: MediaKind
    file_id: str
    file_size: int | None  # as Telegram reports it; None when it did not say


def media_of(message: Message | None) -> Media | Unsupported | None:
    """The convertible picture in `message`; the reason it has none (a non-image document,
    an animated or video sticker, other media); None for a plain text message."""
    if message is None:
        return None
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return Media("photo", largest.file_id, largest.file_size)
    if message.document is not None:
        document = message.document
        mime = (document.mime_type or "").lower()
        suffix = PurePosixPath(document.file_name or "").suffix.lower()
        if mime.startswith("image/") or suffix in IMAGE_EXTENSIONS:
            return Media("document", document.file_id, document.file_size)
        return "document"
    if message.sticker is not None:
        sticker = message.sticker
        if sticker.is_animated or sticker.is_video:
            return "animated_sticker"
        return Media("sticker", sticker.file_id, sticker.file_size)
    if message.effective_attachment is not None or message.location or message.contact:
        return "other"
    return None


def addressed_to_bot(caption: str | None, bot_username: str | None) -> bool:
    """In a group, a picture is for the bot when its caption starts with /anime (or
    /anime@this_bot) or mentions @this_bot."""
    text = (caption or "").strip()
    name = (bot_username or "").lower()
    if match := _ANIME_COMMAND.match(text):
        return match.group(1) is None or match.group(1).lower() == name
    return bool(name) and f"@{name}" in text.lower()
