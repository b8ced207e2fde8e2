"""Clips on Discord: a video or GIF attachment given to /anime or Anime-fy is converted whole
through the service's clip entry point (`runtime.clips`, which keeps the request's one usage
row) and posted as an MP4 that fits the channel's upload limit (the bit rate
is chosen for it); a GIF comes back as a GIF when that fits (Discord plays GIFs inline). The
deferred "thinking" message shows the percentage of frames done. A GIF that turns out to be a
still picture goes the photo way. Not durable: a clip interrupted by a restart is not resumed.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import PurePath

import aiohttp
import discord

from bot.discord.conversion import PLATFORM, Converter, chat_id, safe_stem
from bot.discord.respond import defer_public, send, send_error
from bot.discord.translator import language
from core.errors import AnimeBotError, ImageTooLarge
from core.video import looks_like_clip
from i18n import clip_notes, error_message, t
from service.clips import ClipReply, ClipRequest

log = logging.getLogger("animebot.discord")

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".gif"})
DOWNLOAD_TIMEOUT_S = 120.0  # a clip of the largest size allowed, from Discord's CDN
PROGRESS_INTERVAL_S = 1.5  # Discord allows about 5 edits per 5 s per interaction
# What falls back to the photo path when the GIF is a still: the attachment itself.
PhotoFallback = Callable[[], Awaitable[None]]


def is_clip_attachment(attachment: discord.Attachment) -> bool:
    """A video, or a GIF (animated or not: the bytes decide later)."""
    kind = (attachment.content_type or "").lower()
    if kind.startswith("video/") or kind == "image/gif":
        return True
    return not kind and PurePath(attachment.filename).suffix.lower() in VIDEO_SUFFIXES


class ThinkingProgress:
    """The deferred response, edited to "Animating your clip… N%" as frames complete."""

    def __init__(self, interaction: discord.Interaction[discord.Client], lang: str) -> None:
        self._interaction, self._lang = interaction, lang
        self._shown = -1
        self._last = -math.inf
        self.edited = False

    async def frames(self, done: int, total: int) -> None:
        percent = 100 * done // max(1, total)
        if percent == self._shown or time.monotonic() - self._last < PROGRESS_INTERVAL_S:
            return
        self._last = time.monotonic()
        try:
            await self._interaction.edit_original_response(
                content=t("clip.progress", self._lang, percent=percent)
            )
            self._shown, self.edited = percent, True
        except discord.HTTPException as exc:  # a status line is never worth failing for
            log.debug("clip progress edit failed (HTTP %s)", exc.status)


async def run_clip(
    converter: Converter,
    interaction: discord.Interaction[discord.Client],
    attachment: discord.Attachment,
    *,
    style: str | None,
    faces: bool | None,
    photo_fallback: PhotoFallback,
) -> None:
    """Convert `attachment` as a clip and post it; errors go to the person alone."""
    lang = language(interaction)
    clips = converter.runtime.clips
    request_id = uuid.uuid4().hex[:10]
    limit = clips.max_upload_bytes
    if attachment.size > limit:
        error = ImageTooLarge("clip", limit=limit)
        await clips.refuse(
            PLATFORM,
            interaction.user.id,
            error,
            chat_id=chat_id(interaction),
            request_id=request_id,
        )
        await send_error(interaction, error_message(error, lang))
        return
    gif = (attachment.content_type or "").lower() == "image/gif"
    if not gif:  # a video may take longer to fetch than Discord waits for an answer (3 s)
        await defer_public(interaction)
    try:
        data = await asyncio.wait_for(attachment.read(), DOWNLOAD_TIMEOUT_S)
    except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("request %s: clip download failed: %s", request_id, type(exc).__name__)
        await clips.refuse(
            PLATFORM,
            interaction.user.id,
            "download_failed",
            chat_id=chat_id(interaction),
            request_id=request_id,
        )
        await send_error(interaction, t("dc.error.download", lang))
        return
    if gif:  # small, and read before answering: a still GIF goes the photo way
        if not looks_like_clip(data):
            await photo_fallback()
            return
        await defer_public(interaction)
    progress = ThinkingProgress(interaction, lang)
    try:
        reply = await clips.convert(
            ClipRequest(
                PLATFORM,
                interaction.user.id,
                data,
                chat_id=chat_id(interaction),
                style=style,
                faces=faces,
                max_output_bytes=interaction.filesize_limit,
                is_admin=clips.is_admin(PLATFORM, interaction.user.id),
                on_frames=progress.frames,
                request_id=request_id,
            )
        )
    except AnimeBotError as exc:
        await send_error(interaction, error_message(exc, lang))
        return
    del data
    body, ext = reply.data, reply.ext
    if gif:  # GIFs play inline on Discord, videos on a click: a GIF back if it fits
        as_gif = await clips.as_gif(reply, interaction.filesize_limit)
        if as_gif is not None:
            body, ext = as_gif, "gif"
    name = f"anime-{safe_stem(attachment.filename, 'clip')}.{ext}"
    file = discord.File(io.BytesIO(body), filename=name)
    if progress.edited:  # the progress is a message now: it goes, the clip comes as a new one
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            log.debug("could not delete the clip progress (HTTP %s)", exc.status)
    try:
        await send(interaction, content=caption(reply, lang), files=[file])
    except discord.HTTPException as exc:
        log.info("clip upload refused (HTTP %s)", exc.status)
        await clips.undelivered(PLATFORM, reply.request_id, "delivery_failed")
        await send_error(interaction, t("dc.error.upload", lang))


def caption(reply: ClipReply, lang: str) -> str:
    notes = clip_notes(
        reply.notes,
        lang,
        seconds=round(reply.seconds, 1),
        side=max(reply.width, reply.height),
        fps=reply.fps,
    )
    head = f"{reply.width}x{reply.height} · {reply.frames} · {reply.seconds:.1f} s"
    return " ".join([head, *notes])[:2000]
