"""Durable Discord jobs: a deferred /anime or Anime-fy survives a crash or a restart.

Discord cannot deliver an interaction twice, and its token answers follow-ups for 15 minutes
from the interaction. So right after the deferral ("thinking…") the job is stored: who asked,
the attachments (CDN URL, name, size), the options, and where the answer goes (application
id, interaction token, the thinking message). It is deleted once the person has an answer.
A shutdown that turns the conversion away (ShuttingDown) or cuts it short keeps it, and the
person is told, privately, that the picture will be posted when the bot is back. At start
(bot/discord/resume.py) jobs younger than RESUME_WITHIN_S are finished through the follow-up
webhook; older ones can no longer be answered and are dropped with a recorded failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import discord

from bot.discord.conversion import PLATFORM, chat_id
from bot.discord.respond import Followup
from i18n import error_message, t
from service.errors import ShuttingDown
from service.jobs import to_the_end
from service.lifecycle import Job, JobRunner

log = logging.getLogger("animebot.discord")

TOKEN_LIFETIME_S = 15 * 60  # an interaction token answers follow-ups this long
RESUME_WITHIN_S = TOKEN_LIFETIME_S - 60  # a minute left to convert and post
NOTICE_S = 3.0  # cut short by a shutdown: at most this long to tell the person
ANSWERED = "animebot.answered"  # Interaction.extras: the job told the person itself


class PutOff(Exception):
    """A conversion of the job was turned away by the shutdown: keep the job for later."""


@dataclass(frozen=True)
class StoredAttachment:
    """An attachment as a job stores it: enough to download it again after a restart."""

    url: str
    filename: str
    size: int
    content_type: str | None = None
    spoiler: bool = False
    http: Any = None  # discord's HTTPClient (reads from the CDN); not stored

    def is_spoiler(self) -> bool:
        return self.spoiler

    async def read(self) -> bytes:
        data: bytes = await self.http.get_from_cdn(self.url)
        return data

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "filename": self.filename,
            "size": self.size,
            "content_type": self.content_type,
            "spoiler": self.spoiler,
        }

    @classmethod
    def of(cls, attachment: discord.Attachment) -> StoredAttachment:
        return cls(
            attachment.url,
            attachment.filename,
            attachment.size,
            attachment.content_type,
            attachment.is_spoiler(),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any], http: Any) -> StoredAttachment:
        return cls(
            str(data["url"]),
            str(data["filename"]),
            int(data["size"]),
            data.get("content_type"),
            bool(data.get("spoiler")),
            http,
        )


def anime_job(
    runner: JobRunner,
    interaction: discord.Interaction[discord.Client],
    lang: str,
    thinking_id: int | None,
    image: discord.Attachment,
    options: dict[str, Any],
) -> Job:
    """A deferred `/anime` as a job the runner executes (bot/discord/outlet.py answers it)."""
    return Job(
        platform=PLATFORM,
        user_id=str(interaction.user.id),
        chat_id=None if (chat := chat_id(interaction)) is None else str(chat),
        lang=lang,
        request_id=runner.job_key(PLATFORM, str(interaction.id)),
        source={
            "kind": "discord_attachment",
            "url": image.url,
            "size": image.size,
            "filename": image.filename,
            "spoiler": image.is_spoiler(),
        },
        options={"command": "anime", **options, "fmt": "jpeg"},
        outlet=_outlet(interaction, thinking_id),
    )


def _outlet(
    interaction: discord.Interaction[discord.Client], thinking_id: int | None
) -> dict[str, Any]:
    return {
        "kind": PLATFORM,
        "application_id": interaction.application_id,
        "token": interaction.token,
        "thinking_id": thinking_id,
        "filesize_limit": interaction.filesize_limit,
    }


async def accept(
    runner: JobRunner,
    interaction: discord.Interaction[discord.Client],
    lang: str,
    thinking_id: int | None,
    attachments: Sequence[discord.Attachment],
    options: dict[str, Any],
    **source: Any,
) -> Job:
    """Store a deferred Anime-fy (several photos, one answer) as a job (`durable` False when
    it could not be); the menu runs it itself (`run_durably`)."""
    job = Job(
        platform=PLATFORM,
        user_id=str(interaction.user.id),
        chat_id=None if (chat := chat_id(interaction)) is None else str(chat),
        lang=lang,
        request_id=runner.job_key(PLATFORM, str(interaction.id)),
        source={"attachments": [StoredAttachment.of(a).to_dict() for a in attachments], **source},
        options=options,
        outlet=_outlet(interaction, thinking_id),
    )
    return await runner.store(job)


async def run_durably(
    runner: JobRunner,
    followup: Followup,
    lang: str,
    job: Job | None,
    work: Callable[[], Awaitable[None]],
    interaction: discord.Interaction[discord.Client] | None = None,
) -> None:
    """Do `work` (which answers the person); then the job is done and deleted. Put off by a
    shutdown (PutOff, or cancelled past the grace), it stays, and the person is told once."""
    try:
        await work()
    except PutOff:
        await _put_off(runner, followup, lang, job, interaction)
        return
    except asyncio.CancelledError:
        if followup.answered:  # a result (or its reason) is out: done, not to be run again
            if job is not None:
                await to_the_end(runner.finish(job))
        else:
            await _put_off(runner, followup, lang, job, interaction)
        raise
    except Exception:
        if job is not None:  # a bug: the error handler answers; do not repeat it forever
            await runner.finish(job)
        raise
    if job is not None:
        await runner.finish(job)


async def _put_off(
    runner: JobRunner,
    followup: Followup,
    lang: str,
    job: Job | None,
    interaction: discord.Interaction[discord.Client] | None,
) -> None:
    durable = job is not None and job.durable
    if durable:
        text = t("job.deferred_interaction", lang)
    else:
        text = error_message(ShuttingDown("shutting down"), lang)
    if interaction is not None:
        interaction.extras[ANSWERED] = True
    try:
        async with asyncio.timeout(NOTICE_S):
            await followup.error(text)
    except (TimeoutError, discord.HTTPException) as exc:
        ref = None if job is None else job.request_id
        log.info("job %s: could not tell the person about the restart (%r)", ref, exc)
    if job is not None and durable:
        thinking = followup.thinking_id if followup.thinking else None
        await to_the_end(runner.defer(job, thinking_id=thinking))
