"""DISCORD_SHARDED=true: the bot runs on discord.py's AutoShardedClient against the stand-in
(shard count from GET /gateway/bot) and answers a slash command as the plain client does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import discord

from bot.discord import DiscordFrontEnd
from bot.discord.client import ShardedAnimeClient
from tests.service.helpers import distinct_png
from tests.standins.discord_api import DiscordStandIn

StartBot = Callable[..., Awaitable[DiscordFrontEnd]]


async def test_sharded_client_connects_and_identifies_with_a_shard(
    start_bot: StartBot, discord_standin: DiscordStandIn
) -> None:
    frontend = await start_bot(discord_sharded=True)
    client = frontend.client
    assert isinstance(client, ShardedAnimeClient)
    assert isinstance(client, discord.AutoShardedClient)
    assert client.shard_count == 1 and client.is_ready()
    assert discord_standin.identify_count == 1
    assert [shard.id for shard in client.shards.values()] == [0]
    record = await discord_standin.invoke_slash(
        "anime", attachments={"image": ("p.png", distinct_png(5, side=128), "image/png")}
    )
    (reply,) = await record.wait_followups(1, timeout=30)
    assert len(reply.files) == 1  # the converted picture, through the sharded client


async def test_plain_client_by_default(start_bot: StartBot) -> None:
    frontend = await start_bot()
    assert not isinstance(frontend.client, discord.AutoShardedClient)
