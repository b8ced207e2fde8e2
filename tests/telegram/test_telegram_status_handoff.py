"""The "in the queue" message when the front end and the worker are different processes.

With the shared queue the front end posts a job's queue position after the job is on the
queue, so a worker may already be running it: the worker read the durable row before the
front end wrote the status message's id into it, or even finished (row deleted) before. The
message must go with the answer all the same, and exactly one side deletes it: the worker
when the row named it at the end, else the front end itself.

Two outlets of one runner stand for the two processes: they share nothing but the durable row
(each `outlet_for` builds its own status message), as a front end and a worker share only the
database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bot.telegram.conversion import photo_job
from bot.telegram.inputs import Media
from bot.telegram.worker import TelegramWorkerOutlet
from service.fairqueue import QueueStatus
from service.lifecycle import Job, JobRunner
from service.runtime import Runtime
from tests.service.helpers import distinct_png
from tests.standins.telegram_api import TelegramStandIn, make_user
from tests.telegram.helpers import FAST

PERSON = make_user(5151, language_code="en")


async def accepted_photo(api: TelegramStandIn, runner: JobRunner, seed: int) -> Job:
    """A photo sent to the bot, accepted by the front end (durable row), not yet queued."""
    message = await api.send_photo(PERSON, None, distinct_png(seed, side=160))
    largest = message["photo"][-1]
    chat_id = int(message["chat"]["id"])
    job = photo_job(
        runner.job_key("telegram", f"{chat_id}:{message['message_id']}"),
        chat_id=chat_id,
        user_id=int(PERSON["id"]),
        lang="en",
        media=Media("photo", largest["file_id"], largest.get("file_size")),
        reply_to=int(message["message_id"]),
    )
    stored = await runner.accept(job, dispatch=False)
    assert stored is not None and stored.durable
    return stored


def status_messages(api: TelegramStandIn, job: Job) -> list[dict[str, Any]]:
    """Status messages of `job` still in the chat (deleted ones are gone from it)."""
    chat_id = int(job.outlet["chat_id"])
    return [
        m
        for m in api.sent_messages(chat_id)
        if "in the queue" in str(m.get("text"))
        and (m.get("reply_to_message") or {}).get("message_id") == job.outlet["reply_to"]
    ]


async def started(
    telegram_standin: TelegramStandIn, make_runtime: Callable[..., Awaitable[Runtime]]
) -> tuple[Runtime, TelegramWorkerOutlet]:
    api = telegram_standin
    runtime = await make_runtime(telegram_token=api.token, telegram_api_url=api.base_url)
    outlet = TelegramWorkerOutlet(runtime, FAST)
    await outlet.start()
    return runtime, outlet


async def test_position_posted_while_a_worker_runs_the_job_goes_with_the_answer(
    telegram_standin: TelegramStandIn, make_runtime: Callable[..., Awaitable[Runtime]]
) -> None:
    api = telegram_standin
    runtime, registration = await started(api, make_runtime)
    runner = runtime.runner
    try:
        job = await accepted_photo(api, runner, 1)
        release = api.hold_next("getFile")
        # The worker took the job with the row as it was then: no status message yet.
        working = asyncio.create_task(runner.execute(job))
        # Meanwhile the front end shows the queue position it had read (and records it).
        front = runner.outlets.outlet_for(job)
        await front.notify(job, QueueStatus(2, 3.0))
        assert len(status_messages(api, job)) == 1
        release.set()
        async with asyncio.timeout(60):
            reply = await working
        assert reply is not None
        assert len(api.calls_to("sendPhoto")) == 1
        assert status_messages(api, job) == []  # the worker deleted the front end's message
        assert len(api.calls_to("deleteMessage")) == 1
        assert await runtime.service.jobs.get(job.request_id) is None
    finally:
        await registration.stop()


async def test_position_posted_after_the_answer_is_deleted_by_the_front_end(
    telegram_standin: TelegramStandIn, make_runtime: Callable[..., Awaitable[Runtime]]
) -> None:
    api = telegram_standin
    runtime, registration = await started(api, make_runtime)
    runner = runtime.runner
    try:
        job = await accepted_photo(api, runner, 2)
        async with asyncio.timeout(60):
            assert await runner.execute(job) is not None  # answered, row deleted
        assert len(api.calls_to("sendPhoto")) == 1
        # The front end's position read before the worker finished arrives after it.
        front = runner.outlets.outlet_for(job)
        await front.notify(job, QueueStatus(1, 1.0))
        assert len(api.calls_to("sendMessage")) == 1
        assert status_messages(api, job) == []  # nobody else would delete it
        assert len(api.calls_to("deleteMessage")) == 1
        await front.notify(job, QueueStatus(1, 0.5))  # later reports post nothing
        assert len(api.calls_to("sendMessage")) == 1
    finally:
        await registration.stop()
