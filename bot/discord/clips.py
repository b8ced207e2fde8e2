"""Clips on Discord: a video or GIF attachment given to /anime or Anime-fy is a job of the job
runner like a photo (`clip_job`, `options["clip"]`): stored right after the deferral, so a
crash or a restart within the interaction token's life loses it not, converted by the clip
service wherever the runner's workers are (this process, or `animebot worker` with the shared
queue) and posted by the outlet (bot/discord/outlet.py, `deliver_clip`) as an MP4 that fits
the channel's upload limit (the bit rate is chosen for it); a GIF comes back as a GIF when that
fits (Discord plays GIFs inline). The deferred "thinking" message shows the percentage of
frames done. A GIF that turns out to be a still picture goes the photo way (the runner sees
it once fetched: `still_as_photo`).
"""

from __future__ import annotations

import logging
from pathlib import PurePath
from typing import Any

import discord

from bot.discord.conversion import Converter, Origin, request_job
from bot.discord.jobs import clip_job, take_in
from bot.discord.respond import defer_public, send_error
from bot.discord.translator import language
from core.errors import ImageTooLarge
from i18n import clip_notes, error_message
from service.clips import ClipReply

log = logging.getLogger("animebot.discord")

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".gif"})
PROGRESS_INTERVAL_S = 1.5  # Discord allows about 5 edits per 5 s per interaction


def is_clip_attachment(attachment: discord.Attachment) -> bool:
    """A video, or a GIF (animated or not: the bytes decide later)."""
    kind = (attachment.content_type or "").lower()
    if kind.startswith("video/") or kind == "image/gif":
        return True
    return not kind and PurePath(attachment.filename).suffix.lower() in VIDEO_SUFFIXES


async def run_clip(
    converter: Converter,
    interaction: discord.Interaction[discord.Client],
    attachment: discord.Attachment,
    options: dict[str, Any],
) -> None:
    """Take `attachment` in as a clip job (refused at once, privately, when it is larger
    than clips may be: nothing downloaded)."""
    lang = language(interaction)
    limit = converter.runtime.settings.limits.clip_max_bytes
    if attachment.size > limit:
        error = ImageTooLarge("clip", limit=limit)
        await converter.runner.refuse(request_job(Origin.of(interaction), lang), error)
        await send_error(interaction, error_message(error, lang))
        return
    thinking_id = await defer_public(interaction)
    job = clip_job(converter.runner, interaction, lang, thinking_id, attachment, options)
    await take_in(converter, interaction, job)  # bot/discord/outlet.py answers


def caption(reply: ClipReply, lang: str) -> str:
    clip = reply.clip
    notes = clip_notes(
        reply.notes,
        lang,
        seconds=round(clip.seconds, 1),
        side=max(clip.width, clip.height),
        fps=clip.fps,
    )
    head = f"{clip.width}x{clip.height} · {clip.frames} · {clip.seconds:.1f} s"
    return " ".join([head, *notes])[:2000]
