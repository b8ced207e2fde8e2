"""/styles: every installed style's preview, privately, named in the person's language."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.discord import DiscordFrontEnd
from i18n import t
from tests.standins.discord_api import DiscordStandIn


@pytest.mark.parametrize(("locale", "lang"), [("en-US", "en"), ("ru", "ru"), ("zh-TW", "zh-TW")])
async def test_styles_shows_each_preview_privately(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, locale: str, lang: str
) -> None:
    service = bot.runtime.service
    shown = [s for s in service.style_titles() if service.style_preview(s) is not None]
    assert len(shown) >= 2, "the committed styles have preview.jpg files"
    record = await discord_standin.invoke_slash("styles", locale=locale)
    reply = await record.wait_response()
    assert reply.ephemeral
    assert reply.content == t("dc.styles.hint", lang)
    assert [e["title"] for e in reply.embeds] == [t(f"style.{s}", lang) for s in shown]
    assert [e["image"]["url"] for e in reply.embeds] == [f"attachment://{s}.jpg" for s in shown]
    assert list(reply.files) == [f"{s}.jpg" for s in shown]
    for style in shown:
        expected = service.style_preview(style)
        assert expected is not None and reply.files[f"{style}.jpg"] == expected.read_bytes()
        with Image.open(io.BytesIO(reply.files[f"{style}.jpg"])) as preview:
            assert preview.format == "JPEG"
