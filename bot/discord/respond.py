"""Answering an interaction: public "thinking…", the result, and errors that stay private.

Discord makes the first follow-up after a deferral *replace* the "thinking" message and keep
the deferral's visibility, whatever flags the follow-up carries. Results are public, so
conversions defer publicly; an error after that must not be shown to the whole channel. So
`send_error` first deletes the still-pending "thinking" message: the interaction then has
no message left to resolve, and the ephemeral follow-up is a new, private message. Errors
found before deferring (a too-large attachment, a refused /stats) are a plain ephemeral
response.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord

from bot.discord.progress import close_waiting_notice

log = logging.getLogger("animebot.discord")

_PENDING = "animebot.public_thinking"  # Interaction.extras key: a public deferral unresolved


async def defer_public(interaction: discord.Interaction[discord.Client]) -> None:
    """Show "<bot> is thinking…" to the channel."""
    await interaction.response.defer(thinking=True)
    interaction.extras[_PENDING] = True


async def send(
    interaction: discord.Interaction[discord.Client],
    *,
    content: str | None = None,
    embed: discord.Embed | None = None,
    files: Sequence[discord.File] = (),
    ephemeral: bool = False,
) -> discord.WebhookMessage:
    """A follow-up (the first one replaces the "thinking" message)."""
    kwargs: dict[str, Any] = {"wait": True, "ephemeral": ephemeral}
    if content is not None:
        kwargs["content"] = content
    if embed is not None:
        kwargs["embed"] = embed
    if files:
        kwargs["files"] = list(files)
    status_shown = await close_waiting_notice(interaction)
    message: discord.WebhookMessage = await interaction.followup.send(**kwargs)
    interaction.extras[_PENDING] = False
    if status_shown:  # the result is a new message; the queue status goes (as on Telegram)
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            log.debug("could not delete the queue status (HTTP %s)", exc.status)
    return message


async def send_error(interaction: discord.Interaction[discord.Client], message: str) -> None:
    """Tell only the person who asked, whatever state the interaction is in."""
    await close_waiting_notice(interaction)  # a queue status is deleted below, like "thinking"
    if not interaction.response.is_done():
        await interaction.response.send_message(message, ephemeral=True)
        return
    if interaction.extras.pop(_PENDING, False):
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            # The follow-up below then resolves the public "thinking" message publicly:
            # better a visible error than none.
            log.warning("could not delete the thinking message (HTTP %s)", exc.status)
    await interaction.followup.send(message, ephemeral=True)
