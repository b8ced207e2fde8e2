"""Answering an interaction: public "thinking…", the result, and errors that stay private.

Discord makes the first follow-up after a deferral *replace* the "thinking" message and keep
the deferral's visibility, whatever flags the follow-up carries. Results are public, so
conversions defer publicly; an error after that must not be shown to the whole channel. So
`send_error` first deletes the still-pending "thinking" message: the interaction then has
no message left to resolve, and the ephemeral follow-up is a new, private message. Errors
found before deferring (a too-large attachment, a refused /stats) are a plain ephemeral
response.

`Followup` answers a conversion either way: live through the functions here, or, for an
interaction resumed after a restart, through its follow-up webhook alone, rebuilt from the
application id and token a durable job stored (valid 15 minutes from the interaction); the
"thinking" message is then addressed by the id the deferral returned.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import discord

from bot.discord.progress import close_waiting_notice

log = logging.getLogger("animebot.discord")

_PENDING = "animebot.public_thinking"  # Interaction.extras key: a public deferral unresolved


async def defer_public(interaction: discord.Interaction[discord.Client]) -> int | None:
    """Show "<bot> is thinking…" to the channel; the id of that message when Discord says."""
    callback = await interaction.response.defer(thinking=True)
    interaction.extras[_PENDING] = True
    message_id = getattr(callback, "message_id", None)
    return message_id if isinstance(message_id, int) else None


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


class Followup:
    """The answers of a deferred interaction: results (public) and errors (only for the person
    who asked). Live, through `send` and `send_error` above; resumed after a restart, through
    the interaction's follow-up webhook alone."""

    def __init__(
        self,
        webhook: discord.Webhook,
        thinking_id: int | None,
        interaction: discord.Interaction[discord.Client] | None = None,
    ) -> None:
        self.webhook = webhook
        self.thinking_id = thinking_id  # the public "thinking…" message of the deferral
        self._interaction = interaction
        self._thinking = thinking_id is not None  # resumed: still unresolved
        self.answered = False  # the person has the result, or the reason why not

    @classmethod
    def live(
        cls, interaction: discord.Interaction[discord.Client], thinking_id: int | None
    ) -> Followup:
        return cls(interaction.followup, thinking_id, interaction)

    @classmethod
    def resumed(
        cls, client: discord.Client, application_id: int, token: str, thinking_id: int | None
    ) -> Followup:
        """After a restart: the same webhook `Interaction.followup` makes (an application
        webhook, so ephemeral messages work), from what the job stored."""
        webhook = discord.Webhook.partial(application_id, token, client=client)
        webhook.type = discord.WebhookType.application
        return cls(webhook, thinking_id)

    @property
    def thinking(self) -> bool:
        """Whether the public "thinking…" message is still there, unresolved."""
        if self._interaction is not None:
            return bool(self._interaction.extras.get(_PENDING, False))
        return self._thinking

    async def send(
        self,
        *,
        content: str | None = None,
        embed: discord.Embed | None = None,
        files: Sequence[discord.File] = (),
    ) -> discord.WebhookMessage:
        """A public follow-up (the first one replaces the "thinking" message)."""
        if self._interaction is not None:
            sent = await send(self._interaction, content=content, embed=embed, files=files)
            self.answered = True
            return sent
        kwargs: dict[str, Any] = {"wait": True}
        if content is not None:
            kwargs["content"] = content
        if embed is not None:
            kwargs["embed"] = embed
        if files:
            kwargs["files"] = list(files)
        message: discord.WebhookMessage = await self.webhook.send(**kwargs)
        self._thinking = False
        self.answered = True
        return message

    async def progress(self, text: str) -> bool:
        """Show `text` in the deferred response (a clip's percentage): the live interaction's
        original response, or after a restart or on a worker the "thinking" message by its id.
        Whether it was shown."""
        try:
            if self._interaction is not None:
                await self._interaction.edit_original_response(content=text)
            elif self.thinking_id is not None:
                await self.webhook.edit_message(self.thinking_id, content=text)
            else:
                return False
        except discord.HTTPException as exc:  # a status line is never worth failing for
            log.debug("progress edit failed (HTTP %s)", exc.status)
            return False
        return True

    async def drop_thinking(self) -> None:
        """Delete the deferred response (a progress shown in it), so the answer comes as a
        message of its own, below any the channel got meanwhile."""
        try:
            if self._interaction is not None:
                await self._interaction.delete_original_response()
                self._interaction.extras[_PENDING] = False
            elif self.thinking_id is not None:
                await self.webhook.delete_message(self.thinking_id)
                self._thinking = False
        except discord.HTTPException as exc:
            log.debug("could not delete the deferred response (HTTP %s)", exc.status)

    async def error(self, message: str) -> None:
        """Tell only the person who asked: delete the public "thinking" message first."""
        if self._interaction is not None:
            await send_error(self._interaction, message)
            self.answered = True
            return
        if self._thinking and self.thinking_id is not None:
            try:
                await self.webhook.delete_message(self.thinking_id)
            except discord.HTTPException as exc:
                log.warning("could not delete the thinking message (HTTP %s)", exc.status)
        self._thinking = False
        await self.webhook.send(message, ephemeral=True, wait=True)
        self.answered = True
