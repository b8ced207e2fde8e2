"""Commands: the menu per language, /start /help /privacy, preferences that persist, /forget,
/stats for admins only."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from bot.telegram.texts import MENU_COMMANDS, command_list, stats_summary, style_list
from i18n import LANGUAGES, t
from tests.standins.telegram_api import Call, group_chat, private_chat
from tests.telegram.helpers import (
    ADMIN,
    ALICE,
    BORIS,
    CHEN,
    Harness,
    StartBot,
    matches,
    replies_to,
    synthetic_jpeg,
    to_chat,
)


async def say(
    harness: Harness, user: dict[str, Any], text: str, method: str = "sendMessage"
) -> Call:
    """Send `text` in the user's private chat and return the bot's answer."""
    api = harness.api
    since = api.mark()
    await api.send_text(user, private_chat(user), text)
    (answer,) = await api.wait_for(method, to_chat(user["id"]), since=since)
    return answer


async def photo(harness: Harness, user: dict[str, Any], seed: int) -> Call:
    api = harness.api
    sent = await api.send_photo(user, None, synthetic_jpeg(seed=seed))
    (reply,) = await api.wait_for("sendPhoto", replies_to(sent))
    return reply


def keyboard(call: Call) -> dict[str, str]:
    rows = call.params["reply_markup"]["inline_keyboard"]
    return {b["text"]: b["callback_data"] for row in rows for b in row}


async def press(harness: Harness, user: dict[str, Any], call: Call, label: str) -> Call:
    """Press the button `label` under the bot's message (as it is now, after any edits);
    returns the edit it caused."""
    api = harness.api
    message = api.message(call.result["chat"]["id"], call.result["message_id"])
    assert message is not None
    rows = message["reply_markup"]["inline_keyboard"]
    data = {b["text"]: b["callback_data"] for row in rows for b in row}[label]
    since = api.mark()
    await api.press_button(user, message, data)
    (edit,) = await api.wait_for("editMessageText", since=since)
    return edit


async def test_menu_is_registered_in_every_language(bot: Harness) -> None:
    api = bot.api
    for code in ("", *LANGUAGES):
        menu = api.my_commands(code)
        assert [c["command"] for c in menu] == list(MENU_COMMANDS)
        lang = code or "en"
        assert [c["description"] for c in menu] == [t(f"tg.cmd.{n}", lang) for n in MENU_COMMANDS]


async def test_start_help_and_privacy(bot: Harness) -> None:
    start = await say(bot, ALICE, "/start")
    assert start.params["text"] == t("tg.start", "en", name="Alice", style=t("style.hayao", "en"))
    assert start.reply_to_message_id is None  # a private chat: no quoting
    help_ = await say(bot, BORIS, "/help")
    styles = style_list(bot.runtime.service.styles(), "ru")
    assert help_.params["text"] == t("tg.help", "ru", commands=command_list("ru"), styles=styles)
    privacy = await say(bot, CHEN, "/privacy")
    settings = bot.runtime.settings
    assert privacy.params["text"] == t(
        "tg.privacy",
        "zh",
        input_hours=f"{settings.input_ttl_hours:g}",
        result_days=f"{settings.result_ttl_days:g}",
    )
    group = group_chat(-7001)
    command = await bot.api.send_text(ALICE, group, "/help@animebot_test_bot")
    (answer,) = await bot.api.wait_for("sendMessage", replies_to(command))  # groups: quoted
    assert answer.params["text"] == t(
        "tg.help",
        "en",
        commands=command_list("en"),
        styles=style_list(bot.runtime.service.styles(), "en"),
    )


async def test_style_choice_persists_across_a_restart(start_bot: StartBot, tmp_path: Path) -> None:
    data_dir = tmp_path / "persist"
    first = await start_bot(data_dir=data_dir)
    menu = await say(first, ALICE, "/style")
    assert menu.params["text"] == t("tg.style.choose", "en", style=t("style.hayao", "en"))
    assert "✓ " + t("style.hayao", "en") in keyboard(menu)
    edit = await press(first, ALICE, menu, t("style.shinkai", "en"))
    assert edit.params["text"] == t("tg.style.set", "en", style=t("style.shinkai", "en"))
    assert "✓ " + t("style.shinkai", "en") in keyboard(edit)
    await first.front.stop()
    await first.runtime.stop()

    second = await start_bot(data_dir=data_dir)  # new Runtime, new Application, same data
    reply = await photo(second, ALICE, seed=1)
    assert reply.params["caption"].startswith(t("style.shinkai", "en"))
    (row,) = await second.rows_of(ALICE)
    assert row["style"] == "shinkai"
    start = await say(second, ALICE, "/start")
    assert start.params["text"] == t("tg.start", "en", name="Alice", style=t("style.shinkai", "en"))


async def test_style_shows_the_previews_as_an_album_uploaded_once(bot: Harness) -> None:
    service = bot.runtime.service
    with_preview = [s for s in service.styles() if service.style_preview(s) is not None]
    assert len(with_preview) >= 2, "the committed styles have preview.jpg files"
    menu = await say(bot, ALICE, "/style")
    (album,) = bot.api.calls_to("sendMediaGroup")
    assert album.time < menu.time  # pictures first, the keyboard under them
    captions = [item.get("caption") for item in album.params["media"]]
    assert captions == [t(f"style.{s}", "en") for s in with_preview]
    assert set(album.sources.values()) == {"upload"}
    shown = [Image.open(io.BytesIO(data)).size for data in album.files.values()]
    assert len(shown) == len(with_preview) and all(w == 320 for w, _ in shown)

    again_since = bot.api.mark()
    await say(bot, ALICE, "/style")
    (again,) = await bot.api.wait_for("sendMediaGroup", to_chat(ALICE["id"]), since=again_since)
    assert set(again.sources.values()) == {"file_id"}  # nothing uploaded the second time


async def test_faces_toggle_persists(bot: Harness) -> None:
    off = await say(bot, ALICE, "/faces")
    assert off.params["text"] == t("tg.faces.now_off", "en")
    reply = await photo(bot, ALICE, seed=2)
    assert t("tg.button.faces_on", "en") in keyboard(reply)
    on = await say(bot, ALICE, "/faces")
    assert on.params["text"] == t("tg.faces.now_on", "en")
    await photo(bot, ALICE, seed=3)
    assert [r["faces"] for r in await bot.rows_of(ALICE)] == [0, 1]


async def test_language_switches_the_replies(bot: Harness) -> None:
    menu = await say(bot, ALICE, "/language")
    assert menu.params["text"] == t("tg.language.choose", "en")
    for code, label in (("zh", "中文"), ("ru", "Русский")):
        edit = await press(bot, ALICE, menu, label)
        assert edit.params["text"] == t("tg.language.set", code)
        answer = await say(bot, ALICE, "hello")
        assert answer.params["text"] == t("tg.other", code)
        reply = await photo(bot, ALICE, seed=10 + len(code))
        assert matches("tg.result.caption", code, reply.params["caption"])
        assert t("tg.button.full_file", code) in keyboard(reply)
    # Without a choice, the Telegram app's language counts.
    assert (await say(bot, BORIS, "hi")).params["text"] == t("tg.other", "ru")
    assert (await say(bot, CHEN, "hi")).params["text"] == t("tg.other", "zh")


async def test_forget_deletes_the_persons_rows_only(bot: Harness) -> None:
    api = bot.api
    alice_result = await photo(bot, ALICE, seed=20)
    await photo(bot, BORIS, seed=21)
    await say(bot, ALICE, "/faces")  # a preference to forget
    assert len(await bot.rows_of(ALICE)) == 1

    confirm = await say(bot, ALICE, "/forget")
    assert confirm.params["text"] == t("tg.forget.confirm", "en")
    yes = keyboard(confirm)[t("tg.forget.yes", "en")]
    query = await api.press_button(BORIS, confirm.result, yes)  # not Boris's to press
    await api.wait_for("answerCallbackQuery")
    assert api.callback_answers[query["id"]]["text"] == t("tg.button.not_yours", "ru")

    edit = await press(bot, ALICE, confirm, t("tg.forget.yes", "en"))
    assert matches("tg.forget.done", "en", edit.params["text"])
    assert "1" in edit.params["text"]  # one usage record
    assert await bot.rows_of(ALICE) == []
    assert len(await bot.rows_of(BORIS)) == 1
    prefs = await bot.runtime.service.prefs("telegram", ALICE["id"])
    assert prefs.faces is None

    since = api.mark()  # her cached photo is gone too: the old buttons say so
    await api.press_button(
        ALICE, alice_result.result, keyboard(alice_result)[t("style.shinkai", "en")]
    )
    (answer,) = await api.wait_for("sendMessage", since=since)
    assert answer.params["text"] == t("error.input_expired", "en")

    cancel = await say(bot, BORIS, "/forget")
    edit = await press(bot, BORIS, cancel, t("tg.forget.no", "ru"))
    assert edit.params["text"] == t("tg.forget.cancelled", "ru")
    assert len(await bot.rows_of(BORIS)) == 1


async def test_stats_for_admins_only(bot: Harness) -> None:
    await photo(bot, ALICE, seed=30)
    refused = await say(bot, ALICE, "/stats")
    assert refused.params["text"] == t("tg.stats.denied", "en")
    chart = await say(bot, ADMIN, "/stats", method="sendPhoto")
    with Image.open(io.BytesIO(chart.files["photo"])) as img:
        assert img.format == "PNG" and img.width > 200
    summary = await bot.runtime.service.stats(days=30)
    assert summary.ok == 1
    assert chart.params["caption"] == stats_summary(summary, "en")
