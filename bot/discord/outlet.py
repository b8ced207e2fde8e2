"""Discord's outlet: how the job runner answers a deferred `/anime`.

Built from the job alone: the interaction's application id and token (its follow-up
webhook, valid 15 minutes from the interaction) and the id of the public "thinking…"
message, so a process that holds only the bot's HTTP session can deliver. When the live
interaction is in this process (`Live`), it is used as well: the queue status edits the
deferred response, and errors go the private way discord.py's interaction knows
(bot/discord/respond.py).

Job fields it uses: `outlet = {"kind": "discord", "application_id", "token", "thinking_id",
"filesize_limit"}`; `source = {"kind": "discord_attachment", "url", "size", "filename",
"spoiler"}`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import discord

from bot.discord.conversion import PLATFORM
from bot.discord.jobs import ANSWERED
from bot.discord.progress import waiting_notice
from bot.discord.render import OutFile, result_embed, style_label
from bot.discord.respond import Followup
from core.errors import AnimeBotError
from i18n import error_message, t
from service.convert import ConversionReply
from service.errors import ShuttingDown
from service.fairqueue import QueueStatus
from service.lifecycle import (
    DeliveryError,
    DeliveryFailed,
    DownloadFailed,
    Expired,
    GaveUp,
    Job,
    JobRunner,
    OutletLimits,
)

log = logging.getLogger("animebot.discord")

KIND = PLATFORM
DEFAULT_UPLOAD_LIMIT = 8 * 1024 * 1024

Live = dict[str, discord.Interaction[Any]]  # request id -> the interaction, while it runs here


class DiscordOutlet:
    def __init__(
        self, job: Job, *, client: discord.Client, titles: dict[str, str], live: Live
    ) -> None:
        outlet = job.outlet
        thinking = outlet.get("thinking_id")
        self.interaction = live.get(job.request_id)
        if self.interaction is not None:
            self.followup = Followup.live(self.interaction, thinking)
        else:
            self.followup = Followup.resumed(
                client, int(outlet["application_id"]), str(outlet["token"]), thinking
            )
        limit = int(outlet.get("filesize_limit") or DEFAULT_UPLOAD_LIMIT)
        self.limits = OutletLimits(max_bytes=limit)
        self._titles = titles
        self._live = live
        self._report = (
            None
            if self.interaction is None
            else waiting_notice(self.interaction, job.lang).reporter()
        )

    async def begin(self, job: Job) -> None:
        return None  # the deferral ("thinking…") already shows the work is under way

    async def notify(self, job: Job, status: QueueStatus) -> None:
        if self._report is not None:
            await self._report(status)

    async def deliver(self, job: Job, reply: ConversionReply) -> None:
        limit = self.limits.max_bytes or DEFAULT_UPLOAD_LIMIT
        if len(reply.data) > limit:  # not even the smallest JPEG fits
            log.info("request %s: result cannot fit %d bytes", job.request_id, limit)
            raise DeliveryFailed("result_too_large")
        out = OutFile(
            reply.data,
            f"anime-{reply.style}.{reply.ext}",
            recompressed="recompressed" in reply.notes,
            spoiler=bool(job.source.get("spoiler")),
        )
        label = style_label(reply.style, job.lang, self._titles)
        embed = result_embed(reply, out, job.lang, label)
        try:
            await self.followup.send(embed=embed, files=[out.to_discord()])
        except discord.HTTPException as exc:
            log.warning(
                "request %s: Discord refused the result (HTTP %s)", job.request_id, exc.status
            )
            raise DeliveryFailed("delivery_failed", f"HTTP {exc.status}") from exc

    async def fail(self, job: Job, error: AnimeBotError) -> None:
        if isinstance(error, Expired):
            return  # the token cannot answer any more: nobody to tell
        if isinstance(error, GaveUp):
            text = t("job.gave_up", job.lang)
        elif isinstance(error, DownloadFailed):
            text = t("dc.error.download", job.lang)
        elif isinstance(error, DeliveryError):
            key = (
                "dc.error.result_too_large"
                if error.kind == "result_too_large"
                else "dc.error.upload"
            )
            text = t(key, job.lang)
        else:
            text = error_message(error, job.lang)  # InternalError carries its reference
        if self.interaction is not None:
            self.interaction.extras[ANSWERED] = True
        try:
            await self.followup.error(text)
        except discord.HTTPException as exc:
            log.info("request %s: could not send the reason (HTTP %s)", job.request_id, exc.status)

    async def defer(self, job: Job) -> dict[str, Any]:
        if job.durable:
            text = t("job.deferred_interaction", job.lang)
        else:
            text = error_message(ShuttingDown("shutting down"), job.lang)
        if self.interaction is not None:
            self.interaction.extras[ANSWERED] = True
        try:
            await self.followup.error(text)
        except discord.HTTPException as exc:
            log.info(
                "job %s: could not tell the person about the restart (%r)", job.request_id, exc
            )
        return {"thinking_id": self.followup.thinking_id if self.followup.thinking else None}

    async def end(self, job: Job) -> None:
        self._live.pop(job.request_id, None)


def upgrade(job: Job) -> Job:
    """An `/anime` job row stored before the job lifecycle: its one attachment was a list."""
    attachments = job.source.get("attachments")
    if job.option("command") == "menu" or job.source.get("kind") or not attachments:
        return job
    first = attachments[0]
    source = {
        "kind": "discord_attachment",
        "url": first["url"],
        "size": first.get("size"),
        "filename": first.get("filename"),
        "spoiler": bool(first.get("spoiler")),
    }
    return replace(job, source=source, options={**job.options, "fmt": "jpeg"})


def register(runner: JobRunner, client: discord.Client, titles: dict[str, str]) -> Live:
    """Make the runner answer Discord `/anime` jobs through this client's HTTP session; the
    map the front end fills with the live interactions of this process."""
    live: Live = {}

    def outlet(job: Job) -> DiscordOutlet:
        return DiscordOutlet(job, client=client, titles=titles, live=live)

    runner.outlets.register(KIND, outlet)
    runner.upgrades[KIND] = upgrade
    return live
