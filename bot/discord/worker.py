"""Discord on a worker (`animebot worker`, `serve --role worker`): no gateway connection,
only the bot's HTTP session from the token, through which the job runner fetches `/anime`
attachments from the CDN and answers with the interaction's follow-up webhook (application id
and interaction token from the job: valid 15 minutes; bot/discord/outlet.py)."""

from __future__ import annotations

import logging

import discord

from bot.discord.commands import style_titles
from bot.discord.conversion import Converter
from bot.discord.outlet import register as register_outlet
from service.runtime import Runtime

log = logging.getLogger("animebot.discord")


class DiscordWorkerOutlet:
    name = "discord"

    def __init__(self, runtime: Runtime) -> None:
        if not runtime.settings.discord_token.strip():
            raise ValueError("DISCORD_TOKEN is not set")
        self.runtime = runtime
        self.client: discord.Client | None = None

    async def start(self) -> None:
        client = discord.Client(intents=discord.Intents.none())
        await client.login(self.runtime.settings.discord_token.strip())  # HTTP only
        self.client = client
        register_outlet(self.runtime.runner, client, style_titles(self.runtime))
        Converter(self.runtime).register(client.http)
        log.info("Discord replies from this worker as %s", client.user)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None
