"""/stats: bot admins (DISCORD_ADMINS) and members with Manage Server get the chart and a
summary, privately; everyone else gets a polite, private, translated refusal."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable

import discord
import pytest
from PIL import Image

from bot.discord import DiscordFrontEnd
from i18n import t
from tests.standins.discord_api import ADMIN_PERMISSIONS, MEMBER_PERMISSIONS, DiscordStandIn

StartBot = Callable[..., Awaitable[DiscordFrontEnd]]
MANAGE_SERVER_ONLY = str(int(MEMBER_PERMISSIONS) | discord.Permissions(manage_guild=True).value)


async def convert_one(standin: DiscordStandIn, data: bytes) -> None:
    record = await standin.invoke_slash(
        "anime", attachments={"image": ("p.jpg", data, "image/jpeg")}
    )
    await record.wait_followups(1, timeout=30)


async def expect_stats(standin: DiscordStandIn, lang: str = "en", **kwargs: object) -> None:
    record = await standin.invoke_slash("stats", **kwargs)  # type: ignore[arg-type]
    deferral = await record.wait_response()
    assert deferral.thinking and deferral.ephemeral
    (reply,) = await record.wait_followups(1, timeout=30)
    assert reply.ephemeral
    assert list(reply.files) == ["stats.png"]
    with Image.open(io.BytesIO(reply.files["stats.png"])) as chart:
        assert chart.format == "PNG" and chart.width > 100
    embed = reply.embeds[0]
    assert embed["title"] == t("dc.stats.title", lang, days=30)
    assert embed["image"]["url"] == "attachment://stats.png"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    requests = fields[t("dc.stats.requests", lang)]
    assert requests == t("dc.stats.requests_value", lang, total=1, ok=1, error=0, refused=0)
    assert fields[t("dc.stats.platforms", lang)] == "discord: 1"


async def test_admin_by_id_sees_stats_privately(
    start_bot: StartBot, discord_standin: DiscordStandIn, street: bytes
) -> None:
    await start_bot(discord_admins=frozenset({str(discord_standin.user_id)}))
    await convert_one(discord_standin, street)
    await expect_stats(discord_standin, permissions=MEMBER_PERMISSIONS)
    await expect_stats(discord_standin, "ru", dm=True, locale="ru")  # in DMs too


@pytest.mark.parametrize("permissions", [ADMIN_PERMISSIONS, MANAGE_SERVER_ONLY])
async def test_server_manager_sees_stats(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, street: bytes, permissions: str
) -> None:
    await convert_one(discord_standin, street)
    await expect_stats(discord_standin, "zh", permissions=permissions, locale="zh-CN")


@pytest.mark.parametrize(("locale", "lang"), [("en-US", "en"), ("ru", "ru")])
async def test_others_are_refused_politely_and_privately(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, locale: str, lang: str
) -> None:
    for kwargs in ({"permissions": MEMBER_PERMISSIONS}, {"dm": True}):
        record = await discord_standin.invoke_slash("stats", locale=locale, **kwargs)
        reply = await record.wait_response()
        assert reply.type == 4 and reply.ephemeral
        assert reply.content == t("dc.stats.denied", lang)
        assert record.followups == []
