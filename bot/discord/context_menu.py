"""The "Anime-fy" message command: convert the image attachments of any message."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import discord
from discord import app_commands

from bot.discord.clips import is_clip_attachment, run_clip
from bot.discord.conversion import (
    ConversionFailed,
    Converted,
    Converter,
    Origin,
    Source,
    looks_like_image,
    safe_stem,
)
from bot.discord.jobs import PutOff, accept, run_durably
from bot.discord.render import MenuOutcome, menu_embed, pack, style_label
from bot.discord.respond import Followup, defer_public, send_error
from bot.discord.translator import language, text
from i18n import t
from service.errors import ShuttingDown

log = logging.getLogger("animebot.discord")

MAX_IMAGES = 4  # images converted from one message; the rest are skipped (and said so)


async def run_menu(
    converter: Converter,
    titles: dict[str, str],
    interaction: discord.Interaction[discord.Client],
    message: discord.Message,
    *,
    clips: bool = True,
) -> None:
    found = [a for a in message.attachments if is_clip_attachment(a)] if clips else []
    if found:  # a video or GIF: the first one, every frame (bot/discord/clips)
        await run_clip(
            converter,
            interaction,
            found[0],
            style=None,
            faces=None,
            photo_fallback=lambda: run_menu(converter, titles, interaction, message, clips=False),
        )
        return
    lang = language(interaction)
    images = [a for a in message.attachments if looks_like_image(a)]
    not_images = len(message.attachments) - len(images)
    if not images:
        await send_error(interaction, t("dc.menu.no_images", lang))
        return
    chosen = images[:MAX_IMAGES]
    thinking_id = await defer_public(interaction)
    skipped = {"skipped_over_limit": len(images) - len(chosen), "skipped_not_images": not_images}
    job_id = await accept(
        converter.service, interaction, lang, thinking_id, chosen, {"command": "menu"}, **skipped
    )
    followup = Followup.live(interaction, thinking_id)
    origin = Origin.of(interaction)
    await run_durably(
        converter.service,
        followup,
        lang,
        job_id,
        lambda: menu(converter, titles, followup, origin, chosen, lang, **skipped),
        interaction,
    )


async def menu(
    converter: Converter,
    titles: dict[str, str],
    followup: Followup,
    origin: Origin,
    chosen: Sequence[Source],
    lang: str,
    *,
    skipped_over_limit: int,
    skipped_not_images: int,
) -> None:
    """Convert the chosen pictures and post them together (after the deferral; also for a
    resumed job)."""
    started = time.perf_counter()
    results = await asyncio.gather(
        *(
            converter.convert(origin, a, lang=lang, name=f"anime-{i}-{safe_stem(a.filename)}")
            for i, a in enumerate(chosen, 1)
        ),
        return_exceptions=True,
    )
    done: list[Converted] = []
    failures: list[tuple[str, str]] = []
    for attachment, result in zip(chosen, results, strict=True):
        if isinstance(result, ConversionFailed) and result.code == ShuttingDown.code:
            raise PutOff from result  # all of it after the restart (what finished is cached)
        if isinstance(result, ConversionFailed):
            failures.append((attachment.filename, result.message))
        elif isinstance(result, BaseException):
            raise result  # a bug: the tree's error handler answers with a reference
        else:
            done.append(result)
    if not done:
        if len(failures) == 1:
            await followup.error(failures[0][1])
        else:
            lines = (t("dc.result.failed_item", lang, filename=n, reason=r) for n, r in failures)
            await followup.error("\n".join(lines)[:2000])
        return
    outcome = MenuOutcome(
        replies=[d.reply for d in done],
        files=[d.file for d in done],
        failures=failures,
        skipped_over_limit=skipped_over_limit,
        skipped_not_images=skipped_not_images,
        limit=MAX_IMAGES,
        elapsed_ms=(time.perf_counter() - started) * 1000,
    )
    embed = menu_embed(outcome, lang, [style_label(d.reply.style, lang, titles) for d in done])
    # One message with every result, or several when together they exceed the upload limit.
    groups = pack(outcome.files, origin.filesize_limit)
    by_file = {d.file.filename: d.reply.request_id for d in done}
    for index, group in enumerate(groups):
        try:
            await followup.send(
                embed=embed if index == 0 else None, files=[f.to_discord() for f in group]
            )
        except discord.HTTPException as exc:
            for f in group:
                await converter.delivery_failed(origin, exc, by_file[f.filename])
            await followup.error(t("dc.error.upload", lang))
            return


def add_context_menu(
    tree: app_commands.CommandTree[discord.Client],
    converter: Converter,
    titles: dict[str, str],
) -> None:
    @tree.context_menu(name=text("dc.cmd.menu"))
    async def anime_fy(
        interaction: discord.Interaction[discord.Client], message: discord.Message
    ) -> None:
        await run_menu(converter, titles, interaction, message)
