"""Discord tells Traditional Chinese (zh-TW) from Simplified (zh-CN): people with zh-TW get
real Traditional Chinese, in the command descriptions and in the bot's replies."""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.discord import DiscordFrontEnd
from i18n import t
from tests.discord.test_discord_anime import anime, ephemeral_error
from tests.standins.discord_api import DiscordStandIn

LOCALES = Path(__file__).resolve().parents[2] / "i18n" / "locales"
# Characters of the Simplified catalogue whose Traditional form differs: none may appear in a
# Traditional string.
SIMPLIFIED_ONLY = set(
    "这们个图时转换风设为发处请开关脸识别备压频条张过试结没错误统计数缓间无启机画动员务显仅"
)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def localized(sync_payload: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, str]]]:
    """Every `*_localizations` mapping of the synced commands, options and choices."""
    todo: list[Any] = list(sync_payload)
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key.endswith("_localizations") and value:
                    yield f"{item.get('name')}.{key}", value
                else:
                    todo.append(value)
        elif isinstance(item, list):
            todo.extend(item)


def test_the_traditional_catalogue_is_complete_and_traditional() -> None:
    for namespace in ("common", "discord"):
        simplified = json.loads((LOCALES / "zh" / f"{namespace}.json").read_text("utf-8"))
        traditional = json.loads((LOCALES / "zh-TW" / f"{namespace}.json").read_text("utf-8"))
        assert set(traditional) >= set(simplified), set(simplified) - set(traditional)
        for key, text in traditional.items():
            if key in simplified:
                assert placeholders(text) == placeholders(simplified[key]), key
            assert not SIMPLIFIED_ONLY & set(text), (key, text)
    assert t("style.hayao", "zh-TW") == "宮崎駿" != t("style.hayao", "zh") == "宫崎骏"
    assert t("tg.start", "zh-TW", name="A", style="B") == t("tg.start", "zh", name="A", style="B")


async def test_commands_are_described_in_traditional_chinese_for_zh_tw(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn
) -> None:
    (sync,) = await discord_standin.wait_for_sync()
    found = dict(localized(sync.commands))
    assert len(found) >= 5  # descriptions of /anime, its options, /stats, the menu, styles
    for where, names in found.items():
        assert "zh-TW" in names and "zh-CN" in names, where
        assert names["zh-TW"] != names["zh-CN"], (where, names["zh-TW"])
        assert not SIMPLIFIED_ONLY & set(names["zh-TW"]), (where, names["zh-TW"])
    anime_command = sync.command("anime")
    assert anime_command["description_localizations"]["zh-TW"] == "把照片變成動漫風格的圖片"


async def test_replies_to_zh_tw_are_traditional(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn
) -> None:
    record = await anime(discord_standin, b"GIF89a", "x.gif", "image/gif", locale="zh-TW")
    text = await ephemeral_error(record)
    assert text == t("error.damaged", "zh-TW") == "圖片已損壞，或上傳時被截斷。請重新傳送。"
    assert text != t("error.damaged", "zh")
