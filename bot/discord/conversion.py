"""What the Discord front end needs around the job runner: who asked (`Origin`), whether an
attachment is an image and small enough to take, and how the runner fetches attachments
(`Converter.register`: from the CDN by URL, with the client's HTTP session). The runner does
the rest (bot/discord/outlet.py answers)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any, Protocol

import aiohttp
import discord

from core.errors import ImageTooLarge
from i18n import error_message
from service.lifecycle import FetchFailed, Job
from service.runtime import Runtime

log = logging.getLogger("animebot.discord")

PLATFORM = "discord"
ATTACHMENT = "discord_attachment"  # a job's source kind
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".heic", ".heif", ".avif", ".bmp", ".tif", ".tiff"}
)


class Source(Protocol):
    """What a conversion needs of an attachment (`discord.Attachment` is one)."""

    @property
    def filename(self) -> str: ...

    @property
    def url(self) -> str: ...

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


def request_job(origin: Origin, lang: str, request_id: str | None = None) -> Job:
    """A Discord request as the job runner knows it (its source and options come later)."""
    job = Job(
        platform=PLATFORM,
        user_id=str(origin.user_id),
        chat_id=None if origin.chat_id is None else str(origin.chat_id),
        lang=lang,
        source={"kind": ATTACHMENT},
        outlet={"kind": PLATFORM},
        durable=False,  # the interaction's job row is kept by bot/discord/jobs.py
    )
    return job if request_id is None else replace(job, request_id=request_id)


class Converter:
    """The Discord front end's handle on the job runner: the size check made before
    deferring, the attachment fetcher, and the live interactions of this process."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.service = runtime.service
        self.runner = runtime.runner
        # request id -> the live interaction of an /anime job run here (bot/discord/outlet.py)
        self.live: dict[str, discord.Interaction[Any]] = {}

    @property
    def max_upload_bytes(self) -> int:
        return self.runtime.settings.max_upload_bytes

    def too_large(self, attachment: Source) -> bool:
        return attachment.size > self.max_upload_bytes

    async def refuse_too_large(self, origin: Origin, lang: str) -> str:
        """Record the refusal (a usage row) and return the translated reason."""
        error = ImageTooLarge("attachment too large", limit=self.max_upload_bytes)
        await self.runner.refuse(request_job(origin, lang), error)
        return error_message(error, lang)

    def register(self, http: Any) -> None:
        """The runner fetches Discord attachments from the CDN by URL, with this client's
        HTTP session (all a worker process needs)."""

        async def fetch(job: Job) -> bytes:
            try:
                data: bytes = await http.get_from_cdn(str(job.source["url"]))
            except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning("attachment download failed: %s", type(exc).__name__)
                raise FetchFailed("download_failed", type(exc).__name__) from exc
            return data

        self.runner.fetchers.register(ATTACHMENT, fetch)
