"""One attachment in, one upload-ready result out: size check, download, convert, fit.

Shared by /anime and the Anime-fy context menu. Every failure comes back as `ConversionFailed`
carrying a translated sentence (never exception text); each request leaves one usage row
(the service writes it for conversions; failures before or after the service are recorded
with `record_failure`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import PurePath

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
    """A conversion that produced nothing to post; `message` is for the user, translated."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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

    def too_large(self, attachment: discord.Attachment) -> bool:
        return attachment.size > self.max_upload_bytes

    async def refuse_too_large(
        self, interaction: discord.Interaction[discord.Client], lang: str
    ) -> str:
        """Record the refusal (a usage row) and return the translated reason."""
        await self.service.record_failure(
            PLATFORM, interaction.user.id, ImageTooLarge.code, chat_id=chat_id(interaction)
        )
        return error_message(
            ImageTooLarge("attachment too large", limit=self.max_upload_bytes), lang
        )

    async def convert(
        self,
        interaction: discord.Interaction[discord.Client],
        attachment: discord.Attachment,
        *,
        lang: str,
        style: str | None = None,
        faces: bool | None = None,
        side_by_side: bool = False,
        name: str | None = None,
    ) -> Converted:
        """Download, convert and fit `attachment` to the interaction's upload limit."""
        user_id, chat = interaction.user.id, chat_id(interaction)
        if self.too_large(attachment):
            raise ConversionFailed(await self.refuse_too_large(interaction, lang))
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
            on_progress=waiting_notice(interaction, lang).reporter(),  # place in the queue
        )
        try:
            reply = await self.service.convert(request)
        except AnimeBotError as exc:
            # Internal errors were logged by the service with this request id (the reference
            # the message shows); the others are the person's input or our limits.
            log.info("request %s: %s", request.request_id, exc.code)
            raise ConversionFailed(error_message(exc, lang)) from exc
        stem = f"anime-{reply.style}" if name is None else name
        out = await fit_file(
            reply.data,
            interaction.filesize_limit,
            stem=stem,
            ext=reply.ext,
            spoiler=attachment.is_spoiler(),
        )
        if out is None:
            log.info(
                "request %s: result cannot fit %d bytes",
                reply.request_id,
                interaction.filesize_limit,
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
        self,
        interaction: discord.Interaction[discord.Client],
        exc: discord.HTTPException,
        request_id: str | None,
    ) -> None:
        """Discord refused the upload: log it and record it (a usage row)."""
        log.warning("request %s: Discord refused the result (HTTP %s)", request_id, exc.status)
        await self.service.record_failure(
            PLATFORM,
            interaction.user.id,
            "delivery_failed",
            chat_id=chat_id(interaction),
            request_id=request_id,
        )
