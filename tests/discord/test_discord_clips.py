"""Clips through /anime and Anime-fy with the real discord.py and the Discord stand-in: an MP4
of the right size, length and frame count (with its audio) that fits the upload limit, the
"thinking" message counting up in percent, and translated private errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bot.discord import DiscordFrontEnd
from i18n import t
from tests.clipgen import make_animation, make_mp4, probe_output
from tests.discord.conftest import StartBot
from tests.standins.discord_api import DiscordStandIn

WAIT_S = 120.0


@pytest.fixture
def photo(photos_dir: Path) -> Path:
    return photos_dir / "street_shopfront.jpg"


async def test_anime_converts_a_video_with_progress_in_the_thinking_message(
    start_bot: StartBot, discord_standin: DiscordStandIn, tmp_path: Path, photo: Path
) -> None:
    await start_bot(clip_photo_pixels=320 * 240 * 2)  # several progress steps
    clip = make_mp4(tmp_path / "walk.mp4", photo, seconds=2, fps=12, audio=True)
    record = await discord_standin.invoke_slash(
        "anime", {}, attachments={"image": ("walk.mp4", clip.read_bytes(), "video/mp4")}
    )
    deferral = await record.wait_response()
    assert deferral.thinking and not deferral.ephemeral
    (reply,) = await record.wait_followups(1, timeout=WAIT_S)
    assert not reply.ephemeral
    ((name, data),) = reply.files.items()
    assert name == "anime-walk.mp4"
    info = probe_output(data)
    assert (info["codec"], info["width"], info["height"], info["frames"]) == ("h264", 320, 240, 24)
    assert abs(float(info["duration_s"]) - 2.0) < 0.1  # type: ignore[arg-type]
    assert info["audio"] == "aac"
    shown = [e.content for e in record.edits]
    assert shown and all(text and text.startswith("Animating your clip") for text in shown)
    assert record.deleted_message_ids == [deferral.message_id]  # the progress goes


async def test_the_bit_rate_fits_the_channels_upload_limit(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, tmp_path: Path, photo: Path
) -> None:
    clip = make_mp4(tmp_path / "a.mp4", photo, seconds=3, fps=24, width=640, height=480)
    limit = 150_000
    record = await discord_standin.invoke_slash(
        "anime",
        {},
        attachments={"image": ("a.mp4", clip.read_bytes(), "video/mp4")},
        attachment_size_limit=limit,
    )
    (reply,) = await record.wait_followups(1, timeout=WAIT_S)
    ((_, data),) = reply.files.items()
    assert len(data) <= limit
    assert probe_output(data)["frames"] == 72


async def test_anime_fy_on_a_message_with_a_gif(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, photo: Path
) -> None:
    gif = make_animation(photo, frames=10, delay_ms=100)
    message = discord_standin.make_message([("dance.gif", gif, "image/gif")])
    record = await discord_standin.invoke_message_command("Anime-fy", message)
    (reply,) = await record.wait_followups(1, timeout=WAIT_S)
    ((name, data),) = reply.files.items()
    assert name == "anime-dance.gif"  # a GIF back: Discord plays it inline
    with Image.open(io.BytesIO(data)) as im:
        assert (im.format, im.n_frames, im.size, im.info["loop"]) == ("GIF", 10, (200, 150), 0)
        assert im.info["duration"] == 100


async def test_a_gif_too_large_to_post_as_a_gif_comes_as_an_mp4(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, photo: Path
) -> None:
    gif = make_animation(photo, frames=30, delay_ms=40, side=480)
    limit = 400_000  # the GIF result would be over, its MP4 is far under
    record = await discord_standin.invoke_slash(
        "anime",
        {},
        attachments={"image": ("big.gif", gif, "image/gif")},
        attachment_size_limit=limit,
    )
    (reply,) = await record.wait_followups(1, timeout=WAIT_S)
    ((name, data),) = reply.files.items()
    assert name == "anime-big.mp4" and len(data) <= limit
    assert probe_output(data)["frames"] == 30


async def test_a_still_gif_is_converted_as_a_photo(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, photo: Path
) -> None:
    gif = make_animation(photo, frames=1)
    record = await discord_standin.invoke_slash(
        "anime", {}, attachments={"image": ("still.gif", gif, "image/gif")}
    )
    (reply,) = await record.wait_followups(1, timeout=WAIT_S)
    ((name, _),) = reply.files.items()
    assert not name.endswith(".mp4")


async def test_a_damaged_video_is_a_private_translated_error(
    bot: DiscordFrontEnd, discord_standin: DiscordStandIn, tmp_path: Path, photo: Path
) -> None:
    data = make_mp4(tmp_path / "a.mp4", photo, seconds=1, fps=8).read_bytes()
    record = await discord_standin.invoke_slash(
        "anime",
        {},
        attachments={"image": ("a.mp4", data[: len(data) // 2], "video/mp4")},
        locale="ru",
    )
    deferral = await record.wait_response()
    (reply,) = await record.wait_followups(1, timeout=WAIT_S)
    assert reply.ephemeral and reply.content == t("error.damaged_video", "ru")
    assert record.deleted_message_ids == [deferral.message_id]
    summary = await bot.runtime.db.stats.summary(days=1)
    assert summary.error_kinds == {"damaged_video": 1}


@pytest.mark.parametrize(
    ("name", "kind", "status"), [("a.mp4", "video/mp4", 403), ("a.gif", "image/gif", 404)]
)
async def test_a_failed_attachment_download_is_a_translated_error_and_a_row(
    bot: DiscordFrontEnd,
    discord_standin: DiscordStandIn,
    tmp_path: Path,
    photo: Path,
    name: str,
    kind: str,
    status: int,
) -> None:
    """Discord's CDN refuses the download (after deferring for a video, before answering for
    a GIF): the person gets the translated reason privately, the failure is recorded, and no
    handler error reaches discord.py."""
    data = make_mp4(tmp_path / "a.mp4", photo, seconds=1, fps=8).read_bytes()
    discord_standin.fail_next(r"^GET /attachments/", status=status)
    record = await discord_standin.invoke_slash(
        "anime", {}, attachments={"image": (name, data, kind)}, locale="ru"
    )
    first = await record.wait_response()
    if first.thinking:  # a video: deferred before the download, the error follows
        (reply,) = await record.wait_followups(1, timeout=WAIT_S)
        assert reply.ephemeral and reply.content == t("dc.error.download", "ru")
    else:
        assert first.ephemeral and first.content == t("dc.error.download", "ru")
    summary = await bot.runtime.db.stats.summary(days=1)
    assert summary.error_kinds == {"download_failed": 1}
    assert discord_standin.errors == []


async def test_every_clip_request_is_one_usage_row_whatever_its_outcome(
    start_bot: StartBot, discord_standin: DiscordStandIn, tmp_path: Path, photo: Path
) -> None:
    """A clip posted, one refused before downloading and one whose upload Discord refused: one
    row each, keyed by the request id (the clip service writes it, or updates it)."""
    bot = await start_bot(clip_max_mb=0.2)
    clip = make_mp4(tmp_path / "a.mp4", photo, seconds=1, fps=8).read_bytes()
    too_big = bytes(bot.runtime.settings.limits.clip_max_bytes + 1)
    assert len(clip) < len(too_big)

    async def anime(data: bytes, user_id: int) -> None:
        record = await discord_standin.invoke_slash(
            "anime", {}, attachments={"image": ("a.mp4", data, "video/mp4")}, user_id=user_id
        )
        await record.wait_followups(1, timeout=WAIT_S)

    await anime(clip, 601)
    refused = await discord_standin.invoke_slash(
        "anime", {}, attachments={"image": ("a.mp4", too_big, "video/mp4")}, user_id=602
    )
    assert (await refused.wait_response()).ephemeral
    discord_standin.fail_next(r"^POST /webhooks/", status=403, code=50013, message="Missing")
    await anime(clip, 603)
    db = bot.runtime.db
    outcomes = {}
    for user in (601, 602, 603):
        found = await db._sql.fetchall(
            "SELECT status, error_kind, request_id FROM usage WHERE user_hash = ?",
            (db.hash_id("discord", user),),
        )
        (row,) = found  # exactly one each
        assert row["request_id"]
        outcomes[user] = (row["status"], row["error_kind"])
    assert outcomes == {
        601: ("ok", None),
        602: ("error", "too_large"),
        603: ("error", "delivery_failed"),
    }
