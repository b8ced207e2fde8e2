"""Slash commands: /anime (convert an attached photo), /styles (what each style looks like)
and /stats (admins: usage statistics)."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.discord.clips import is_clip_attachment, run_clip
from bot.discord.conversion import PLATFORM, Converter, Origin
from bot.discord.jobs import anime_job, take_in
from bot.discord.render import fit_file, stats_embed
from bot.discord.respond import defer_public, send, send_error
from bot.discord.styles import run_styles
from bot.discord.translator import language, style_choice_name, text
from i18n import t
from service.runtime import Runtime

log = logging.getLogger("animebot.discord")

MAX_CHOICES = 25  # Discord's limit of choices on one option
STATS_DAYS = 30


def style_titles(runtime: Runtime) -> dict[str, str]:
    """Installed scene styles, name -> title, in the registry's order."""
    return runtime.service.style_titles()


def style_choices(titles: dict[str, str]) -> list[app_commands.Choice[str]]:
    if len(titles) > MAX_CHOICES:
        log.warning("%d styles installed: /anime offers the first %d", len(titles), MAX_CHOICES)
    return [
        app_commands.Choice(name=style_choice_name(name, title), value=name)
        for name, title in list(titles.items())[:MAX_CHOICES]
    ]


def may_see_stats(interaction: discord.Interaction[discord.Client], runtime: Runtime) -> bool:
    """Bot admins (DISCORD_ADMINS) anywhere; members with Manage Server in their guild."""
    if runtime.runner.is_admin(PLATFORM, interaction.user.id):
        return True
    if interaction.guild_id is None:
        return False
    permissions = interaction.permissions
    return permissions.manage_guild or permissions.administrator


async def run_anime(
    converter: Converter,
    titles: dict[str, str],
    interaction: discord.Interaction[discord.Client],
    image: discord.Attachment,
    style: str | None,
    faces: bool | None,
    side_by_side: bool,
) -> None:
    if is_clip_attachment(image):  # a video or GIF: every frame (bot/discord/clips)
        options = {"command": "anime", "style": style, "faces": faces}
        await run_clip(converter, interaction, image, {**options, "side_by_side": side_by_side})
        return
    lang = language(interaction)
    origin = Origin.of(interaction)
    if converter.too_large(image):  # refused before downloading anything
        await send_error(interaction, await converter.refuse_too_large(origin, lang))
        return
    thinking_id = await defer_public(interaction)
    options = {"style": style, "faces": faces, "side_by_side": side_by_side}
    job = anime_job(converter.runner, interaction, lang, thinking_id, image, options)
    await take_in(converter, interaction, job)  # bot/discord/outlet.py answers


async def run_stats(
    runtime: Runtime, titles: dict[str, str], interaction: discord.Interaction[discord.Client]
) -> None:
    lang = language(interaction)
    if not may_see_stats(interaction, runtime):
        await send_error(interaction, t("dc.stats.denied", lang))
        return
    await interaction.response.defer(thinking=True, ephemeral=True)
    summary = await runtime.service.stats(STATS_DAYS)
    chart = await runtime.service.stats_chart(STATS_DAYS)
    out = await fit_file(chart, interaction.filesize_limit, stem="stats", ext="png")
    embed = stats_embed(summary, lang, titles, None if out is None else out.filename)
    await send(
        interaction, embed=embed, files=[] if out is None else [out.to_discord()], ephemeral=True
    )


def add_commands(
    tree: app_commands.CommandTree[discord.Client], runtime: Runtime, converter: Converter
) -> None:
    """Register /anime (style choices = the installed scene styles, read now), /styles (their
    previews) and /stats."""
    titles = style_titles(runtime)
    choices = style_choices(titles)

    @tree.command(name="anime", description=text("dc.cmd.anime.description"))
    @app_commands.describe(
        image=text("dc.cmd.anime.image"),
        style=text("dc.cmd.anime.style"),
        faces=text("dc.cmd.anime.faces"),
        side_by_side=text("dc.cmd.anime.side_by_side"),
    )
    @app_commands.choices(style=choices)
    async def anime(
        interaction: discord.Interaction[discord.Client],
        image: discord.Attachment,
        style: app_commands.Choice[str] | None = None,
        faces: bool | None = None,
        side_by_side: bool = False,
    ) -> None:
        chosen = None if style is None else style.value
        await run_anime(converter, titles, interaction, image, chosen, faces, side_by_side)

    @tree.command(name="styles", description=text("dc.cmd.styles.description"))
    async def styles(interaction: discord.Interaction[discord.Client]) -> None:
        await run_styles(runtime, interaction)

    @tree.command(name="stats", description=text("dc.cmd.stats.description"))
    async def stats(interaction: discord.Interaction[discord.Client]) -> None:
        await run_stats(runtime, titles, interaction)
