"""Every edge-case file of ../shared/data/photos/edge through /anime: an image or the specific
translated private error; nothing crashes; one usage row per request."""

from __future__ import annotations

import asyncio
import io
import logging
import mimetypes
from pathlib import Path

import pytest
from PIL import Image

from bot.discord import DiscordFrontEnd
from core.errors import ImageTooLarge
from i18n import error_message, t
from tests.standins.discord_api import DiscordStandIn

# The outcome each file is there to provoke: an error code, or None for a picture.
EXPECTED: dict[str, str | None] = {
    "alpha_rgba.png": None,
    "animated.gif": None,
    "bomb_20000x20000.png": "too_large_pixels",
    "cmyk.jpg": None,
    "empty.jpg": "empty",
    "exif_orientation6.jpg": None,
    "grayscale_L.jpg": None,
    "iphone_photo.heic": None,
    "not_an_image.jpg": "not_image",
    "panorama_6000x400.jpg": None,
    "rgb_16bit.png": None,
    "sticker_512.webp": None,
    "tiny_8x8.png": "too_small",
    "truncated.jpg": "damaged",
}


def expected_text(code: str, bot: DiscordFrontEnd) -> str:
    settings = bot.runtime.settings
    if code == "too_large_pixels":
        return error_message(ImageTooLarge("x", pixels=1, limit=settings.max_pixels), "en")
    if code == "too_small":
        return t("error.too_small", "en", min_side=bot.runtime.engine.config.min_side)
    return t(f"error.{code}", "en")


@pytest.fixture
def edge_files(edge_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(edge_dir.iterdir()) if p.is_file()}


async def test_every_edge_file_gives_an_image_or_its_translated_error(
    bot: DiscordFrontEnd,
    discord_standin: DiscordStandIn,
    edge_files: dict[str, bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert set(edge_files) >= set(EXPECTED), "edge set changed: update EXPECTED"
    records = {}
    for name, data in edge_files.items():
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        records[name] = await discord_standin.invoke_slash(
            "anime", attachments={"image": (name, data, ctype)}
        )
    replies = await asyncio.gather(*(r.wait_followups(1, timeout=120) for r in records.values()))
    for (name, record), (reply,) in zip(records.items(), replies, strict=True):
        deferral = await record.wait_response()
        code = EXPECTED.get(name, "unknown")
        if code is None:
            assert not reply.ephemeral, name
            ((filename, data),) = reply.files.items()
            if name == "animated.gif":  # a clip: every frame, as a GIF again (it fits)
                assert filename == "anime-animated.gif"
                with Image.open(io.BytesIO(data)) as im:
                    assert im.n_frames > 1
                continue
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                assert min(im.size) >= 1, name
            if name == "alpha_rgba.png":  # transparency survives: PNG with alpha
                assert data[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert reply.ephemeral and reply.files == {}, name
            assert record.deleted_message_ids == [deferral.message_id], name
            if code != "unknown":
                assert reply.content == expected_text(code, bot), name
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    summary = await bot.runtime.db.stats.summary(days=1)
    assert summary.total == len(edge_files)  # one usage row per request
    assert summary.ok == sum(1 for name in edge_files if EXPECTED.get(name, "x") is None)
