"""One attachment in, one upload-ready result out: size check, download, convert, fit.

Shared by /anime and the Anime-fy context menu, live or resumed after a restart (bot/discord/
jobs.py): a conversion needs only an `Origin` (who asked, where, the upload limit) and an
attachment-like `Source` (a live `discord.Attachment`, or one a durable job stored). Every
failure comes back as `ConversionFailed` carrying a translated sentence (never exception
text) and the error code; each request leaves one usage row (the service writes it for
conversions; failures before or after the service are recorded with `record_failure`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Protocol

import aiohttp
import discord

from bot.discord.progress import waiting_notice
from bot.discord.render import OutFile, fit_file
from core.errors import AnimeBotError, ImageTooLarge
from i18n import error_message, t
from service.convert import ConversionReply, ConversionRequest
from service.runtime import Runtime

log = logging.getLogger("animebot.discord")

PLATFORM = "discord"
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".heic", ".heif", ".avif", ".bmp", ".tif", ".tiff"}
)


class ConversionFailed(Exception):
    """A conversion that produced nothing to post; `message` is for the user, translated;
    `code` is the error's (e.g. "shutting_down": the job is put off, not failed)."""

    def __init__(self, message: str, code: str = "failed") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Source(Protocol):
    """What a conversion needs of an attachment (`discord.Attachment` is one)."""

    @property
    def filename(self) -> str: ...

    @property
    def size(self) -> int: ...

    def is_spoiler(self) -> bool: ...

    async def read(self) -> bytes: ...


@dataclass(frozen=True)
class Origin:
    """Who asked, in which channel, and how large an upload the answer may carry."""

    user_id: int
    chat_id: int | None
    filesize_limit: int
    # The live interaction (None for a job resumed after a restart): its queue status.
    interaction: discord.Interaction[discord.Client] | None = field(
        default=None, compare=False, repr=False
    )

    @classmethod
    def of(cls, interaction: discord.Interaction[discord.Client]) -> Origin:
        return cls(
            interaction.user.id, chat_id(interaction), interaction.filesize_limit, interaction
        )


@dataclass(frozen=True)
class Converted:
    reply: ConversionReply
    file: OutFile


def chat_id(interaction: discord.Interaction[discord.Client]) -> int | None:
    return interaction.channel_id or interaction.guild_id


def looks_like_image(attachment: discord.Attachment) -> bool:
    """For picking images out of a message: the declared type, else the file name."""
    if attachment.content_type:
        return attachment.content_type.lower().startswith("image/")
    return PurePath(attachment.filename).suffix.lower() in IMAGE_SUFFIXES


def safe_stem(filename: str, fallback: str = "image") -> str:
    """A file name stem that is safe in an ``attachment://`` URL."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", PurePath(filename).stem).strip("_")
    return stem[:40] or fallback


class Converter:
    """Converts Discord attachments through the one ConversionService of the process."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.service = runtime.service

    @property
    def max_upload_bytes(self) -> int:
        return self.runtime.settings.max_upload_bytes

    def too_large(self, attachment: Source) -> bool:
        return attachment.size > self.max_upload_bytes

    async def refuse_too_large(self, origin: Origin, lang: str) -> str:
        """Record the refusal (a usage row) and return the translated reason."""
        await self.service.record_failure(
            PLATFORM, origin.user_id, ImageTooLarge.code, chat_id=origin.chat_id
        )
        return error_message(
            ImageTooLarge("attachment too large", limit=self.max_upload_bytes), lang
        )

    async def convert(
        self,
        origin: Origin,
        attachment: Source,
        *,
        lang: str,
        style: str | None = None,
        faces: bool | None = None,
        side_by_side: bool = False,
        name: str | None = None,
    ) -> Converted:
        """Download, convert and fit `attachment` to the origin's upload limit."""
        user_id, chat = origin.user_id, origin.chat_id
        if self.too_large(attachment):
            raise ConversionFailed(await self.refuse_too_large(origin, lang), ImageTooLarge.code)
        try:
            # Shutting down: refused (and recorded) before spending a download on it.
            await self.service.check_open(PLATFORM, user_id, chat_id=chat)
        except AnimeBotError as exc:
            raise ConversionFailed(error_message(exc, lang), exc.code) from exc
        try:
            data = await attachment.read()
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("attachment download failed: %s", type(exc).__name__)
            await self.service.record_failure(PLATFORM, user_id, "download_failed", chat_id=chat)
            raise ConversionFailed(t("dc.error.download", lang)) from exc
        request = ConversionRequest(
            platform=PLATFORM,
            user_id=user_id,
            chat_id=chat,
            image=data,
            style=style,
            faces=faces,
            side_by_side=side_by_side,
            fmt="jpeg",  # small uploads; an image with real transparency still comes back PNG
            is_admin=self.service.is_admin(PLATFORM, user_id),
            on_progress=(  # place in the queue
                None
                if origin.interaction is None
                else waiting_notice(origin.interaction, lang).reporter()
            ),
        )
        try:
            reply = await self.service.convert(request)
        except AnimeBotError as exc:
            # Internal errors were logged by the service with this request id (the reference
            # the message shows); the others are the person's input or our limits.
            log.info("request %s: %s", request.request_id, exc.code)
            raise ConversionFailed(error_message(exc, lang), exc.code) from exc
        stem = f"anime-{reply.style}" if name is None else name
        out = await fit_file(
            reply.data,
            origin.filesize_limit,
            stem=stem,
            ext=reply.ext,
            spoiler=attachment.is_spoiler(),
        )
        if out is None:
            log.info(
                "request %s: result cannot fit %d bytes", reply.request_id, origin.filesize_limit
            )
            await self.service.record_failure(
                PLATFORM, user_id, "result_too_large", chat_id=chat, request_id=reply.request_id
            )
            raise ConversionFailed(t("dc.error.result_too_large", lang))
        log.info(
            "request %s: %s %dx%d in %.0f ms%s",
            reply.request_id,
            reply.style,
            reply.width,
            reply.height,
            reply.total_ms,
            " (recompressed)" if out.recompressed else "",
        )
        return Converted(reply, out)

    async def delivery_failed(
        self, origin: Origin, exc: discord.HTTPException, request_id: str | None
    ) -> None:
        """Discord refused the upload: log it and record it (a usage row)."""
        log.warning("request %s: Discord refused the result (HTTP %s)", request_id, exc.status)
        await self.service.record_failure(
            PLATFORM,
            origin.user_id,
            "delivery_failed",
            chat_id=origin.chat_id,
            request_id=request_id,
        )
