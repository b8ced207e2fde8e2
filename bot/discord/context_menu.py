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
from bot.discord.jobs import menu_job, take_in
from bot.discord.outlet import MAX_IMAGES
from bot.discord.respond import defer_public, send_error
from bot.discord.translator import language, text
from i18n import t

log = logging.getLogger("animebot.discord")

__all__ = ["MAX_IMAGES", "add_context_menu", "run_menu"]


async def run_menu(
    converter: Converter,
    interaction: discord.Interaction[discord.Client],
    message: discord.Message,
) -> None:
    found = [a for a in message.attachments if is_clip_attachment(a)]
    if found:  # a video or GIF: the first one, every frame (bot/discord/clips)
        await run_clip(converter, interaction, found[0], {"command": "menu"})
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


def add_context_menu(tree: app_commands.CommandTree[discord.Client], converter: Converter) -> None:
    @tree.context_menu(name=text("dc.cmd.menu"))
    async def anime_fy(
        interaction: discord.Interaction[discord.Client], message: discord.Message
    ) -> None:
        await run_menu(converter, interaction, message)
