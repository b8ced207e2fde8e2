"""Discord interactions as jobs: a deferred /anime or Anime-fy survives a crash or a restart.

Discord cannot deliver an interaction twice, and its token answers follow-ups for 15 minutes
from the interaction. So right after the deferral ("thinking…") the job is handed to the job
runner, which stores it: who asked, the attachments (CDN URL, name, size), the options (a
clip's: `options["clip"]`, bot/discord/clips.py), and
where the answer goes (application id, interaction token, the thinking message). It is
deleted once the person has an answer. A shutdown that turns the conversion away or cuts it
short keeps it, and the person is told, privately, that the picture will be posted when the
bot is back. At start the runner finishes jobs younger than RESUME_WITHIN_S through the
follow-up webhook (bot/discord/outlet.py); older ones can no longer be answered and are
dropped with a recorded failure.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord

from bot.discord.conversion import ATTACHMENT, PLATFORM, Converter, chat_id
from service.lifecycle import AlreadyAccepted, Job, JobRunner
from service.lifecycle.job import BATCH, CLIP

log = logging.getLogger("animebot.discord")

TOKEN_LIFETIME_S = 15 * 60  # an interaction token answers follow-ups this long
RESUME_WITHIN_S = TOKEN_LIFETIME_S - 60  # a minute left to convert and post
NOTICE_S = 3.0  # cut short by a shutdown: at most this long to tell the person
ANSWERED = "animebot.answered"  # Interaction.extras: the job told the person itself


def attachment_source(attachment: dict[str, Any]) -> dict[str, Any]:
    """One attachment as a job's source: where to fetch it, and what the answer shows."""
    return {
        "kind": ATTACHMENT,
        "url": attachment["url"],
        "size": attachment.get("size"),
        "filename": attachment.get("filename"),
        "spoiler": bool(attachment.get("spoiler")),
    }


def _attachment(attachment: discord.Attachment) -> dict[str, Any]:
    return attachment_source(
        {
            "url": attachment.url,
            "size": attachment.size,
            "filename": attachment.filename,
            "spoiler": attachment.is_spoiler(),
        }
    )


def anime_job(
    runner: JobRunner,
    interaction: discord.Interaction[discord.Client],
    lang: str,
    thinking_id: int | None,
    image: discord.Attachment,
    options: dict[str, Any],
) -> Job:
    """A deferred `/anime`: one picture, one answer."""
    return _job(
        runner,
        interaction,
        lang,
        thinking_id,
        source=_attachment(image),
        options={"command": "anime", **options, "fmt": "jpeg"},
    )


def clip_job(
    runner: JobRunner,
    interaction: discord.Interaction[discord.Client],
    lang: str,
    thinking_id: int | None,
    clip: discord.Attachment,
    options: dict[str, Any],
) -> Job:
    """A deferred `/anime` or Anime-fy on a video or GIF: every frame, one answer. A GIF may
    be a still picture (converted as a photo then) and comes back as a GIF when that fits."""
    gif = (clip.content_type or "").lower() == "image/gif" or clip.filename.lower().endswith(".gif")
    return _job(
        runner,
        interaction,
        lang,
        thinking_id,
        source=_attachment(clip),
        options={**options, CLIP: True, "gif": gif, "still_as_photo": gif, "fmt": "jpeg"},
    )


def menu_job(
    runner: JobRunner,
    interaction: discord.Interaction[discord.Client],
    lang: str,
    thinking_id: int | None,
    images: Sequence[discord.Attachment],
    skipped: dict[str, int],
) -> Job:
    """A deferred Anime-fy: up to four pictures, answered together (a batch)."""
    items = [_attachment(a) for a in images]
    return _job(
        runner,
        interaction,
        lang,
        thinking_id,
        source={"kind": BATCH, "items": items, **skipped},
        options={"command": "menu", "fmt": "jpeg"},
    )


def _job(
    runner: JobRunner,
    interaction: discord.Interaction[discord.Client],
    lang: str,
    thinking_id: int | None,
    *,
    source: dict[str, Any],
    options: dict[str, Any],
) -> Job:
    chat = chat_id(interaction)
    return Job(
        platform=PLATFORM,
        user_id=str(interaction.user.id),
        chat_id=None if chat is None else str(chat),
        lang=lang,
        request_id=runner.job_key(PLATFORM, str(interaction.id)),
        source=source,
        options=options,
        outlet={
            "kind": PLATFORM,
            "application_id": interaction.application_id,
            "token": interaction.token,
            "thinking_id": thinking_id,
            "filesize_limit": interaction.filesize_limit,
        },
    )


async def take_in(
    converter: Converter, interaction: discord.Interaction[discord.Client], job: Job
) -> None:
    """Hand a deferred interaction's job to the runner (stored, then run; the outlet uses the
    live interaction while it is in this process)."""
    converter.live[job.request_id] = interaction
    accepted = None
    try:
        accepted = await converter.runner.accept(job)
    except AlreadyAccepted:  # Discord never delivers an interaction twice
        log.warning("job %s: already accepted", job.request_id)
    finally:
        if accepted is None:
            converter.live.pop(job.request_id, None)
