"""An accepted clip is a durable job like a photo: the bot runs in a child process against the
Telegram stand-in of this process, holding the clip after its first chunk of frames
(`bot_child --hold-clip`), and is killed (SIGKILL) or stopped (SIGTERM with a short grace).
The next start answers the clip once, as a playable video of the right frame count, and the
status message the first process left ("Animating your clip… N%", or the "restarting" notice)
is gone or made way for the video.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from i18n import t
from tests.clipgen import make_mp4, probe_output
from tests.standins.telegram_api import Call, TelegramStandIn, private_chat
from tests.telegram.helpers import ALICE, matches, replies_to
from tests.telegram.test_telegram_durable import (
    child,
    child_env,
    jobs_in,
    log_problems,
    started,
    status_id,
    until,
    usage_in,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals are POSIX")

FRAMES = 18  # 1.5 s at 12 fps
# Two 320x240 frames a fair-queue turn (one worker): nine chunks, so a held clip is mid-way.
CHUNK_PIXELS = str(320 * 240 * 2)


@pytest.fixture
def clip(photos_dir: Path, tmp_path: Path) -> bytes:
    path = make_mp4(
        tmp_path / "v.mp4", photos_dir / "street_shopfront.jpg", seconds=1.5, fps=12, audio=True
    )
    return path.read_bytes()


def some_progress(call: Call) -> bool:
    """An edit of the status message to a percentage past 0: frames were converted."""
    text = call.params.get("text")
    return (
        call.ok
        and matches("clip.progress", "en", text)
        and text != t("clip.progress", "en", percent=0)
    )


async def restart_until_answered(
    api: TelegramStandIn, env: dict[str, str], log: Path, sent: dict[str, object]
) -> None:
    """A fresh start of the bot, stopped cleanly once it has answered `sent` with a video."""
    mark = api.mark()
    async with child(["-m", "bot.telegram"], env, log) as second:
        await started(api, mark)
        await api.wait_for("sendVideo", replies_to(sent), since=mark, timeout=180)
        await api.wait_for("deleteMessage", since=mark, timeout=60)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 60) == 0


def assert_one_video(api: TelegramStandIn, sent: dict[str, object]) -> None:
    videos = [c for c in api.calls_to("sendVideo") if replies_to(sent)(c)]
    assert len(videos) == 1 and videos[0].ok, videos
    info = probe_output(videos[0].files["video"])
    assert (info["codec"], info["frames"], info["audio"]) == ("h264", FRAMES, "aac")
    # all the person sees is the video: the status message went, or made way for it
    shown = api.sent_messages(ALICE["id"])
    assert [m["message_id"] for m in shown] == [videos[0].result["message_id"]], shown


async def test_kill_9_in_the_middle_of_a_clip_loses_it_not(
    telegram_standin: TelegramStandIn, tmp_path: Path, clip: bytes
) -> None:
    api, data, log = telegram_standin, tmp_path / "data", tmp_path / "bot.log"
    env = child_env(api, data, ANIMEBOT_WORKERS="1", ANIMEBOT_CLIP_PHOTO_PIXELS=CHUNK_PIXELS)
    async with child(["-m", "tests.telegram.bot_child", "--hold-clip"], env, log) as first:
        await started(api, 0)
        sent = await api.send_video(ALICE, private_chat(ALICE), clip)
        (progress,) = await api.wait_for("editMessageText", some_progress, timeout=120)
        await until(lambda: api.pending_updates == 0, "Telegram to forget the update")
        status = int(progress.params["message_id"])
        await until(
            lambda: [status_id(j) for j in jobs_in(data)] == [status],
            "the status message's id in the clip's job row",
        )
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
    assert not api.calls_to("sendVideo")  # no answer yet
    assert len(jobs_in(data)) == 1

    await restart_until_answered(api, env, log, sent)

    assert (ALICE["id"], status) in set(api.deleted_messages)  # the dead run's "N%" is gone
    assert_one_video(api, sent)
    assert jobs_in(data) == []  # answered: the raw ids are gone
    assert usage_in(data) == [("ok", None)]  # the killed run wrote none
    assert log_problems(log) == []


async def test_sigterm_puts_a_running_clip_off_and_the_next_start_answers_it(
    telegram_standin: TelegramStandIn, tmp_path: Path, clip: bytes
) -> None:
    api, data, log = telegram_standin, tmp_path / "data", tmp_path / "bot.log"
    env = child_env(
        api,
        data,
        ANIMEBOT_WORKERS="1",
        ANIMEBOT_CLIP_PHOTO_PIXELS=CHUNK_PIXELS,
        ANIMEBOT_SHUTDOWN_GRACE_S="1",
    )
    async with child(["-m", "tests.telegram.bot_child", "--hold-clip"], env, log) as first:
        await started(api, 0)
        sent = await api.send_video(ALICE, private_chat(ALICE), clip)
        await api.wait_for("editMessageText", some_progress, timeout=120)
        first.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first.wait(), 60) == 0
    (notice,) = api.sent_messages(ALICE["id"])  # one message: done after the restart
    assert notice["text"] == t("job.deferred", "en")
    assert len(jobs_in(data)) == 1
    assert usage_in(data) == [("refused", "shutting_down")]

    await restart_until_answered(api, env, log, sent)

    assert_one_video(api, sent)
    assert jobs_in(data) == []
    assert usage_in(data) == [("refused", "shutting_down"), ("ok", None)]
    assert log_problems(log) == []
