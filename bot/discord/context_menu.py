"""The "Anime-fy" message command: convert the image attachments of any message.

Up to MAX_IMAGES pictures of the message become one job of the job runner (a batch: each
picture its own request and usage row), answered in one message by the outlet
(bot/discord/outlet.py, `deliver_batch`).
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.discord.clips import is_clip_attachment, run_clip
from bot.discord.conversion import Converter, looks_like_image
from bot.discord.jobs import menu_job
from bot.discord.outlet import MAX_IMAGES
from bot.discord.respond import defer_public, send_error
from bot.discord.translator import language, text
from i18n import t
from service.lifecycle import AlreadyAccepted, Job

log = logging.getLogger("animebot.discord")

__all__ = ["MAX_IMAGES", "add_context_menu", "run_menu"]


async def run_menu(
    converter: Converter,
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
            photo_fallback=lambda: run_menu(converter, interaction, message, clips=False),
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
    job = menu_job(converter.runner, interaction, lang, thinking_id, chosen, skipped)
    await take_in(converter, interaction, job)


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


def add_context_menu(tree: app_commands.CommandTree[discord.Client], converter: Converter) -> None:
    @tree.context_menu(name=text("dc.cmd.menu"))
    async def anime_fy(
        interaction: discord.Interaction[discord.Client], message: discord.Message
    ) -> None:
        await run_menu(converter, interaction, message)
