"""Pictures in, anime out: every kind of input the bot accepts, and the answers to the rest."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from bot.telegram.callbacks import MAX_BYTES
from core.errors import ImageTooLarge, UnknownStyle
from i18n import error_message, t
from tests.standins.telegram_api import group_chat, private_chat
from tests.telegram.helpers import (
    ALICE,
    BORIS,
    CHEN,
    Harness,
    StartBot,
    decoded_size,
    encode,
    matches,
    replies_to,
    small_photo,
    synthetic_jpeg,
    to_chat,
)


async def test_photo_gets_an_anime_reply_with_buttons(bot: Harness, photos_dir: Path) -> None:
    api = bot.api
    image = small_photo(photos_dir / "street_shopfront.jpg")
    sent = await api.send_photo(ALICE, private_chat(ALICE), image)
    (reply,) = await api.wait_for("sendPhoto", replies_to(sent))

    assert reply.ok, reply.description
    assert reply.sources == {"photo": "upload"}
    assert decoded_size(reply.files["photo"]) == decoded_size(image)  # same picture size
    assert reply.files["photo"] != image  # ... but redrawn
    assert matches("tg.result.caption", "en", reply.params["caption"])
    assert reply.params["caption"].startswith(t("style.hayao", "en"))  # the default style
    buttons = [b for row in reply.params["reply_markup"]["inline_keyboard"] for b in row]
    labels = [b["text"] for b in buttons]
    others = [s for s in bot.runtime.service.styles() if s != "hayao"]  # every other style
    assert labels == [
        *(t(f"style.{s}", "en") for s in others),
        t("tg.button.faces_off", "en"),
        t("tg.button.side_by_side", "en"),
        t("tg.button.full_file", "en"),
    ]
    assert all(len(b["callback_data"].encode()) <= MAX_BYTES for b in buttons)
    (action,) = api.calls_to("sendChatAction")
    assert action.params["action"] == "upload_photo"
    (get_file,) = api.calls_to("getFile")
    assert get_file.params["file_id"] == sent["photo"][-1]["file_id"]  # the largest size
    (row,) = await bot.rows_of(ALICE)
    assert (row["status"], row["style"], row["faces"], row["cache_hit"]) == ("ok", "hayao", 1, 0)
    assert (row["input_w"], row["input_h"]) == decoded_size(image)


async def test_image_sent_as_a_file_is_used_at_full_resolution(
    bot: Harness, photos_dir: Path, edge_dir: Path
) -> None:
    api = bot.api
    original = (photos_dir / "street_shopfront.jpg").read_bytes()  # 1280 px, never downscaled
    sent = await api.send_document(ALICE, None, original, "shop.jpg", "image/jpeg")
    (reply,) = await api.wait_for("sendPhoto", replies_to(sent))
    assert decoded_size(reply.files["photo"]) == decoded_size(original)

    rotated = (edge_dir / "exif_orientation6.jpg").read_bytes()  # stored 800x1200, shown 1200x800
    sent = await api.send_document(ALICE, None, rotated, "rotated.jpg", "image/jpeg")
    (reply,) = await api.wait_for("sendPhoto", replies_to(sent))
    width, height = decoded_size(rotated)
    assert decoded_size(reply.files["photo"]) == (height, width)  # the service turned it
    rows = await bot.rows_of(ALICE)
    assert [(r["input_w"], r["input_h"]) for r in rows] == [
        decoded_size(original),
        (height, width),
    ]


async def test_static_sticker_converted_animated_ones_explained(
    bot: Harness, edge_dir: Path
) -> None:
    api = bot.api
    sticker = (edge_dir / "sticker_512.webp").read_bytes()
    sent = await api.send_sticker(ALICE, None, sticker)
    (reply,) = await api.wait_for("sendPhoto", replies_to(sent))
    assert reply.ok and decoded_size(reply.files["photo"]) == decoded_size(sticker)

    # (video stickers are clips: tests/telegram/test_telegram_clips.py)
    sent = await api.send_sticker(ALICE, None, b"not a still picture", is_animated=True)
    (answer,) = await api.wait_for("sendMessage", replies_to(sent))
    assert answer.params["text"] == t("tg.unsupported.animated_sticker", "en")
    assert len(api.calls_to("getFile")) == 1  # animated (Lottie) stickers are never downloaded


async def test_album_of_three_photos_each_answered(bot: Harness) -> None:
    api = bot.api
    album = [synthetic_jpeg(320, 240, seed) for seed in range(3)]
    since = api.mark()
    sent = [await api.send_photo(ALICE, None, data, media_group_id="trip") for data in album]
    replies = await api.wait_for("sendPhoto", count=3, since=since)
    assert sorted(c.reply_to_message_id or 0 for c in replies) == [m["message_id"] for m in sent]
    assert all(c.ok and c.sources == {"photo": "upload"} for c in replies)
    assert len({c.files["photo"] for c in replies}) == 3
    assert [r["status"] for r in await bot.rows_of(ALICE)] == ["ok"] * 3


async def test_caption_names_the_style_in_any_language(bot: Harness) -> None:
    api = bot.api
    cases = [
        (ALICE, "make it SHINKAI please", "en"),
        (CHEN, "请用新海诚风格", "zh"),
        (BORIS, "в стиле Синкай", "ru"),
    ]
    for seed, (user, caption, lang) in enumerate(cases):
        sent = await api.send_photo(user, None, synthetic_jpeg(seed=seed), caption=caption)
        (reply,) = await api.wait_for("sendPhoto", replies_to(sent))
        assert reply.params["caption"].startswith(t("style.shinkai", lang)), reply.params
        (row,) = await bot.rows_of(user)
        assert row["style"] == "shinkai"
    sent = await api.send_photo(ALICE, None, synthetic_jpeg(seed=9), caption="my cat, hayaoish")
    (reply,) = await api.wait_for("sendPhoto", replies_to(sent))
    assert reply.params["caption"].startswith(t("style.hayao", "en"))  # no style named: default


async def test_reply_anime_to_an_earlier_photo(bot: Harness) -> None:
    api = bot.api
    group = group_chat(-5001, "Friends")
    photo = await api.send_photo(ALICE, group, synthetic_jpeg(seed=1))  # groups: not converted
    since = api.mark()
    await api.send_text(BORIS, group, "/anime shinkai", reply_to=photo)
    (reply,) = await api.wait_for("sendPhoto", replies_to(photo), since=since)
    assert reply.params["caption"].startswith(t("style.shinkai", "ru"))  # Boris reads Russian
    (row,) = await bot.rows_of(BORIS)
    assert row["style"] == "shinkai"
    assert await bot.rows_of(ALICE) == []  # her photo alone was not for the bot

    command = await api.send_text(BORIS, group, "/anime picasso", reply_to=photo)
    (answer,) = await api.wait_for("sendMessage", replies_to(photo), since=since)
    styles = bot.runtime.service.styles()
    assert answer.params["text"] == error_message(UnknownStyle("picasso", styles), "ru")

    lone = await api.send_text(ALICE, group, "/anime")
    (answer,) = await api.wait_for("sendMessage", replies_to(lone), since=since)
    assert answer.params["text"] == t("tg.anime.usage", "en")
    assert command["message_id"] != lone["message_id"]

    captioned = await api.send_photo(ALICE, group, synthetic_jpeg(seed=2), caption="/anime")
    (reply,) = await api.wait_for("sendPhoto", replies_to(captioned), since=since)
    assert reply.ok
    await api.send_photo(ALICE, group, synthetic_jpeg(seed=3), caption="@someone look")
    mention = await api.send_photo(
        ALICE, group, synthetic_jpeg(seed=4), caption="@animebot_test_bot shinkai"
    )
    (reply,) = await api.wait_for("sendPhoto", replies_to(mention), since=since)
    assert reply.params["caption"].startswith(t("style.shinkai", "en"))
    await bot.settled()
    assert len(await bot.rows_of(ALICE)) == 2  # "/anime" and the mention; not the others


async def test_everything_else_gets_a_short_helpful_answer(bot: Harness) -> None:
    api = bot.api
    chat = private_chat(ALICE)
    expected = {
        (await api.send_text(ALICE, chat, "hello"))["message_id"]: t("tg.other", "en"),
        (await api.send_voice(ALICE, chat))["message_id"]: t("tg.unsupported.media", "en"),
        (await api.send_location(ALICE, chat))["message_id"]: t("tg.unsupported.media", "en"),
        (await api.send_document(ALICE, chat, b"%PDF-1.4", "cv.pdf", "application/pdf"))[
            "message_id"
        ]: t("tg.unsupported.document", "en"),
        (await api.send_text(ALICE, chat, "/dance"))["message_id"]: t("tg.unknown_command", "en"),
    }
    answers = await api.wait_for("sendMessage", to_chat(ALICE["id"]), count=len(expected))
    assert sorted(c.params["text"] for c in answers) == sorted(expected.values())
    assert not api.calls_to("getFile")
    assert await bot.usage_rows() == []  # nothing was converted, nothing recorded


async def test_too_large_is_refused_without_downloading(bot: Harness) -> None:
    api = bot.api
    huge = bytes(20 * 1024 * 1024 + 1)  # Telegram reports the size; getFile would refuse it
    sent = await api.send_document(ALICE, None, huge, "huge.png", "image/png")
    (answer,) = await api.wait_for("sendMessage", replies_to(sent))
    limit = bot.runtime.settings.max_upload_bytes
    assert answer.params["text"] == error_message(ImageTooLarge("x", limit=limit), "en")
    assert not api.calls_to("getFile") and not api.calls_to("download")
    (row,) = await bot.rows_of(ALICE)
    assert (row["status"], row["error_kind"]) == ("error", "too_large")


async def test_smaller_upload_limit_from_settings(start_bot: StartBot) -> None:
    harness = await start_bot(max_upload_mb=0.05)
    api = harness.api
    img = Image.effect_noise((320, 320), 60).convert("RGB")  # noise: a JPEG over 50 KB
    data = encode(img, quality=95)
    assert len(data) > 0.05 * 1024 * 1024
    sent = await api.send_photo(BORIS, None, data)
    (answer,) = await api.wait_for("sendMessage", replies_to(sent))
    limit = harness.runtime.settings.max_upload_bytes
    assert answer.params["text"] == error_message(ImageTooLarge("x", limit=limit), "ru")
    assert not api.calls_to("getFile")
    with Image.open(io.BytesIO(data)) as check:
        assert check.size == (320, 320)
