"""Clips through the real PTB application and the Bot API stand-in: videos come back as videos
(with their sound), animations as animations, round video notes as round video notes, with a
percentage in the status message while the frames are converted."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ImageTooLarge
from i18n import error_message, t
from tests.clipgen import make_mp4, probe_output
from tests.standins.telegram_api import group_chat, private_chat
from tests.telegram.helpers import ALICE, BORIS, Harness, StartBot, matches, replies_to


@pytest.fixture
def photo(photos_dir: Path) -> Path:
    return photos_dir / "street_shopfront.jpg"


async def test_a_video_comes_back_as_a_video_with_its_sound(
    start_bot: StartBot, tmp_path: Path, photo: Path
) -> None:
    bot = await start_bot(clip_photo_pixels=320 * 240 * 2)  # progress in several steps
    api = bot.api
    clip = make_mp4(tmp_path / "v.mp4", photo, seconds=1.5, fps=12, audio=True)
    sent = await api.send_video(ALICE, private_chat(ALICE), clip.read_bytes(), caption="shinkai")
    (reply,) = await api.wait_for("sendVideo", replies_to(sent))
    assert reply.ok, reply.description
    info = probe_output(reply.files["video"])
    assert (info["codec"], info["width"], info["height"], info["frames"]) == ("h264", 320, 240, 18)
    assert abs(float(info["duration_s"]) - 1.5) < 0.1  # type: ignore[arg-type]
    assert info["audio"] == "aac"
    assert reply.params["caption"].startswith(t("style.shinkai", "en"))
    # the status message counted up in percent, and is gone once the video is there
    edits = [c.params["text"] for c in api.calls_to("editMessageText")]
    first = [c.params["text"] for c in api.calls_to("sendMessage")]
    shown = first + edits
    assert shown[0] == t("clip.progress", "en", percent=0)
    assert all(matches("clip.progress", "en", text) for text in shown)
    assert len(shown) >= 3 and shown[-1] == t("clip.progress", "en", percent=100)
    await bot.settled()
    assert api.calls_to("deleteMessage")
    (row,) = await bot.rows_of(ALICE)
    assert (row["status"], row["style"]) == ("ok", "shinkai")


async def test_an_animation_comes_back_as_an_animation(bot: Harness, photo: Path) -> None:
    api = bot.api
    # Telegram turns GIFs into soundless MP4 "animations"; the stand-in takes them as sent
    gif_as_mp4 = make_mp4(
        Path(bot.runtime.settings.data_dir) / "a.mp4", photo, seconds=1, fps=10
    ).read_bytes()
    sent = await api.send_video(ALICE, private_chat(ALICE), gif_as_mp4, kind="animation")
    (reply,) = await api.wait_for("sendAnimation", replies_to(sent))
    assert reply.ok, reply.description
    info = probe_output(reply.files["animation"])
    assert (info["frames"], info["audio"]) == (10, None)


async def test_reply_anime_to_an_earlier_clip_converts_the_clip(bot: Harness, photo: Path) -> None:
    """`/anime shinkai` as a reply to a clip in a group (not addressed to the bot, so not
    converted when sent) converts it in that style, answered under the clip, as a photo's is."""
    api = bot.api
    group = group_chat(-5002, "Clips")
    mp4 = make_mp4(
        Path(bot.runtime.settings.data_dir) / "r.mp4", photo, seconds=1, fps=8, audio=True
    ).read_bytes()
    clip = await api.send_video(ALICE, group, mp4)
    since = api.mark()
    await api.send_text(BORIS, group, "/anime shinkai", reply_to=clip)
    (reply,) = await api.wait_for("sendVideo", replies_to(clip), since=since, timeout=60)
    assert reply.params["caption"].startswith(t("style.shinkai", "ru"))  # Boris reads Russian
    info = probe_output(reply.files["video"])
    assert (info["frames"], info["audio"]) == (8, "aac")
    (row,) = await bot.rows_of(BORIS)
    assert (row["status"], row["style"]) == ("ok", "shinkai")
    assert await bot.rows_of(ALICE) == []


