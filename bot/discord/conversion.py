"""One attachment in, one upload-ready result out, through the job runner's worker half.

Shared by /anime and the Anime-fy context menu, live or resumed after a restart (bot/discord/
jobs.py): a conversion needs only an `Origin` (who asked, where, the upload limit) and an
attachment-like `Source` (a live `discord.Attachment`, or one a durable job stored). The
runner checks the size, downloads, converts (encoded once to fit the upload limit) and writes
the photo's one usage row; a failed upload updates that row. Every failure comes back as
`ConversionFailed` carrying a translated sentence (never exception text) and the error code.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any, Protocol

import aiohttp
import discord

from bot.discord.progress import waiting_notice
from bot.discord.render import OutFile
from core.errors import AnimeBotError, ImageTooLarge
from i18n import error_message, t
from service.convert import ConversionReply
from service.lifecycle import DownloadFailed, FetchFailed, Job, OutletLimits
from service.runtime import Runtime

log = logging.getLogger("animebot.discord")

PLATFORM = "discord"
ATTACHMENT = "discord_attachment"  # a job's source kind
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


@dataclass(frozen=True)
class Converted:
    reply: ConversionReply
    file: OutFile
    job: Job  # the photo's job (its request id keys its usage row)


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
    """Converts Discord attachments through the process's job runner (its worker half: the
    size check, the download, the conversion encoded once to fit the upload limit, and one
    usage row per photo); the front end posts the results."""

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
        request_id: str | None = None,
    ) -> Converted:
        """Download and convert `attachment`, encoded to fit the origin's upload limit."""
        job = replace(
            request_job(origin, lang, request_id),
            source={"kind": ATTACHMENT, "url": attachment.url, "size": attachment.size},
            options={
                "style": style,
                "faces": faces,
                "side_by_side": side_by_side,
                "fmt": "jpeg",  # small uploads; real transparency still comes back PNG
            },
        )
        progress = (
            None
            if origin.interaction is None
            else waiting_notice(origin.interaction, lang).reporter()
        )
        try:
            reply = await self.runner.convert(
                job, OutletLimits(max_bytes=origin.filesize_limit), progress
            )
        except DownloadFailed as exc:
            raise ConversionFailed(t("dc.error.download", lang), exc.code) from exc
        except AnimeBotError as exc:
            # Internal errors were logged by the service with this request id (the reference
            # the message shows); the others are the person's input or our limits.
            log.info("request %s: %s", job.request_id, exc.code)
            raise ConversionFailed(error_message(exc, lang), exc.code) from exc
        if len(reply.data) > origin.filesize_limit:  # not even a small JPEG fits
            log.info(
                "request %s: result cannot fit %d bytes", job.request_id, origin.filesize_limit
            )
            await self.runner.delivery_failed(job, "result_too_large")
            raise ConversionFailed(t("dc.error.result_too_large", lang))
        recompressed = "recompressed" in reply.notes
        stem = f"anime-{reply.style}" if name is None else name
        out = OutFile(
            reply.data,
            f"{stem}.{reply.ext}",
            recompressed=recompressed,
            spoiler=attachment.is_spoiler(),
        )
        log.info(
            "request %s: %s %dx%d in %.0f ms%s",
            reply.request_id,
            reply.style,
            reply.width,
            reply.height,
            reply.total_ms,
            " (recompressed)" if recompressed else "",
        )
        return Converted(reply, out, job)

    async def delivery_failed(self, done: Converted, exc: discord.HTTPException) -> None:
        """Discord refused the upload: log it, and the photo's usage row says so."""
        log.warning(
            "request %s: Discord refused the result (HTTP %s)", done.job.request_id, exc.status
        )
        await self.runner.delivery_failed(done.job, "delivery_failed")

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
