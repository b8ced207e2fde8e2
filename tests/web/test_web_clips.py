"""Clips through the web API: `/api/convert` answers a playable MP4 of the right size, length
and frame count (with the audio), `/api/progress/<token>` counts frames while it runs, and
bad clips get the same translated JSON errors as photos."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp.test_utils import TestClient

from core.errors import ImageTooLarge
from i18n import error_message
from tests.clipgen import make_animation, make_mp4, probe_output
from tests.web.helpers import MakeClient

Client = TestClient[Any, Any]
TOKEN = "0123456789abcdef0123456789abcdef"


def clip_form(data: bytes, filename: str, **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("image", data, filename=filename, content_type="video/mp4")
    for name, value in fields.items():
        form.add_field(name, value)
    return form


async def test_a_clip_comes_back_as_a_playable_mp4_with_its_audio(
    client: Client, tmp_path: Path, photos_dir: Path
) -> None:
    await client.get("/")
    src = make_mp4(
        tmp_path / "a.mp4", photos_dir / "street_shopfront.jpg", seconds=1.5, fps=12, audio=True
    )
    response = await client.post(
        "/api/convert", data=clip_form(src.read_bytes(), "a.mp4", style="hayao")
    )
    assert response.status == 200, await response.text()
    assert response.content_type == "video/mp4"
    info = probe_output(await response.read())
    assert (info["codec"], info["width"], info["height"], info["frames"]) == ("h264", 320, 240, 18)
    assert abs(float(info["duration_s"]) - 1.5) < 0.1  # type: ignore[arg-type]
    assert info["audio"] == "aac"
    assert response.headers["X-Animebot-Frames"] == "18"
    assert response.headers["X-Animebot-Audio"] == "1"
    assert "anime_hayao.mp4" in response.headers["Content-Disposition"]


async def test_an_animated_gif_is_a_clip_too(client: Client, photos_dir: Path) -> None:
    await client.get("/")
    gif = make_animation(photos_dir / "street_shopfront.jpg", frames=8, delay_ms=100)
    response = await client.post("/api/convert", data=clip_form(gif, "a.gif"))
    assert response.status == 200, await response.text()
    info = probe_output(await response.read())
    assert info["frames"] == 8 and info["audio"] is None


async def test_progress_counts_frames_for_its_visitor_only(
    make_client: MakeClient, tmp_path: Path, photos_dir: Path
) -> None:
    client = await make_client(workers=1, clip_photo_pixels=320 * 240)
    await client.get("/")
    src = make_mp4(tmp_path / "a.mp4", photos_dir / "street_shopfront.jpg", seconds=2, fps=12)
    post = asyncio.ensure_future(
        client.post("/api/convert", data=clip_form(src.read_bytes(), "a.mp4", progress=TOKEN))
    )
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + 120
    while not post.done() and time.monotonic() < deadline:
        answer = await client.get(f"/api/progress/{TOKEN}")
        if answer.status == 200:
            body = await answer.json()
            seen.append((body["done"], body["total"]))
            # someone else (no cookie) cannot read it
            async with aiohttp.ClientSession() as stranger:
                other = await stranger.get(client.make_url(f"/api/progress/{TOKEN}"))
                assert other.status == 404
        await asyncio.sleep(0.05)  # polling with a deadline, like the page
    response = await post
    assert response.status == 200
    assert seen and all(total == 24 and 0 < done <= 24 for done, total in seen)
    assert (await client.get(f"/api/progress/{TOKEN}")).status == 404  # gone once answered


async def test_a_long_clip_is_cut_with_a_translated_note(
    make_client: MakeClient, tmp_path: Path, photos_dir: Path
) -> None:
    client = await make_client(clip_max_seconds=1.0)
    await client.get("/")
    src = make_mp4(
        tmp_path / "a.mp4",
        photos_dir / "street_shopfront.jpg",
        seconds=3,
        fps=8,
        width=160,
        height=120,
    )
    response = await client.post(
        "/api/convert", data=clip_form(src.read_bytes(), "a.mp4", lang="ru")
    )
    assert response.status == 200
    assert probe_output(await response.read())["frames"] == 8
    assert "первые 1 с" in unquote(response.headers["X-Animebot-Notes-Text"])


async def test_a_damaged_clip_is_a_translated_400(
    client: Client, tmp_path: Path, photos_dir: Path
) -> None:
    await client.get("/")
    src = make_mp4(tmp_path / "a.mp4", photos_dir / "street_shopfront.jpg", seconds=1, fps=8)
    cut = src.read_bytes()[: len(src.read_bytes()) // 2]  # the index (at the end) is gone
    response = await client.post("/api/convert", data=clip_form(cut, "a.mp4", lang="en"))
    assert response.status == 400
    body = await response.json()
    assert body["code"] in ("damaged_video", "not_video")
    assert body["message"].startswith(("That video is damaged", "I cannot read that file"))


async def test_clips_and_photos_each_have_their_own_upload_limit(
    make_client: MakeClient, tmp_path: Path, photos_dir: Path
) -> None:
    """A clip larger than the photo limit is taken (ANIMEBOT_CLIP_MAX_MB is larger); a clip
    over its own limit is refused with that limit in the translated message, and the page
    tells both limits to its script."""
    photo = photos_dir / "street_shopfront.jpg"
    clip = make_mp4(tmp_path / "c.mp4", photo, seconds=2, fps=12).read_bytes()
    photo_limit = len(clip) // 2
    client = await make_client(max_upload_mb=photo_limit / 1024 / 1024, clip_max_mb=3)
    page = await (await client.get("/")).text()
    assert f'"clipMaxBytes":{3 * 1024 * 1024}' in page.replace(" ", "")
    response = await client.post("/api/convert", data=clip_form(clip, "c.mp4"))
    assert response.status == 200, await response.text()
    assert probe_output(await response.read())["frames"] == 24

    too_big = clip[:8] + bytes(3 * 1024 * 1024)  # an MP4 header, then more than 3 MB
    response = await client.post("/api/convert", data=clip_form(too_big, "b.mp4"))
    assert response.status == 413
    body = await response.json()
    limit = ImageTooLarge("clip", limit=3 * 1024 * 1024)
    assert (body["code"], body["message"]) == ("too_large", error_message(limit, "en"))
    assert "3 MB" in body["message"]
    photo_bytes = photo.read_bytes()
    assert len(photo_bytes) > photo_limit
    response = await client.post("/api/convert", data=clip_form(photo_bytes, "p.jpg"))
    assert response.status == 413  # a photo is still held to the photo limit
