"""Nothing accepted is lost (issue 15, items 1-3): the bot runs in a child process against the
Telegram stand-in of this process and is killed (SIGKILL) or stopped (SIGTERM with a short
grace and a backlog), then started again.

- After `kill -9`, every photo Telegram had already forgotten (confirmed by the getUpdates
  offset) is answered by the next start, replying to its message, and the "in the queue"
  messages the dead process left are gone.
- A SIGTERM with more work than the grace: the process exits within the grace plus a small
  bound; every person has exactly one message (the result, or "restarting, your photo is
  saved"); no internal error is logged or shown; the next start finishes the rest.
- A job that crashed the process twice (or is a day old) is given up with one message.
- A chat that answers the first chat action with 403 is not converted (item 5).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.telegram import TelegramFrontEnd
from i18n import t
from service.jobs import MAX_ATTEMPTS
from service.runtime import Runtime
from storage import PendingJob
from tests.standins.telegram_api import Call, TelegramStandIn, make_user, private_chat
from tests.telegram.helpers import (
    ALICE,
    FAST,
    StartBot,
    matches,
    replies_to,
    synthetic_jpeg,
)
from tests.telegram.test_telegram_robustness import all_workers_busy

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals are POSIX")

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = 20
LANGS = ("en", "ru", "zh")


def child_env(api: TelegramStandIn, data: Path, **settings: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANIMEBOT_", "TELEGRAM_", "DISCORD_"))
    }
    env.update(
        PYTHONPATH=str(ROOT),
        ANIMEBOT_DATA=str(data),
        ANIMEBOT_RATE_BURST="0",
        ANIMEBOT_DAILY_QUOTA="0",
        ANIMEBOT_LOG_LEVEL="INFO",
        TELEGRAM_TOKEN=api.token,
        TELEGRAM_API_URL=api.base_url,
    )
    env.update(settings)
    return env


@contextlib.asynccontextmanager
async def child(
    args: list[str], env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A bot process; killed at exit if the test did not end it."""
    with log.open("a") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def started(api: TelegramStandIn, since: int) -> None:
    """The new process polls (its first getUpdates; a dead one's parked poll does not count)."""
    await api.wait_for("getUpdates", since=since, timeout=120)


def jobs_in(data: Path) -> list[dict[str, Any]]:
    uri = f"file:{data / 'animebot.sqlite3'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM jobs ORDER BY created_at")]


def status_id(job: dict[str, Any]) -> int | None:
    value = json.loads(job["reply"]).get("status_message_id")
    return None if value is None else int(value)


def usage_in(data: Path) -> list[tuple[str, str | None]]:
    uri = f"file:{data / 'animebot.sqlite3'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        return [(str(s), k) for s, k in conn.execute("SELECT status, error_kind FROM usage")]


