"""Clips on the shared queue, as an operator runs it: `animebot serve --role front` (the
Telegram bot polling the stand-in, and the web page), one `animebot worker`, a real
redis-server and one SQLite file. The worker converts the clip, not the front end: the
worker's per-job log line names the request and its /metrics counts the conversion, the front
end's counts none. Telegram: the worker edits the status message with the percentage of frames
done and answers with the video. Web: the page's progress (`/api/progress/<token>`) comes from
the worker through Redis while the POST waits, and the MP4 comes back through Redis.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import aiohttp
import pytest

from i18n import t
from models.pairs import PROJECT_ROOT
from tests.clipgen import make_mp4, probe_output
from tests.queue.redis_server import RedisProcess, free_port
from tests.queue.test_queue_cli import Proc, conversions, ready
from tests.standins.telegram_api import TelegramStandIn, make_user
from tests.standins.telegram_fixtures import telegram_standin
from tests.telegram.helpers import matches, replies_to

__all__ = ["telegram_standin"]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")

TOKEN = "clip-progress-token-0123456789"
FRAMES = 36


@pytest.fixture
def clip(photos_dir: Path, tmp_path: Path) -> bytes:
    # Long enough (36 frames of 640x480) that the worker's status message, edited at most once
    # a second, shows a step between 0% and the video.
    path = make_mp4(
        tmp_path / "v.mp4",
        photos_dir / "street_shopfront.jpg",
        seconds=3,
        fps=12,
        width=640,
        height=480,
        audio=True,
    )
    return path.read_bytes()


def usage_rows(db: Path, platform: str) -> list[tuple[str, str]]:
    query = "SELECT request_id, status FROM usage WHERE platform = ?"
    with sqlite3.connect(db) as conn:
        return [(r[0], r[1]) for r in conn.execute(query, (platform,)).fetchall()]


async def test_clips_are_converted_by_a_worker_with_progress(
    redis_server: RedisProcess, tmp_path: Path, telegram_standin: TelegramStandIn, clip: bytes
) -> None:
    api = telegram_standin
    data = tmp_path / "data"
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "ANIMEBOT_QUEUE": redis_server.url,
        "ANIMEBOT_DATA": str(data),
        "ANIMEBOT_WORKERS": "1",
        "ANIMEBOT_RATE_BURST": "0",
        "ANIMEBOT_DAILY_QUOTA": "0",
        # two 640x480 frames a fair-queue turn: eighteen progress reports for 36 frames
        "ANIMEBOT_CLIP_PHOTO_PIXELS": str(640 * 480 * 2),
        "TELEGRAM_TOKEN": api.token,
        "TELEGRAM_API_URL": api.base_url,
    }
    front_port, worker_port = free_port(), free_port()
    front = Proc(["serve", "--role", "front", "--port", str(front_port)], env, tmp_path / "f.log")
    worker = Proc(["worker", "--port", str(worker_port)], env, tmp_path / "w.log")
    base = f"http://127.0.0.1:{front_port}"
    try:
        jar = aiohttp.CookieJar(unsafe=True)  # the visitor cookie of 127.0.0.1
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            for port in (front_port, worker_port):
                await ready(session, f"http://127.0.0.1:{port}/readyz")

            # Telegram: a video, answered by the worker, the percentage counting up meanwhile
            alice = make_user(8100, language_code="en")
            sent = await api.send_video(alice, None, clip)
            (reply,) = await api.wait_for("sendVideo", replies_to(sent), timeout=180)
            assert reply.ok, reply.description
            info = probe_output(reply.files["video"])
            assert (info["codec"], info["frames"], info["audio"]) == ("h264", FRAMES, "aac")
            shown = [c.params["text"] for c in api.calls_to("sendMessage")] + [
                c.params["text"] for c in api.calls_to("editMessageText")
            ]
            assert shown[0] == t("clip.progress", "en", percent=0)
            assert all(matches("clip.progress", "en", text) for text in shown)
            assert len(set(shown)) >= 2, shown  # 0%, then at least one step
            await api.wait_for("deleteMessage", timeout=30)  # the status message goes
            assert api.sent_messages(alice["id"]) == [
                api.message(alice["id"], reply.result["message_id"])
            ]

            # Web: the progress the worker writes to Redis, read by the front end's page
            await session.get(f"{base}/")  # the visitor cookie
            form = aiohttp.FormData()
            form.add_field("image", clip, filename="a.mp4", content_type="video/mp4")
            form.add_field("progress", TOKEN)
            post = asyncio.ensure_future(session.post(f"{base}/api/convert", data=form))
            seen: list[tuple[int, int]] = []
            async with asyncio.timeout(180):
                while not post.done():
                    async with session.get(f"{base}/api/progress/{TOKEN}") as answer:
                        if answer.status == 200:
                            body = await answer.json()
                            seen.append((body["done"], body["total"]))
                    await asyncio.sleep(0.05)  # polling with a deadline, like the page
            response = await post
            assert response.status == 200, await response.text()
            assert response.headers["X-Animebot-Frames"] == str(FRAMES)
            assert probe_output(await response.read())["frames"] == FRAMES
            assert seen and all(total == FRAMES and 0 < done <= FRAMES for done, total in seen)

            worked = await conversions(session, worker_port)
            fronted = await conversions(session, front_port)
    finally:
        codes = [front.stop(), worker.stop()]
    assert codes == [0, 0]
    assert (worked, fronted) == (2, 0)  # both clips converted by the worker process
    db = data / "animebot.sqlite3"
    ((tg_request, tg_status),) = usage_rows(db, "telegram")
    ((web_request, web_status),) = usage_rows(db, "web")
    assert (tg_status, web_status) == ("ok", "ok")
    worker_log = (tmp_path / "w.log").read_text()
    front_log = (tmp_path / "f.log").read_text()
    for request_id in (tg_request, web_request):
        assert f"job {request_id}: run 1 finished" in worker_log
        assert request_id not in front_log