async def test_a_video_note_comes_back_round(bot: Harness, tmp_path: Path, photo: Path) -> None:
    api = bot.api
    note = make_mp4(tmp_path / "n.mp4", photo, seconds=1, fps=10, width=240, height=240, audio=True)
    sent = await api.send_video(BORIS, private_chat(BORIS), note.read_bytes(), kind="video_note")
    (reply,) = await api.wait_for("sendVideoNote", replies_to(sent))
    assert reply.ok, reply.description
    info = probe_output(reply.files["video_note"])
    assert (info["width"], info["height"], info["frames"], info["audio"]) == (240, 240, 10, "aac")
    assert reply.params["length"] == 240


async def test_a_video_sticker_comes_back_as_a_video_sticker(
    bot: Harness, tmp_path: Path, photo: Path
) -> None:
    """WebM VP9 as Telegram requires: the longer side exactly 512 px (scaled up from 256x192),
    at most 3 s (a 4 s sticker is cut, and the note says so in a message of its own), no
    audio, at most 256 KB (the stand-in refuses a sticker that breaks any of these)."""
    api = bot.api
    webm = make_mp4(
        tmp_path / "s.webm", photo, seconds=4, fps=10, width=256, height=192, container="webm"
    )
    sent = await api.send_sticker(ALICE, private_chat(ALICE), webm.read_bytes(), is_video=True)
    (reply,) = await api.wait_for("sendSticker", replies_to(sent))
    sticker = reply.result["sticker"]
    assert sticker["is_video"] and (sticker["width"], sticker["height"]) == (512, 384)
    data = reply.files["sticker"]
    assert len(data) <= 256 * 1024
    info = probe_output(data)
    assert (info["codec"], info["audio"], info["frames"]) == ("vp9", None, 30)
    quoted = replies_to(sent)
    notes = await api.wait_for("sendMessage", lambda c: quoted(c) and "first" in c.params["text"])
    assert "first 3 s" in notes[0].params["text"]  # the cut note names the seconds kept


async def test_a_damaged_video_gets_a_translated_answer(
    bot: Harness, tmp_path: Path, photo: Path
) -> None:
    api = bot.api
    data = make_mp4(tmp_path / "v.mp4", photo, seconds=1, fps=10).read_bytes()
    sent = await api.send_video(BORIS, private_chat(BORIS), data[: len(data) // 2])
    (reply,) = await api.wait_for(
        "sendMessage", lambda c: c.params.get("text", "").startswith("Видео")
    )
    assert reply.params["text"] == t("error.damaged_video", "ru")
    await bot.settled()
    (row,) = await bot.rows_of(BORIS)
    assert (row["status"], row["error_kind"]) == ("error", "damaged_video")
    assert sent


async def test_a_too_large_clip_is_refused_before_downloading(
    start_bot: StartBot, tmp_path: Path, photo: Path
) -> None:
    bot = await start_bot(clip_max_mb=0.01)
    api = bot.api
    data = make_mp4(tmp_path / "v.mp4", photo, seconds=1, fps=10).read_bytes()
    assert len(data) > 0.01 * 1024 * 1024
    sent = await api.send_video(ALICE, private_chat(ALICE), data)
    (reply,) = await api.wait_for("sendMessage", replies_to(sent))
    limit = int(0.01 * 1024 * 1024)
    assert reply.params["text"] == error_message(ImageTooLarge("x", limit=limit), "en")
    assert not api.calls_to("getFile")
    await bot.settled()
    (row,) = await bot.rows_of(ALICE)  # the refusal's one row, written by the clip service
    assert (row["status"], row["error_kind"]) == ("error", "too_large")
    assert row["request_id"]


async def test_a_clip_the_chat_refuses_updates_its_one_row(
    bot: Harness, tmp_path: Path, photo: Path
) -> None:
    api = bot.api
    data = make_mp4(tmp_path / "v.mp4", photo, seconds=1, fps=8, audio=True).read_bytes()
    api.fail_next("sendVideo", 403)  # the person blocked the bot while the clip converted
    sent = await api.send_video(BORIS, private_chat(BORIS), data)
    (refused,) = await api.wait_for("sendVideo", replies_to(sent))
    assert refused.status == 403
    await bot.settled()
    rows = [(r["status"], r["error_kind"]) for r in await bot.rows_of(BORIS)]
    assert rows == [("error", "delivery_blocked")]  # the conversion's row, updated