async def until(predicate: Callable[[], bool], what: str, limit_s: float = 60) -> None:
    """Poll `predicate` (it reads another process's database) until it holds or time is up."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def queued_status(call: Call) -> bool:
    return call.ok and any(
        matches("tg.status.queued", lang, call.params.get("text")) for lang in LANGS
    )


async def send_photos(
    api: TelegramStandIn, width: int, height: int
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    people = [make_user(7000 + n, language_code=LANGS[n % 3]) for n in range(PEOPLE)]
    return [
        (person, await api.send_photo(person, None, synthetic_jpeg(width, height, seed=n)))
        for n, person in enumerate(people)
    ]


def log_problems(log: Path) -> list[str]:
    return [
        line
        for line in log.read_text().splitlines()
        if "Traceback" in line or " ERROR " in line or "CRITICAL" in line
    ]


async def test_kill_9_after_the_updates_were_confirmed_loses_no_photo(
    telegram_standin: TelegramStandIn, tmp_path: Path
) -> None:
    api, data, log = telegram_standin, tmp_path / "data", tmp_path / "bot.log"
    env = child_env(api, data, ANIMEBOT_WORKERS="1")
    async with child(["-m", "tests.telegram.bot_child", "--hold"], env, log) as first:
        await started(api, 0)
        sent = await send_photos(api, 320, 240)
        # The first photo is stuck in the engine; the other 19 wait, each with a status message
        # whose id the job row keeps.
        statuses = await api.wait_for("sendMessage", queued_status, count=PEOPLE - 1, timeout=120)
        await until(lambda: api.pending_updates == 0, "Telegram to forget the updates")
        await until(
            lambda: sum(status_id(j) is not None for j in jobs_in(data)) == PEOPLE - 1,
            "the status message ids in the job rows",
        )
        assert len(jobs_in(data)) == PEOPLE
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
    assert not api.calls_to("sendPhoto")  # nobody had an answer

    mark = api.mark()
    async with child(["-m", "bot.telegram"], env, log) as second:
        await started(api, mark)
        for _person, message in sent:
            await api.wait_for("sendPhoto", replies_to(message), since=mark, timeout=180)
        await api.wait_for("deleteMessage", since=mark, count=PEOPLE - 1, timeout=60)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 60) == 0

    stale = {(s.chat_id, s.result["message_id"]) for s in statuses}
    assert stale <= set(api.deleted_messages)  # no "in the queue" left behind
    for person, message in sent:
        replies = [c for c in api.calls_to("sendPhoto") if replies_to(message)(c)]
        assert len(replies) == 1 and replies[0].ok, person
        shown = api.sent_messages(person["id"])
        assert [m["message_id"] for m in shown] == [replies[0].result["message_id"]], person
    assert jobs_in(data) == []  # answered: the raw ids are gone
    assert usage_in(data) == [("ok", None)] * PEOPLE
    assert log_problems(log) == []


async def test_sigterm_with_a_backlog_exits_in_time_and_tells_everyone_once(
    telegram_standin: TelegramStandIn, tmp_path: Path
) -> None:
    api, data, log = telegram_standin, tmp_path / "data", tmp_path / "bot.log"
    grace = 1.0
    env = child_env(api, data, ANIMEBOT_WORKERS="1", ANIMEBOT_SHUTDOWN_GRACE_S=str(grace))
    async with child(["-m", "bot.telegram"], env, log) as bot:
        await started(api, 0)
        sent = await send_photos(api, 1280, 960)  # about half a second each, one at a time
        await api.wait_for("sendMessage", queued_status, count=PEOPLE // 2, timeout=120)
        began = time.monotonic()
        bot.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.wait(), 60) == 0
        took = time.monotonic() - began
    assert took < grace + 10, f"exited {took:.1f} s after SIGTERM with a {grace} s grace"

    deferred: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for person, message in sent:
        lang = person["language_code"]
        (shown,) = api.sent_messages(person["id"])  # exactly one message each
        if "photo" in shown:
            assert shown["reply_to_message"]["message_id"] == message["message_id"]
        else:
            assert shown["text"] == t("job.deferred", lang), shown
            deferred.append((person, message))
    texts = [
        c.params.get("text") for c in api.calls if c.method in {"sendMessage", "editMessageText"}
    ]
    for key in ("error.internal", "error.busy", "error.shutting_down"):
        assert not any(matches(key, lang, x) for x in texts for lang in LANGS), key
    assert deferred, "the backlog outlasted the grace, so some photos must have been put off"
    assert len(jobs_in(data)) == len(deferred)
    assert log_problems(log) == []

    mark = api.mark()
    async with child(["-m", "bot.telegram"], env, log) as again:
        await started(api, mark)
        for _person, message in deferred:
            await api.wait_for("sendPhoto", replies_to(message), since=mark, timeout=180)
        await api.wait_for("deleteMessage", since=mark, count=len(deferred), timeout=60)
        again.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(again.wait(), 60) == 0
    for person, _message in sent:
        (shown,) = api.sent_messages(person["id"])
        assert "photo" in shown, person  # the notice made way for the result
    assert jobs_in(data) == []
    outcomes = usage_in(data)
    assert outcomes.count(("ok", None)) == PEOPLE
    assert outcomes.count(("refused", "shutting_down")) == len(deferred)
    assert len(outcomes) == PEOPLE + len(deferred)
    assert log_problems(log) == []


async def test_a_403_on_the_chat_action_stops_the_job_before_converting(
    start_bot: StartBot,
) -> None:
    harness = await start_bot()
    api, service = harness.api, harness.runtime.service
    conversions: list[object] = []
    engine_convert = harness.runtime.engine.convert

    async def counted(*args: Any, **kwargs: Any) -> Any:
        conversions.append(args)
        return await engine_convert(*args, **kwargs)

    harness.runtime.engine.convert = counted  # type: ignore[method-assign]
    api.fail_next("sendChatAction", 403, description="Forbidden: bot was blocked by the user")
    sent = await api.send_photo(ALICE, None, synthetic_jpeg(seed=21))
    await api.wait_for("sendChatAction", lambda c: c.chat_id == ALICE["id"])
    await harness.settled()
    assert conversions == []  # nothing converted for a chat that refuses the bot
    assert [c.status for c in api.calls_to("sendChatAction")] == [403]  # and no retry
    assert not api.calls_to("sendPhoto") and not api.calls_to("sendMessage")
    rows = await harness.rows_of(ALICE)
    assert [(r["status"], r["error_kind"]) for r in rows] == [("error", "delivery_blocked")]
    assert await service.jobs.pending("telegram") == []  # answered (by the refusal): gone
    assert sent["message_id"]  # the photo itself was taken in


async def test_jobs_tried_twice_or_a_day_old_are_given_up_with_one_message(
    telegram_standin: TelegramStandIn, make_runtime: Callable[..., Awaitable[Runtime]]
) -> None:
    api = telegram_standin
    runtime = await make_runtime(telegram_token=api.token, telegram_api_url=api.base_url, workers=1)
    jobs = runtime.db.jobs
    people = [make_user(8100 + n, language_code=lang) for n, lang in enumerate(("ru", "zh"))]
    for person in people:
        api.register_chat(private_chat(person))

    def job(person: dict[str, Any], **kw: Any) -> PendingJob:
        return PendingJob(
            id=f"job-{person['id']}",
            platform="telegram",
            user_id=str(person["id"]),
            user_hash=runtime.db.hash_id("telegram", person["id"]),
            chat_id=str(person["id"]),
            lang=person["language_code"],
            source={"kind": "photo", "file_id": "never-fetched", "file_size": 1000},
            reply={"reply_to": 5},
            **kw,
        )

    await jobs.add(job(people[0], attempts=MAX_ATTEMPTS))  # crashed the process twice
    await jobs.add(job(people[1], created_at=int((time.time() - 25 * 3600) * 1000)))
    front = TelegramFrontEnd(runtime, FAST)
    api.resume_long_polls()
    await front.start()
    try:
        for person in people:
            (said,) = await api.wait_for("sendMessage", lambda c, p=person: c.chat_id == p["id"])
            assert said.params["text"] == t("job.gave_up", person["language_code"])
            assert said.reply_to_message_id == 5
        await until(lambda: not jobs_in(runtime.settings.data_dir), "the jobs to be dropped")
    finally:
        await front.stop()
    assert not api.calls_to("getFile")  # given up: not tried a third time
    kinds = [k for _, k in usage_in(runtime.settings.data_dir)]
    assert kinds == ["gave_up", "gave_up"]


async def test_a_request_delivered_again_is_answered_once(start_bot: StartBot) -> None:
    """Telegram delivers an update again when the process died before confirming it, while
    its job was already stored (and is resumed): the redelivery must not answer it twice."""
    harness = await start_bot()
    api = harness.api
    release = api.hold_next("getFile")  # the first delivery's job stays pending
    sent = await api.send_photo(ALICE, None, synthetic_jpeg(seed=33))
    await api.wait_for("getFile")
    await api.push_update({"message": sent})  # the same message, delivered again
    await until(lambda: api.pending_updates == 0, "the redelivery to be taken in")
    release.set()
    await api.wait_for("sendPhoto", replies_to(sent))
    await harness.settled()
    assert len([c for c in api.calls_to("sendPhoto") if replies_to(sent)(c)]) == 1
    assert [r["status"] for r in await harness.rows_of(ALICE)] == ["ok"]  # one request


async def test_a_job_cut_short_after_its_result_is_not_answered_again(
    start_bot: StartBot,
) -> None:
    """The stop's last resort cancels what still runs; a job whose result is already out must
    then be finished (deleted), not kept to be answered a second time after the restart."""
    harness = await start_bot(workers=1)
    api = harness.api
    held_delete = api.hold_next("deleteMessage")  # the status message goes last: park it
    async with all_workers_busy(harness.runtime) as release:
        sent = await api.send_photo(ALICE, None, synthetic_jpeg(seed=35))
        await api.wait_for("sendMessage", replies_to(sent))  # waiting, with a status message
        release.set()
        await api.wait_for("sendPhoto", replies_to(sent))  # the result is out
    # The stand-in has taken the held deleteMessage off its list: the job is in its cleanup.
    await until(lambda: not api._holds.get("deleteMessage"), "the status delete to be parked")
    running = list(harness.runtime.runner.pending_tasks("telegram"))  # the job, in the runner
    assert running
    for task in running:  # what the stop does to jobs still running past the grace
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    held_delete.set()
    assert await harness.runtime.service.jobs.pending("telegram") == []
    texts = [c.params.get("text") for c in api.calls if c.method == "editMessageText"]
    assert t("job.deferred", "en") not in texts  # and nobody is told it comes later
