"""Discord's outlet: how the job runner answers a deferred `/anime`.

Built from the job alone: the interaction's application id and token (its follow-up
webhook, valid 15 minutes from the interaction) and the id of the public "thinking…"
message, so a process that holds only the bot's HTTP session can deliver. When the live
interaction is in this process (`Live`), it is used as well: the queue status edits the
deferred response, and errors go the private way discord.py's interaction knows
(bot/discord/respond.py). A clip's percentage edits the deferred response too (by the
"thinking" message's id from a worker or after a restart), which then makes way for the clip.

Job fields it uses: `outlet = {"kind": "discord", "application_id", "token", "thinking_id",
"filesize_limit"}`; `source = {"kind": "discord_attachment", "url", "size", "filename",
"spoiler"}`, or for Anime-fy `{"kind": "batch", "items": [those], "skipped_over_limit",
"skipped_not_images"}` (several photos, one answer: `deliver_batch`); a clip's `options["gif"]`
(a GIF back when it fits).
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import discord

from bot.discord.clips import PROGRESS_INTERVAL_S, caption
from bot.discord.conversion import PLATFORM, safe_stem
from bot.discord.jobs import ANSWERED, attachment_source
from bot.discord.progress import waiting_notice
from bot.discord.render import MenuOutcome, OutFile, menu_embed, pack, result_embed, style_label
from bot.discord.respond import Followup
from core.errors import AnimeBotError
from i18n import error_message, t
from service.clips import ClipReply, ClipService
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
from service.lifecycle.job import BATCH

log = logging.getLogger("animebot.discord")

KIND = PLATFORM
MAX_IMAGES = 4  # images converted from one message; the rest are skipped (and said so)
DEFAULT_UPLOAD_LIMIT = 8 * 1024 * 1024

Live = dict[str, discord.Interaction[Any]]  # request id -> the interaction, while it runs here


class DiscordOutlet:
    def __init__(
        self,
        job: Job,
        *,
        client: discord.Client,
        titles: dict[str, str],
        live: Live,
        clips: ClipService,
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
        self.limits = OutletLimits(max_bytes=limit, clip_max_bytes=limit)
        self._titles = titles
        self._clips = clips
        self._percent_shown = -1
        self._percent_at = -math.inf
        self._progressed = False  # the deferred response shows a clip's percentage
        self._live = live
        self._started = time.perf_counter()
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

    async def frames(self, job: Job, done: int, total: int) -> None:
        percent = 100 * done // max(1, total)
        now = time.monotonic()
        if percent == self._percent_shown or now - self._percent_at < PROGRESS_INTERVAL_S:
            return
        self._percent_at = now
        if await self.followup.progress(t("clip.progress", job.lang, percent=percent)):
            self._percent_shown, self._progressed = percent, True

    async def deliver_clip(self, job: Job, reply: ClipReply) -> None:
        limit = self.limits.max_bytes or DEFAULT_UPLOAD_LIMIT
        body, ext = reply.clip.data, reply.clip.ext
        if job.option("gif"):  # GIFs play inline on Discord, videos on a click
            as_gif = await self._clips.as_gif(reply, limit)
            if as_gif is not None:
                body, ext = as_gif, "gif"
        if len(body) > limit:
            log.info("request %s: clip cannot fit %d bytes", job.request_id, limit)
            raise DeliveryFailed("result_too_large")
        name = f"anime-{safe_stem(str(job.source.get('filename') or 'clip'), 'clip')}.{ext}"
        file = discord.File(io.BytesIO(body), filename=name)
        if self._progressed:  # the progress goes; the clip comes as a message of its own
            await self.followup.drop_thinking()
        try:
            await self.followup.send(content=caption(reply, job.lang), files=[file])
        except discord.HTTPException as exc:
            log.warning(
                "request %s: Discord refused the clip (HTTP %s)", job.request_id, exc.status
            )
            raise DeliveryFailed("delivery_failed", f"HTTP {exc.status}") from exc

    async def fail(self, job: Job, error: AnimeBotError) -> None:
        if isinstance(error, Expired):
            return  # the token cannot answer any more: nobody to tell
        if isinstance(error, GaveUp):
            text = t("job.gave_up", job.lang)
        elif isinstance(error, DeliveryError):
            key = (
                "dc.error.result_too_large"
                if error.kind == "result_too_large"
                else "dc.error.upload"
            )
            text = t(key, job.lang)
        else:
            text = self._reason(error, job.lang)  # InternalError carries its reference
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

    async def deliver_batch(
        self, job: Job, items: Sequence[tuple[Job, ConversionReply | AnimeBotError]]
    ) -> list[tuple[str, str]]:
        """Anime-fy: every result in one message (several when together they exceed the
        upload limit), with what failed and what was skipped; the (request id, kind) of the
        results that could not be delivered, for their usage rows."""
        lang = job.lang
        limit = self.limits.max_bytes or DEFAULT_UPLOAD_LIMIT
        done: list[tuple[Job, ConversionReply, OutFile]] = []
        failures: list[tuple[str, str]] = []
        undelivered: list[tuple[str, str]] = []
        for n, (part, result) in enumerate(items, 1):
            filename = str(part.source.get("filename") or "image")
            if isinstance(result, AnimeBotError):
                failures.append((filename, self._reason(result, lang)))
            elif len(result.data) > limit:
                undelivered.append((part.request_id, "result_too_large"))
                failures.append((filename, t("dc.error.result_too_large", lang)))
            else:
                out = OutFile(
                    result.data,
                    f"anime-{n}-{safe_stem(filename)}.{result.ext}",
                    recompressed="recompressed" in result.notes,
                    spoiler=bool(part.source.get("spoiler")),
                )
                done.append((part, result, out))
        if self.interaction is not None:
            self.interaction.extras[ANSWERED] = True
        if not done:
            if len(failures) == 1:
                text = failures[0][1]
            else:
                lines = (
                    t("dc.result.failed_item", lang, filename=f, reason=r) for f, r in failures
                )
                text = "\n".join(lines)[:2000]
            await self.followup.error(text)
            return undelivered
        outcome = MenuOutcome(
            replies=[reply for _, reply, _ in done],
            files=[out for _, _, out in done],
            failures=failures,
            skipped_over_limit=int(job.source.get("skipped_over_limit", 0)),
            skipped_not_images=int(job.source.get("skipped_not_images", 0)),
            limit=MAX_IMAGES,
            elapsed_ms=(time.perf_counter() - self._started) * 1000,
        )
        labels = [style_label(reply.style, lang, self._titles) for _, reply, _ in done]
        embed = menu_embed(outcome, lang, labels)
        groups = pack(outcome.files, limit)
        by_file = {out.filename: part.request_id for part, _, out in done}
        for index, group in enumerate(groups):
            try:
                await self.followup.send(
                    embed=embed if index == 0 else None, files=[f.to_discord() for f in group]
                )
            except discord.HTTPException as exc:
                log.warning(
                    "job %s: Discord refused the results (HTTP %s)", job.request_id, exc.status
                )
                unsent = [f for later in groups[index:] for f in later]
                undelivered += [(by_file[f.filename], "delivery_failed") for f in unsent]
                await self.followup.error(t("dc.error.upload", lang))
                break
        return undelivered

    @staticmethod
    def _reason(error: AnimeBotError, lang: str) -> str:
        if isinstance(error, DownloadFailed):
            return t("dc.error.download", lang)
        return error_message(error, lang)


def upgrade(job: Job) -> Job:
    """A job row stored before the job lifecycle: its attachments were a list (one for
    `/anime`, up to four for Anime-fy)."""
    attachments = job.source.get("attachments")
    if job.source.get("kind") or not attachments:
        return job
    options = {**job.options, "fmt": "jpeg"}
    if job.option("command") == "menu":
        skipped = {k: v for k, v in job.source.items() if k.startswith("skipped_")}
        items = [attachment_source(a) for a in attachments]
        return replace(job, source={"kind": BATCH, "items": items, **skipped}, options=options)
    return replace(job, source=attachment_source(attachments[0]), options=options)


def register(runner: JobRunner, client: discord.Client, titles: dict[str, str]) -> Live:
    """Make the runner answer Discord `/anime` jobs through this client's HTTP session; the
    map the front end fills with the live interactions of this process."""
    live: Live = {}

    def outlet(job: Job) -> DiscordOutlet:
        return DiscordOutlet(job, client=client, titles=titles, live=live, clips=runner.clips)

    runner.outlets.register(KIND, outlet)
    runner.upgrades[KIND] = upgrade
    return live
