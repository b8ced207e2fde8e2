"""The real python-telegram-bot 22, end to end against the local Bot API stand-in (loopback)."""

from __future__ import annotations

import asyncio
import datetime as dtm
import io
import time
from typing import Any

import aiohttp
import pytest
from PIL import Image
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Update,
)
from telegram.constants import ChatAction
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from tests.standins.telegram_api import (
    BOT_USERNAME,
    InvalidUpdate,
    TelegramStandIn,
    application_builder,
    group_chat,
    make_bot,
    make_user,
    private_chat,
    running_application,
)
from tests.standins.telegram_fixtures import telegram_standin

__all__ = ["telegram_standin"]  # the fixture, re-exported so pytest finds it here

ALICE = make_user(1001, language_code="en", first_name="Alice")
BORIS = make_user(1002, language_code="ru", first_name="Борис", username="boris")


def jpeg_bytes(width: int = 640, height: int = 480, seed: int = 0) -> bytes:
    img = Image.new("RGB", (width, height), (30 + seed % 200, 120, 200))
    for x in range(0, width, 16):  # some structure so the JPEG is not trivial
        img.paste((x % 255, (x * 3 + seed) % 255, 90), (x, 0, x + 8, height))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def png_bytes(width: int = 48, height: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (width, height), (200, 40, 90, 128)).save(buf, format="PNG")
    return buf.getvalue()


def webp_bytes(side: int = 512) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (side, side), (0, 200, 0, 255)).save(buf, format="WEBP")
    return buf.getvalue()


def build_app(
    api: TelegramStandIn, *handlers: Any, errors: list[BaseException], concurrent: bool = False
) -> Application:
    app = application_builder(api).concurrent_updates(concurrent).build()
    for handler in handlers:
        app.add_handler(handler)

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert context.error is not None
        errors.append(context.error)

    app.add_error_handler(on_error)
    return app


# --------------------------------------------------------------------------- basics


async def test_get_me_invalid_token_and_unknown_method(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    async with make_bot(api) as bot:  # initialize() calls getMe
        assert bot.username == BOT_USERNAME
        assert bot.id == 123456
        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("noSuchMethod")
    stranger = Bot("999:WRONG", base_url=api.base_url, base_file_url=api.base_file_url)
    try:
        with pytest.raises(InvalidToken):
            await stranger.initialize()
    finally:
        await stranger.shutdown()
    assert [c.status for c in api.calls if c.method == "getMe"][-1] == 401


async def test_error_json_has_telegram_shape(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    api.fail_next("sendMessage", status=429, retry_after=7)
    async with aiohttp.ClientSession() as session:
        url = f"{api.base_url}{api.token}/sendMessage"
        async with session.post(url, data={"chat_id": "1", "text": "hi"}) as response:
            assert response.status == 429
            body = await response.json()
        async with session.post(url, data={"chat_id": "1", "text": "hi"}) as response:
            assert response.status == 400  # the injection is used up; chat 1 is unknown
            assert await response.json() == {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: chat not found",
            }
        async with session.get(f"{api.base_url}{api.token}/nope") as response:
            assert response.status == 404
            assert (await response.json())["ok"] is False
    assert body == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }


async def test_form_fields_decode_with_json_fallback(telegram_standin: TelegramStandIn) -> None:
    """Strings that look like JSON stay strings where the Bot API says string."""
    api = telegram_standin
    api.register_chat(private_chat(ALICE))
    async with make_bot(api) as bot:
        message = await bot.send_message(ALICE["id"], "123")
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("true", callback_data="null")]])
        await bot.send_message(ALICE["id"], "true", reply_markup=keyboard)
    first, second = api.calls_to("sendMessage")
    assert first.params == {"chat_id": ALICE["id"], "text": "123"}
    assert message.text == "123"
    assert second.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "true", "callback_data": "null"}]]
    }


# --------------------------------------------------------------------------- long polling


