"""Buttons under a result render the cached input again: no second download, and a repeat is
sent by Telegram file_id, not uploaded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.telegram.callbacks import ResultAction
from i18n import error_message, t
from service.errors import InputExpired
from tests.service.helpers import HeldConversion
from tests.standins.telegram_api import Call
from tests.telegram.helpers import (
    ALICE,
    BORIS,
    Harness,
    decoded_size,
    replies_to,
    small_photo,
    synthetic_jpeg,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def buttons(call: Call) -> dict[str, str]:
    """Button text -> callback_data of a sent result."""
    rows = call.params["reply_markup"]["inline_keyboard"]
    return {b["text"]: b["callback_data"] for row in rows for b in row}


def downloads(harness: Harness) -> int:
    api = harness.api
    return len(api.calls_to("getFile")) + len(api.calls_to("download"))


async def test_every_button_reuses_the_cached_input(bot: Harness, photos_dir: Path) -> None:
    api = bot.api
    image = small_photo(photos_dir / "face_single_lowlight.jpg")
    photo = await api.send_photo(ALICE, None, image)
    (first,) = await api.wait_for("sendPhoto", replies_to(photo))
    assert downloads(bot) == 2  # getFile + the download, once
    keys = buttons(first)
    result = first.result

    async def press(label: str, method: str = "sendPhoto") -> Call:
        since = api.mark()
        query = await api.press_button(ALICE, result, keys[label])
        (reply,) = await api.wait_for(method, replies_to(photo), since=since)
        assert api.callback_answers[query["id"]].get("show_alert") is not True
        return reply

    shinkai = await press(t("style.shinkai", "en"))
    assert shinkai.params["caption"].startswith(t("style.shinkai", "en"))
    assert buttons(shinkai)[t("style.hayao", "en")]  # and back to the other style
    plain = await press(t("tg.button.faces_off", "en"))
    assert t("tg.button.faces_on", "en") in buttons(plain)
    both = await press(t("tg.button.side_by_side", "en"))
    width, height = decoded_size(image)
    assert decoded_size(both.files["photo"]) == (2 * width, height)
    assert t("tg.button.single", "en") in buttons(both)
    full = await press(t("tg.button.full_file", "en"), "sendDocument")
    assert full.files["document"].startswith(PNG_MAGIC)
    assert full.file_names["document"] == "anime-hayao.png"
    assert decoded_size(full.files["document"]) == (width, height)

    assert downloads(bot) == 2  # no button downloaded the original again
    rows = await bot.rows_of(ALICE)
    assert [(r["style"], r["faces"], r["side_by_side"]) for r in rows] == [
        ("hayao", 1, 0),
        ("shinkai", 1, 0),
        ("hayao", 0, 0),
        ("hayao", 1, 1),
        ("hayao", 1, 0),  # the PNG file: same options, another format
    ]
    assert all(r["status"] == "ok" and not r["cache_hit"] for r in rows)


async def test_repeats_are_sent_by_file_id(bot: Harness) -> None:
    api = bot.api
    image = synthetic_jpeg(seed=5)
    first_photo = await api.send_photo(ALICE, None, image)
    (first,) = await api.wait_for("sendPhoto", replies_to(first_photo))
    again_photo = await api.send_photo(BORIS, None, image)  # the same picture, someone else
    (again,) = await api.wait_for("sendPhoto", replies_to(again_photo))
    assert first.sources == {"photo": "upload"}
    assert again.sources == {"photo": "file_id"}  # nothing uploaded the second time
    assert again.params["photo"] == first.result["photo"][-1]["file_id"]
    rows = await bot.usage_rows()
    assert [r["cache_hit"] for r in rows] == [0, 1]

    data = buttons(first)[t("tg.button.full_file", "en")]
    for _ in range(2):  # the full-resolution file twice: uploaded, then by file_id
        since = api.mark()
        await api.press_button(ALICE, first.result, data)
        await api.wait_for("sendDocument", replies_to(first_photo), since=since)
        await bot.settled()  # that press is done (its job finished), not a double tap
    files = api.calls_to("sendDocument")
    assert [c.sources for c in files] == [{"document": "upload"}, {"document": "file_id"}]


async def test_stale_buttons_explain_themselves(bot: Harness) -> None:
    api = bot.api
    photo = await api.send_photo(ALICE, None, synthetic_jpeg(seed=7))
    (result,) = await api.wait_for("sendPhoto", replies_to(photo))
    unknown_key = ResultAction.make("photo", "ab" * 32, "shinkai", faces=True, side_by_side=False)
    since = api.mark()
    await api.press_button(ALICE, result.result, unknown_key.encode())
    (answer,) = await api.wait_for("sendMessage", replies_to(photo), since=since)
    assert answer.params["text"] == error_message(InputExpired("x"), "en")

    for data in ("garbage", "r10:picasso:" + "A" * 43):
        query: dict[str, Any] = await api.press_button(ALICE, result.result, data)
        await api.wait_for(
            "answerCallbackQuery", lambda c, q=query: c.params.get("callback_query_id") == q["id"]
        )
        reply = api.callback_answers[query["id"]]
        assert reply["text"] == t("tg.button.expired", "en") and reply["show_alert"] is True
    rows = await bot.rows_of(ALICE)
    assert [(r["status"], r["error_kind"]) for r in rows] == [
        ("ok", None),
        ("error", "input_expired"),
    ]


async def test_a_double_tap_sends_one_result(bot: Harness) -> None:
    """The same button pressed again while its conversion runs: "already working on it", and
    one result, not two."""
    api = bot.api
    photo = await api.send_photo(ALICE, None, synthetic_jpeg(seed=11))
    (first,) = await api.wait_for("sendPhoto", replies_to(photo))
    data = buttons(first)[t("style.shinkai", "en")]
    held = HeldConversion(bot.runtime.engine)
    since = api.mark()
    await api.press_button(ALICE, first.result, data)
    await asyncio.wait_for(held.started.wait(), 30)  # the first tap's conversion is running
    again = await api.press_button(ALICE, first.result, data)
    await api.wait_for(
        "answerCallbackQuery", lambda c: c.params.get("callback_query_id") == again["id"]
    )
    assert api.callback_answers[again["id"]].get("text") == t("tg.button.working", "en")
    held.release()
    await api.wait_for("sendPhoto", replies_to(photo), since=since)
    await bot.settled()
    assert len([c for c in api.calls[since:] if c.method == "sendPhoto"]) == 1
    rows = await bot.rows_of(ALICE)
    assert [(r["style"], r["status"]) for r in rows] == [("hayao", "ok"), ("shinkai", "ok")]
