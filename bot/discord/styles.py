"""/styles: each installed style's preview image, so people choose a style by looking."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import discord

from bot.discord.translator import language
from i18n import catalogue, t
from service.runtime import Runtime

EMBEDS_MAX = 10  # Discord: embeds (and files) per message


def style_name(style: str, title: str, lang: str) -> str:
    key = f"style.{style}"
    return t(key, lang) if key in catalogue("en") else title


async def preview_messages(
    runtime: Runtime, lang: str
) -> list[tuple[list[discord.Embed], list[discord.File]]]:
    """Messages of at most ten embeds, each showing one style's attached preview."""
    service = runtime.service
    shown: list[tuple[str, str, Path]] = [
        (style, title, path)
        for style, title in service.style_titles().items()
        if (path := service.style_preview(style)) is not None
    ]
    messages: list[tuple[list[discord.Embed], list[discord.File]]] = []
    for start in range(0, len(shown), EMBEDS_MAX):
        embeds, files = [], []
        for style, title, path in shown[start : start + EMBEDS_MAX]:
            data = await asyncio.to_thread(path.read_bytes)
            filename = f"{style}.jpg"
            files.append(discord.File(io.BytesIO(data), filename=filename))
            embed = discord.Embed(title=style_name(style, title, lang))
            embed.set_image(url=f"attachment://{filename}")
            embeds.append(embed)
        messages.append((embeds, files))
    return messages


async def run_styles(runtime: Runtime, interaction: discord.Interaction[discord.Client]) -> None:
    """Privately: the previews, then how to pick one."""
    lang = language(interaction)
    messages = await preview_messages(runtime, lang)
    hint = t("dc.styles.hint", lang)
    if not messages:
        await interaction.response.send_message(hint, ephemeral=True)
        return
    (embeds, files), rest = messages[0], messages[1:]
    await interaction.response.send_message(hint, embeds=embeds, files=files, ephemeral=True)
    for embeds, files in rest:
        await interaction.followup.send(embeds=embeds, files=files, ephemeral=True)
