"""Deferred Discord interactions survive a crash (issue 15, item 1): the bot runs in a child
process against the Discord stand-in of this process, is killed with SIGKILL while /anime
interactions wait ("thinking…"), and the next start posts their pictures through each
interaction's follow-up webhook. An interaction whose token has expired (15 minutes) is
dropped with a recorded failure; a job already tried twice is given up with one message.
Interactions arriving while the bot stops are refused with one usage row each (item 3)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.discord import DiscordFrontEnd
from i18n import t
from service.jobs import MAX_ATTEMPTS
from tests.standins.discord_api import DiscordStandIn, InteractionRecord
from tests.telegram.helpers import synthetic_jpeg

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals are POSIX")

ROOT = Path(__file__).resolve().parents[2]
StartBot = Callable[..., Any]


def child_env(standin: DiscordStandIn, data: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANIMEBOT_", "TELEGRAM_", "DISCORD_"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        ANIMEBOT_DATA=str(data),
        ANIMEBOT_WORKERS="1",
        ANIMEBOT_RATE_BURST="0",
        ANIMEBOT_DAILY_QUOTA="0",
        ANIMEBOT_LOG_LEVEL="INFO",
        DISCORD_TOKEN=standin.token,
    )
    return env


@contextlib.asynccontextmanager
async def child(
    standin: DiscordStandIn, data: Path, log: Path, *, hold: bool
) -> AsyncIterator[asyncio.subprocess.Process]:
    args = ["-m", "tests.discord.bot_child", standin.api_base, str(standin.gateway_url)]
    with log.open("a") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            *(["--hold"] if hold else []),
            cwd=ROOT,
            env=child_env(standin, data),
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        assert line.strip() == b"ready", tail(log)
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def tail(log: Path) -> str:
    return log.read_text()[-2000:]


def full(log: Path) -> str:
    return log.read_text()


def db_rows(data: Path, sql: str) -> list[dict[str, Any]]:
    uri = f"file:{data / 'animebot.sqlite3'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql)]


def db_write(data: Path, sql: str, params: tuple[Any, ...]) -> None:
    with contextlib.closing(sqlite3.connect(data / "animebot.sqlite3")) as conn, conn:
        conn.execute(sql, params)


async def until(predicate: Callable[[], bool], what: str, limit_s: float = 60) -> None:
    """Poll `predicate` (it reads another process's database) until it holds or time is up."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def job_of(data: Path, record: InteractionRecord) -> dict[str, Any]:
    (job,) = [
        j
        for j in db_rows(data, "SELECT * FROM jobs")
        if json.loads(j["reply"])["token"] == record.token
    ]
    return job


async def test_kill_9_then_restart_posts_through_the_interaction_webhook(
    discord_standin: DiscordStandIn, tmp_path: Path
) -> None:
    standin, data, log = discord_standin, tmp_path / "data", tmp_path / "bot.log"
    async with child(standin, data, log, hold=True) as first:
        records = [
            await standin.invoke_slash(
                "anime",
                attachments={"image": (f"p{n}.jpg", synthetic_jpeg(seed=40 + n), "image/jpeg")},
                user_id=5_000 + n,
                locale="ru" if n % 2 else "en-US",
            )
            for n in range(4)
        ]
        for record in records:
            deferral = await record.wait_response(timeout=60)
            assert deferral.thinking and not deferral.ephemeral
        await until(lambda: len(db_rows(data, "SELECT id FROM jobs")) == 4, "4 stored jobs")
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
    assert all(not r.followups for r in records)  # nobody had an answer

    resumed, gave_up, expired = records[:2], records[2], records[3]
    # As if the third had crashed the process twice already, and the fourth were 15 min old.
    db_write(
        data,
        "UPDATE jobs SET attempts = ? WHERE id = ?",
        (MAX_ATTEMPTS, job_of(data, gave_up)["id"]),
    )
    old_ms = int((time.time() - 15 * 60) * 1000)
    db_write(
        data, "UPDATE jobs SET created_at = ? WHERE id = ?", (old_ms, job_of(data, expired)["id"])
    )

    async with child(standin, data, log, hold=False) as second:
        for record in resumed:
            (reply,) = await record.wait_followups(1, timeout=120)
            assert not reply.ephemeral and len(reply.files) == 1  # replaced "thinking…"
            assert record.deleted_message_ids == []
        (notice,) = await gave_up.wait_followups(1, timeout=60)
        assert notice.ephemeral and notice.content == t("job.gave_up", "en")
        assert gave_up.deleted_message_ids == [gave_up.original_message_id]  # no "thinking"
        await until(lambda: not db_rows(data, "SELECT id FROM jobs"), "every job finished")
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 60) == 0
    assert expired.followups == []  # its token can no longer answer: nothing sent
    outcomes = sorted(
        (r["status"], r["error_kind"] or "")
        for r in db_rows(data, "SELECT status, error_kind FROM usage")
    )
    assert outcomes == [("error", "expired"), ("error", "gave_up"), ("ok", ""), ("ok", "")]
    assert "Traceback" not in full(log)


async def test_an_interaction_arriving_while_stopping_is_refused_with_a_usage_row(
    start_bot: StartBot, discord_standin: DiscordStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot: DiscordFrontEnd = await start_bot()
    service = bot.runtime.service
    started, release = asyncio.Event(), asyncio.Event()
    convert = service.convert

    async def held(request: Any) -> Any:
        started.set()
        await release.wait()
        return await convert(request)

    monkeypatch.setattr(service, "convert", held)
    busy = await discord_standin.invoke_slash(
        "anime", attachments={"image": ("p.jpg", synthetic_jpeg(seed=1), "image/jpeg")}
    )
    async with asyncio.timeout(30):
        await started.wait()
    stopping = asyncio.create_task(bot.stop())
    async with asyncio.timeout(10):
        await bot.stopping.wait()
    late = await discord_standin.invoke_slash(
        "anime",
        attachments={"image": ("q.jpg", synthetic_jpeg(seed=2), "image/jpeg")},
        user_id=777,
        locale="zh-CN",
    )
    refusal = await late.wait_response()
    assert refusal.ephemeral and refusal.content == t("dc.shutting_down", "zh")
    release.set()
    await busy.wait_followups(1, timeout=30)
    async with asyncio.timeout(30):
        await stopping
    rows = db_rows(bot.runtime.settings.database.parent, "SELECT * FROM usage")
    late_rows = [r for r in rows if r["user_hash"] == bot.runtime.db.hash_id("discord", 777)]
    assert [(r["status"], r["error_kind"]) for r in late_rows] == [("refused", "shutting_down")]