async def test_long_poll_offsets_limit_and_release(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    async with make_bot(api) as bot:
        parked = asyncio.create_task(bot.get_updates(timeout=30))
        await api.wait_polling()
        started = time.monotonic()
        sent = await api.send_text(ALICE, None, "hello")
        (update,) = await parked
        assert time.monotonic() - started < 5  # woken by the push, not by the 30 s timeout
        assert update.message is not None
        assert update.message.text == "hello"
        assert update.message.message_id == sent["message_id"]
        assert update.message.from_user is not None
        assert update.message.from_user.language_code == "en"

        again = await bot.get_updates(timeout=0)  # not confirmed yet: delivered again
        assert [u.update_id for u in again] == [update.update_id]
        assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
        assert api.pending_updates == 0

        for text in ("a", "b", "c"):
            await api.send_text(ALICE, None, text)
        two = await bot.get_updates(limit=2, timeout=0)
        assert [u.message.text for u in two if u.message] == ["a", "b"]
        rest = await bot.get_updates(offset=two[-1].update_id + 1, timeout=0)
        assert [u.message.text for u in rest if u.message] == ["c"]
        await bot.get_updates(offset=rest[-1].update_id + 1, timeout=0)

        parked = asyncio.create_task(bot.get_updates(timeout=30))
        await api.wait_polling()
        started = time.monotonic()
        await api.release_long_polls()
        assert await parked == ()
        assert time.monotonic() - started < 5


async def test_newer_get_updates_supersedes_parked_one(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    url = f"{api.base_url}{api.token}/getUpdates"
    async with aiohttp.ClientSession() as session:

        async def poll(seconds: int) -> tuple[int, Any]:
            async with session.post(url, data={"timeout": str(seconds)}) as response:
                return response.status, await response.json()

        first = asyncio.create_task(poll(30))
        await api.wait_polling()
        second = asyncio.create_task(poll(30))
        status, body = await first
        assert status == 409
        assert body["description"].startswith("Conflict: terminated by other getUpdates")
        await api.send_text(ALICE, None, "for the newest poller")
        status, body = await second
        assert status == 200
        assert body["result"][0]["message"]["text"] == "for the newest poller"


async def test_application_stops_promptly_while_long_polling(
    telegram_standin: TelegramStandIn,
) -> None:
    api = telegram_standin
    errors: list[BaseException] = []
    app = build_app(api, errors=errors)
    async with running_application(app, api, poll_timeout=30):
        await api.wait_polling()
        started = time.monotonic()
    assert time.monotonic() - started < 5
    assert not errors
    bootstrap = [c.method for c in api.calls[:3]]
    assert bootstrap[:2] == ["getMe", "deleteWebhook"]


# --------------------------------------------------------------------------- updates in


async def test_invalid_updates_are_rejected_before_queueing(
    telegram_standin: TelegramStandIn,
) -> None:
    api = telegram_standin
    chat = {"id": 1, "type": "private"}
    bad_updates: list[dict[str, Any]] = [
        {"message": {"message_id": 1, "chat": chat}},  # no date
        {"message": {"message_id": 1, "date": "today", "chat": chat}},
        {"message": {"message_id": 1, "date": 1}},  # no chat (PTB itself accepts this one)
        {"message": {"message_id": 1, "date": 1, "chat": {"id": 1, "type": "room"}}},
        {"message": {"message_id": 1, "date": 1, "chat": chat, "from": {"id": 1}}},
        {"message": {"message_id": 1, "date": 1, "chat": chat, "photo": [{"file_id": "x"}]}},
        {"message": {"message_id": 1, "date": 1, "chat": chat}, "edited_message": {}},
        {"callback_query": {"id": 5, "from": ALICE, "chat_instance": "1"}},
        {"no_such_update": {}},
        {"update_id": "7", "message": {"message_id": 1, "date": 1, "chat": chat}},
    ]
    for bad in bad_updates:
        with pytest.raises(InvalidUpdate):
            await api.push_update(bad)
    with pytest.raises(TypeError):
        await api.push_update({"message": {"message_id": 1, "date": 1, "chat": chat, "x": b""}})
    assert api.pending_updates == 0

    received: list[str] = []

    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        received.append(update.message.text)
        await update.message.reply_text("got it")

    errors: list[BaseException] = []
    app = build_app(api, MessageHandler(filters.TEXT, on_text), errors=errors)
    async with running_application(app, api):
        await api.send_text(ALICE, None, "still flowing")
        await api.wait_for("sendMessage")
    assert received == ["still flowing"]
    assert not errors


async def test_other_update_kinds_parse_in_ptb(
    telegram_standin: TelegramStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # durations as timedelta, no deprecation
    api = telegram_standin
    seen: asyncio.Queue[Update] = asyncio.Queue()

    async def collect(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await seen.put(update)

    async def next_update() -> Update:
        async with asyncio.timeout(10):
            return await seen.get()

    errors: list[BaseException] = []
    app = build_app(api, TypeHandler(Update, collect), errors=errors)
    group = group_chat(-100777, "Anime fans", supergroup=True)
    async with running_application(app, api):
        location = await api.send_location(ALICE, None, 35.0, 139.0)
        update = await next_update()
        assert update.message is not None and update.message.location is not None
        assert update.message.location.latitude == 35.0

        await api.send_voice(ALICE, None, duration=3)
        update = await next_update()
        assert update.message is not None and update.message.voice is not None
        assert update.message.voice.duration == dtm.timedelta(seconds=3)

        await api.send_sticker(ALICE, None, webp_bytes(256))
        update = await next_update()
        assert update.message is not None and update.message.sticker is not None
        sticker = update.message.sticker
        assert (sticker.width, sticker.height, sticker.is_animated) == (256, 256, False)

        await api.send_sticker(ALICE, None, b'{"tgs": 1}', is_animated=True)
        update = await next_update()
        assert update.message is not None and update.message.sticker is not None
        assert update.message.sticker.is_animated

        text = await api.send_text(BORIS, group, "/start@" + BOT_USERNAME + " please")
        update = await next_update()
        assert update.message is not None and update.message.chat.type == "supergroup"
        assert update.message.entities[0].type == "bot_command"
        assert update.message.entities[0].length == len("/start@" + BOT_USERNAME)

        await api.edit_user_message(text, "edited text")
        update = await next_update()
        assert update.edited_message is not None
        assert update.edited_message.text == "edited text"

        album = [jpeg_bytes(64, 48, seed) for seed in range(2)]
        for data in album:
            await api.send_photo(ALICE, None, data, media_group_id="album-1")
        for _ in album:
            update = await next_update()
            assert update.message is not None and update.message.media_group_id == "album-1"

        await api.send_text(ALICE, None, "about that place", reply_to=location)
        update = await next_update()
        assert update.message is not None and update.message.reply_to_message is not None
        assert update.message.reply_to_message.message_id == location["message_id"]
        assert update.message.reply_to_message.location is not None

        await api.user_blocks_bot(ALICE)
        update = await next_update()
        assert update.my_chat_member is not None
        assert update.my_chat_member.new_chat_member.status == "kicked"
    assert not errors
    async with make_bot(api) as bot:
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(ALICE["id"], "are you there?")


# --------------------------------------------------------------------------- photos


async def test_photo_round_trip_through_application(telegram_standin: TelegramStandIn) -> None:
    """The echo bot: status message, download the largest size, reply with a photo, delete
    the status message."""
    api = telegram_standin
    errors: list[BaseException] = []

    async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        status = await message.reply_text("Working on it…")
        tg_file = await message.photo[-1].get_file()
        data = await tg_file.download_as_bytearray()
        await context.bot.send_chat_action(message.chat_id, ChatAction.UPLOAD_PHOTO)
        await message.reply_photo(bytes(data), caption=f"{len(data)} bytes", do_quote=True)
        await status.delete()

    app = build_app(api, MessageHandler(filters.PHOTO, on_photo), errors=errors)
    image = jpeg_bytes(640, 480)
    async with running_application(app, api):
        sent = await api.send_photo(ALICE, private_chat(ALICE), image, caption="make me anime")
        (reply,) = await api.wait_for("sendPhoto")
        await api.wait_for("deleteMessage")
    assert not errors

    sizes = [(p["width"], p["height"]) for p in sent["photo"]]
    assert sizes == [(90, 68), (320, 240), (640, 480)]
    assert sent["photo"][-1]["file_size"] == len(image)

    assert reply.ok, reply.description
    assert reply.files["photo"] == image
    assert reply.sources == {"photo": "upload"}
    assert reply.reply_to_message_id == sent["message_id"]
    assert reply.params["caption"] == f"{len(image)} bytes"
    (get_file,) = api.calls_to("getFile")
    assert get_file.params["file_id"] == sent["photo"][-1]["file_id"]
    (download,) = api.calls_to("download")
    assert download.ok and download.params["file_path"] == get_file.result["file_path"]
    (action,) = api.calls_to("sendChatAction")
    assert action.params == {"chat_id": ALICE["id"], "action": "upload_photo"}

    result = reply.result
    assert result["reply_to_message"]["message_id"] == sent["message_id"]
    assert (result["photo"][-1]["width"], result["photo"][-1]["height"]) == (640, 480)
    assert result["from"]["is_bot"] and result["chat"]["id"] == ALICE["id"]
    (current,) = api.sent_messages(ALICE["id"])
    assert current["message_id"] == result["message_id"]
    status, photo = api.sent_messages(ALICE["id"], include_deleted=True)
    assert status["text"] == "Working on it…" and photo == current
    assert (ALICE["id"], status["message_id"]) in api.deleted_messages


async def test_downscaled_sizes_are_made_on_demand(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    image = jpeg_bytes(1000, 500)
    sent = await api.send_photo(ALICE, None, image)
    small = api.files[sent["photo"][0]["file_id"]]
    assert small.data is None  # nothing encoded until somebody asks
    async with make_bot(api) as bot:
        tg_file = await bot.get_file(sent["photo"][0]["file_id"])
        data = bytes(await tg_file.download_as_bytearray())
        largest = await bot.get_file(sent["photo"][-1]["file_id"])
        original = bytes(await largest.download_as_bytearray())
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"
        assert img.size == (90, 45)
    assert tg_file.file_size == len(data)
    assert original == image


async def test_get_file_refuses_files_over_20_mb(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    sent = await api.send_document(ALICE, None, bytes(20 * 1024 * 1024 + 1), "huge.tiff")
    assert sent["document"]["mime_type"] == "image/tiff"
    async with make_bot(api) as bot:
        with pytest.raises(BadRequest, match=r"(?i)file is too big"):
            await bot.get_file(sent["document"]["file_id"])


async def test_photo_file_id_reuse_and_media_edits(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    api.register_chat(private_chat(ALICE))
    first_image, second_image = jpeg_bytes(400, 300, 1), png_bytes(200, 100)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Again", callback_data="again")]])
    async with make_bot(api) as bot:
        first = await bot.send_photo(ALICE["id"], first_image, caption="v1", reply_markup=keyboard)
        again = await bot.send_photo(ALICE["id"], first.photo[-1].file_id)
        assert again.photo[-1].file_unique_id == first.photo[-1].file_unique_id
        assert api.files[again.photo[-1].file_id].data == first_image
        with pytest.raises(BadRequest, match=r"(?i)can't use file of type Photo as Document"):
            await bot.send_document(ALICE["id"], first.photo[-1].file_id)
        with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
            await bot.send_photo(ALICE["id"], "AgACnot-a-real-id")
        with pytest.raises(BadRequest, match=r"(?i)IMAGE_PROCESS_FAILED"):
            await bot.send_photo(ALICE["id"], b"definitely not an image")

        captioned = await bot.edit_message_caption(
            ALICE["id"], first.message_id, caption="v2", reply_markup=keyboard
        )
        assert captioned.caption == "v2" and captioned.reply_markup == keyboard
        edited = await bot.edit_message_media(
            InputMediaPhoto(second_image, caption="v3"),
            ALICE["id"],
            first.message_id,
            reply_markup=keyboard,
        )
        assert (edited.photo[-1].width, edited.photo[-1].height) == (200, 100)
        assert edited.caption == "v3" and edited.reply_markup == keyboard
        bare = await bot.edit_message_reply_markup(ALICE["id"], first.message_id)
        assert bare.reply_markup is None
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_reply_markup(ALICE["id"], first.message_id)

        album = await bot.send_media_group(
            ALICE["id"], [InputMediaPhoto(first_image), InputMediaPhoto(second_image, "b")]
        )
        assert len({m.media_group_id for m in album}) == 1 and album[1].caption == "b"

    uploads = [c.sources for c in api.calls_to("sendPhoto") if c.ok]
    assert uploads == [{"photo": "upload"}, {"photo": "file_id"}]
    (media_edit,) = api.calls_to("editMessageMedia")
    assert media_edit.sources == {"media": "upload"}
    assert list(media_edit.files.values()) == [second_image]
    (group,) = api.calls_to("sendMediaGroup")
    assert group.sources == {"media.0": "upload", "media.1": "upload"}
    stored = api.message(ALICE["id"], first.message_id)
    assert stored is not None and stored["caption"] == "v3" and "reply_markup" not in stored


# --------------------------------------------------------------------------- documents


async def test_document_round_trip(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    errors: list[BaseException] = []

    async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.document is not None
        tg_file = await message.document.get_file()
        data = bytes(await tg_file.download_as_bytearray())
        await message.reply_document(data, filename="anime.png", do_quote=True)

    app = build_app(api, MessageHandler(filters.Document.ALL, on_document), errors=errors)
    original = png_bytes(64, 64)
    async with running_application(app, api):
        sent = await api.send_document(ALICE, None, original, "portrait.png", "image/png")
        (reply,) = await api.wait_for("sendDocument")
    assert not errors
    assert sent["document"]["file_name"] == "portrait.png"
    assert sent["document"]["mime_type"] == "image/png"
    assert reply.ok, reply.description
    assert reply.files["document"] == original
    assert reply.file_names["document"] == "anime.png"
    assert reply.sources == {"document": "upload"}
    assert reply.reply_to_message_id == sent["message_id"]
    document = reply.result["document"]
    assert document["file_name"] == "anime.png" and document["mime_type"] == "image/png"
    assert document["file_size"] == len(original)


# --------------------------------------------------------------------------- buttons


async def test_callback_query_answered_and_menu_edited(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    errors: list[BaseException] = []

    async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        buttons = [
            InlineKeyboardButton("Hayao", callback_data="style:hayao"),
            InlineKeyboardButton("Shinkai", callback_data="style:shinkai"),
        ]
        markup = InlineKeyboardMarkup([buttons])
        await update.effective_message.reply_text("Pick a style", reply_markup=markup)

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        await query.answer(f"Style: {query.data.split(':')[1]}")
        await query.edit_message_text(f"Style set to {query.data.split(':')[1]}")

    app = build_app(
        api, CommandHandler("start", on_start), CallbackQueryHandler(on_button), errors=errors
    )
    group = group_chat(-4242, "Friends")
    async with running_application(app, api):
        command = await api.send_text(BORIS, group, f"/start@{BOT_USERNAME}")
        (menu_call,) = await api.wait_for("sendMessage")
        menu = menu_call.result
        query = await api.press_button(BORIS, menu, "style:shinkai")
        await api.wait_for("editMessageText")
    assert not errors
    assert menu_call.reply_to_message_id == command["message_id"]  # groups quote by default
    assert menu["reply_markup"]["inline_keyboard"][0][1]["callback_data"] == "style:shinkai"
    assert api.callback_answers[query["id"]]["text"] == "Style: shinkai"
    current = api.message(group["id"], menu["message_id"])
    assert current is not None
    assert current["text"] == "Style set to shinkai"
    assert "reply_markup" not in current  # editMessageText without markup drops the keyboard
    async with make_bot(api) as bot:
        with pytest.raises(BadRequest, match=r"(?i)query is too old"):
            await bot.answer_callback_query(query["id"])


# --------------------------------------------------------------------------- commands


async def test_set_my_commands_per_language_and_scope(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    english = [BotCommand("start", "Start"), BotCommand("style", "Pick a style")]
    russian = [BotCommand("start", "Начать"), BotCommand("style", "Выбрать стиль")]
    async with make_bot(api) as bot:
        assert await bot.set_my_commands(english)
        assert await bot.set_my_commands(russian, language_code="ru")
        private = BotCommandScopeAllPrivateChats()
        assert await bot.set_my_commands(english[:1], scope=private, language_code="en")
        assert await bot.get_my_commands() == tuple(english)
        assert await bot.get_my_commands(language_code="ru") == tuple(russian)
        assert await bot.get_my_commands(scope=private, language_code="en") == tuple(english[:1])
        assert await bot.get_my_commands(language_code="de") == ()
        assert await bot.delete_my_commands(language_code="ru")
        assert await bot.get_my_commands(language_code="ru") == ()
        with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
            await bot.set_my_commands([BotCommand("Bad-Name", "x")])
    assert [c["command"] for c in api.my_commands()] == ["start", "style"]
    assert api.my_commands("en", scope={"type": "all_private_chats"}) == [
        {"command": "start", "description": "Start"}
    ]
    assert api.my_commands("ru") == []


# --------------------------------------------------------------------------- error injection


async def test_429_surfaces_as_retry_after(
    telegram_standin: TelegramStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # retry_after as timedelta, no deprecation
    api = telegram_standin
    api.register_chat(private_chat(ALICE))
    api.fail_next("sendMessage", status=429, retry_after=7)
    async with make_bot(api) as bot:
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(ALICE["id"], "hello")
        assert caught.value.retry_after == dtm.timedelta(seconds=7)
        message = await bot.send_message(ALICE["id"], "hello again")  # only the next call
    assert message.text == "hello again"
    failed, ok = api.calls_to("sendMessage")
    assert (failed.status, ok.status) == (429, 200)
    assert [m["text"] for m in api.sent_messages(ALICE["id"])] == ["hello again"]


async def test_ai_rate_limiter_retries_after_429(
    telegram_standin: TelegramStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("aiolimiter", reason="AIORateLimiter needs the aiolimiter package")
    from telegram.ext import AIORateLimiter, ExtBot

    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    api = telegram_standin
    api.register_chat(private_chat(ALICE))
    api.fail_next("sendMessage", status=429, retry_after=1)
    limiter = AIORateLimiter(max_retries=1)
    bot = ExtBot(
        api.token, base_url=api.base_url, base_file_url=api.base_file_url, rate_limiter=limiter
    )
    async with bot:
        message = await bot.send_message(ALICE["id"], "through the limiter")
        api.fail_next("sendMessage", status=429, retry_after=1, count=2)
        with pytest.raises(RetryAfter):
            await bot.send_message(ALICE["id"], "gives up after max_retries")
    assert message.text == "through the limiter"
    calls = api.calls_to("sendMessage")
    assert [c.status for c in calls] == [429, 200, 429, 429]
    assert calls[1].time - calls[0].time >= 1.0  # PTB waited retry_after (+0.1 s) itself


async def test_403_400_5xx_and_blocked_chats(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    api.register_chat(private_chat(ALICE))
    api.register_chat(private_chat(BORIS))
    image = jpeg_bytes(32, 32)
    async with make_bot(api) as bot:
        api.fail_next("sendPhoto", status=403)
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_photo(ALICE["id"], image)
        api.fail_next("sendMessage", 400, description="Bad Request: chat not found")
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(ALICE["id"], "x")
        for status in (500, 502):
            api.fail_next("getMe", status)
            with pytest.raises(NetworkError) as caught:
                await bot.get_me()
            assert not isinstance(caught.value, BadRequest)
        api.fail_next("sendMessage", 403, match=lambda p: p.get("chat_id") == BORIS["id"])
        assert (await bot.send_message(ALICE["id"], "not Boris")).text == "not Boris"
        with pytest.raises(Forbidden):
            await bot.send_message(BORIS["id"], "Boris")
        api.block(ALICE["id"])
        for _ in range(2):
            with pytest.raises(Forbidden):
                await bot.send_message(ALICE["id"], "blocked")
        api.unblock(ALICE["id"])
        assert (await bot.send_message(ALICE["id"], "back")).text == "back"
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(555, "nobody")


async def test_hold_next_parks_a_call_until_released(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    api.register_chat(private_chat(ALICE))
    release = api.hold_next("sendMessage")
    async with make_bot(api) as bot:
        pending = asyncio.create_task(bot.send_message(ALICE["id"], "slow"))
        await api.wait_for("getMe")  # the stand-in answers other calls meanwhile
        assert not pending.done() and not api.calls_to("sendMessage")
        release.set()
        assert (await pending).text == "slow"


# --------------------------------------------------------------------------- status messages


async def test_edit_and_delete_status_message(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    api.register_chat(private_chat(ALICE))
    async with make_bot(api) as bot:
        status = await bot.send_message(ALICE["id"], "Queued: position 3")
        edited = await bot.edit_message_text("Converting…", ALICE["id"], status.message_id)
        assert edited.text == "Converting…" and edited.edit_date is not None
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_text("Converting…", ALICE["id"], status.message_id)
        current = api.message(ALICE["id"], status.message_id)
        assert current is not None and current["text"] == "Converting…"

        assert await bot.delete_message(ALICE["id"], status.message_id)
        assert api.message(ALICE["id"], status.message_id) is None
        with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
            await bot.delete_message(ALICE["id"], status.message_id)
        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await bot.edit_message_text("late", ALICE["id"], status.message_id)
        with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
            await bot.send_message(ALICE["id"], "re", reply_to_message_id=status.message_id)
    assert [c.status for c in api.calls_to("deleteMessage")] == [200, 400]
    assert api.sent_messages(ALICE["id"]) == []


async def test_text_limits_and_parse_modes(telegram_standin: TelegramStandIn) -> None:
    api = telegram_standin
    api.register_chat(private_chat(ALICE))
    async with make_bot(api) as bot:
        html = await bot.send_message(ALICE["id"], "<b>Done</b> &amp; saved", parse_mode="HTML")
        assert html.text == "Done & saved"
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_message(ALICE["id"], "<blink>x</blink>", parse_mode="HTML")
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_message(ALICE["id"], "<b>open", parse_mode="HTML")
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_message(ALICE["id"], "1 < 2", parse_mode="HTML")
        with pytest.raises(BadRequest, match=r"(?i)reserved"):
            await bot.send_message(ALICE["id"], "Done.", parse_mode="MarkdownV2")
        escaped = await bot.send_message(ALICE["id"], "*Done*\\.", parse_mode="MarkdownV2")
        link = "[result](https://example.org/a-b.png) ready\\!"
        assert (await bot.send_message(ALICE["id"], link, parse_mode="MarkdownV2")).text == link
        assert escaped.text == "*Done*\\."  # MarkdownV2 is only checked, stored as sent
        with pytest.raises(BadRequest, match=r"(?i)message is too long"):
            await bot.send_message(ALICE["id"], "x" * 4097)
        with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
            await bot.send_message(ALICE["id"], " ")
        with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
            await bot.send_photo(ALICE["id"], jpeg_bytes(16, 16), caption="y" * 1025)


# --------------------------------------------------------------------------- load smoke


async def test_many_users_concurrently(telegram_standin: TelegramStandIn) -> None:
    """20 users x 3 photos through one Application with concurrent updates."""
    api = telegram_standin
    errors: list[BaseException] = []

    async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        data = await (await message.photo[-1].get_file()).download_as_bytearray()
        await message.reply_photo(bytes(data), do_quote=True)

    app = build_app(api, MessageHandler(filters.PHOTO, on_photo), errors=errors, concurrent=True)
    users = [make_user(5000 + n, language_code=("en", "ru", "ja")[n % 3]) for n in range(20)]
    expected: dict[tuple[int, int], bytes] = {}
    async with running_application(app, api):
        since = api.mark()
        for round_ in range(3):
            for n, user in enumerate(users):
                data = jpeg_bytes(96, 72, seed=n * 3 + round_)
                sent = await api.send_photo(user, None, data)
                expected[(user["id"], sent["message_id"])] = data
        replies = await api.wait_for("sendPhoto", count=60, timeout=60, since=since)
    assert not errors
    got = {(c.chat_id, c.reply_to_message_id): c.files["photo"] for c in replies}
    assert got == expected
    assert all(c.sources == {"photo": "upload"} for c in replies)
