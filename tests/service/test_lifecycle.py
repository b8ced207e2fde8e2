"""The job lifecycle (service/lifecycle/): one runner, every outcome one usage row.

A recording outlet stands in for a platform; the runtime, engine, database and queue are
real. Each test drives a job through `JobRunner.accept` (the front half) and the default
`LocalDispatcher` (which runs `execute`, the worker half), then reads the usage table.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from core.errors import AnimeBotError
from service.convert import ConversionReply
from service.fairqueue import QueueStatus
from service.lifecycle import (
    AlreadyAccepted,
    DeliveryError,
    DeliveryFailed,
    DownloadFailed,
    FetchFailed,
    Job,
    JobRunner,
    OutletLimits,
)
from service.runtime import Runtime
from tests.service.helpers import distinct_png, usage_rows

MakeRuntime = Callable[..., Awaitable[Runtime]]


@dataclass
class Recorder:
    """What the outlets of one test were asked to do, in order."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    limits: OutletLimits = field(default_factory=OutletLimits)
    refuse_delivery: str | None = None  # DeliveryFailed kind raised by deliver
    refuse_begin: str | None = None  # DeliveryFailed kind raised by begin

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]

    def outlet(self, job: Job) -> RecordingOutlet:
        return RecordingOutlet(self)


class RecordingOutlet:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.limits = recorder.limits

    async def begin(self, job: Job) -> None:
        self.recorder.events.append(("begin", job.request_id))
        if self.recorder.refuse_begin:
            raise DeliveryFailed(self.recorder.refuse_begin)

    async def notify(self, job: Job, status: QueueStatus) -> None:
        self.recorder.events.append(("notify", status.position))

    async def deliver(self, job: Job, reply: ConversionReply) -> None:
        self.recorder.events.append(("deliver", reply))
        if self.recorder.refuse_delivery:
            raise DeliveryFailed(self.recorder.refuse_delivery)

    async def fail(self, job: Job, error: AnimeBotError) -> None:
        self.recorder.events.append(("fail", error))

    async def defer(self, job: Job) -> dict[str, Any]:
        self.recorder.events.append(("defer", None))
        return {"notice_id": 77}

    async def end(self, job: Job) -> None:
        self.recorder.events.append(("end", None))

    async def deliver_batch(
        self, job: Job, items: list[tuple[Job, ConversionReply | AnimeBotError]]
    ) -> list[tuple[str, str]]:
        """Posts everything; says the results after the first could not be uploaded."""
        self.recorder.events.append(("deliver_batch", items))
        sent = [part for part, result in items if isinstance(result, ConversionReply)]
        return [(part.request_id, "delivery_failed") for part in sent[1:]]


@pytest.fixture
async def setup(make_runtime: MakeRuntime) -> tuple[Runtime, Recorder]:
    runtime = await make_runtime(workers=1)
    recorder = Recorder()
    runtime.runner.outlets.register("test", recorder.outlet)
    return runtime, recorder


def job_of(runner: JobRunner, data: bytes, n: int = 1, **changes: Any) -> Job:
    job = Job(
        platform="test",
        user_id=str(1000 + n),
        chat_id=str(2000 + n),
        lang="en",
        source={"kind": "upload"},
        outlet={"kind": "test", "reply_to": n},
        options={"style": None, "fmt": "jpeg"},
        request_id=runner.job_key("test", f"message:{n}"),
        upload=data,
    )
    return replace(job, **changes)


async def settle(runner: JobRunner) -> None:
    """Wait for every job the runner executes (in this process) to end."""
    while running := runner.pending_tasks():
        await asyncio.gather(*running)


def rows(runtime: Runtime) -> list[sqlite3.Row]:
    return usage_rows(runtime.settings.database)


def outcomes(runtime: Runtime) -> list[tuple[str, str | None, str | None]]:
    return [(r["status"], r["error_kind"], r["request_id"]) for r in rows(runtime)]


async def test_job_round_trips_as_json_without_its_upload() -> None:
    job = Job(
        platform="telegram",
        user_id="42",
        lang="ru",
        source={"kind": "telegram_file", "file_id": "F", "size": 10},
        outlet={"kind": "telegram", "chat_id": 42, "reply_to": 7},
        options={"style": "hayao", "faces": None},
        upload=b"bytes stay out of the JSON",
    )
    again = Job.from_json(job.to_json())
    assert again == job and again.upload is None
    assert "bytes stay out" not in job.to_json()


async def test_success_is_one_ok_row_and_the_durable_row_goes(
    setup: tuple[Runtime, Recorder],
) -> None:
    runtime, recorder = setup
    runner = runtime.runner
    accepted = await runner.accept(job_of(runner, distinct_png(1)))
    assert accepted is not None and accepted.durable
    await settle(runner)
    assert outcomes(runtime) == [("ok", None, accepted.request_id)]
    assert recorder.kinds() == ["begin", "deliver", "end"]
    assert await runtime.service.jobs.pending("test") == []


async def test_a_redelivered_request_is_not_accepted_twice(
    setup: tuple[Runtime, Recorder],
) -> None:
    runtime, _ = setup
    runner = runtime.runner
    job = job_of(runner, distinct_png(2))
    runtime.service.queue.close()  # nothing runs: the job stays pending
    await runner.accept(job)
    with pytest.raises(AlreadyAccepted):
        await runner.accept(job)


async def test_a_refusal_at_intake_is_one_row_and_no_job(setup: tuple[Runtime, Recorder]) -> None:
    runtime, recorder = setup
    runner = runtime.runner
    job = job_of(runner, b"", source={"kind": "upload", "size": 10**9}, upload=None)
    assert await runner.accept(job) is None
    assert outcomes(runtime) == [("error", "too_large", job.request_id)]
    assert recorder.kinds() == ["fail"]
    assert await runtime.service.jobs.pending("test") == []


async def test_a_failed_conversion_is_one_row_and_one_message(
    setup: tuple[Runtime, Recorder],
) -> None:
    runtime, recorder = setup
    runner = runtime.runner
    accepted = await runner.accept(job_of(runner, b"this is not a picture"))
    assert accepted is not None
    await settle(runner)
    assert outcomes(runtime) == [("error", "not_image", accepted.request_id)]
    assert recorder.kinds() == ["begin", "fail", "end"]
    assert await runtime.service.jobs.pending("test") == []


async def test_a_failed_delivery_updates_the_row_instead_of_adding_one(
    setup: tuple[Runtime, Recorder],
) -> None:
    runtime, recorder = setup
    recorder.refuse_delivery = "delivery_failed"
    runner = runtime.runner
    accepted = await runner.accept(job_of(runner, distinct_png(3)))
    assert accepted is not None
    await settle(runner)
    assert outcomes(runtime) == [("error", "delivery_failed", accepted.request_id)]
    told = [error for kind, error in recorder.events if kind == "fail"]
    assert len(told) == 1 and isinstance(told[0], DeliveryError)


async def test_a_blocked_chat_is_one_row_and_nothing_converted(
    setup: tuple[Runtime, Recorder],
) -> None:
    runtime, recorder = setup
    recorder.refuse_begin = "delivery_blocked"
    converted: list[object] = []
    engine_convert = runtime.engine.convert

    async def counted(*args: Any, **kwargs: Any) -> Any:
        converted.append(args)
        return await engine_convert(*args, **kwargs)

    runtime.engine.convert = counted  # type: ignore[method-assign]
    runner = runtime.runner
    accepted = await runner.accept(job_of(runner, distinct_png(4)))
    assert accepted is not None
    await settle(runner)
    assert converted == []
    assert outcomes(runtime) == [("error", "delivery_blocked", accepted.request_id)]
    assert "deliver" not in recorder.kinds() and "fail" not in recorder.kinds()


async def test_a_failed_download_is_one_row(setup: tuple[Runtime, Recorder]) -> None:
    runtime, recorder = setup
    runner = runtime.runner

    async def broken(job: Job) -> bytes:
        raise FetchFailed("download_failed", "the platform said 500")

    runner.fetchers.register("test_file", broken)
    job = job_of(runner, b"", source={"kind": "test_file", "size": 100}, upload=None)
    assert await runner.accept(job) is not None
    await settle(runner)
    assert outcomes(runtime) == [("error", "download_failed", job.request_id)]
    told = [error for kind, error in recorder.events if kind == "fail"]
    assert len(told) == 1 and isinstance(told[0], DownloadFailed)


async def test_the_result_is_encoded_once_to_fit_the_outlet(
    setup: tuple[Runtime, Recorder],
) -> None:
    runtime, recorder = setup
    recorder.limits = OutletLimits(max_bytes=3000, formats=("jpeg",))
    runner = runtime.runner
    accepted = await runner.accept(job_of(runner, distinct_png(5, side=256)))
    assert accepted is not None
    await settle(runner)
    (reply,) = [r for kind, r in recorder.events if kind == "deliver"]
    assert len(reply.data) <= 3000 and "recompressed" in reply.notes
    assert [r["status"] for r in rows(runtime)] == ["ok"]


async def test_a_job_turned_away_by_a_shutdown_is_put_off_and_resumed(
    make_runtime: MakeRuntime,
) -> None:
    runtime = await make_runtime(workers=1)
    recorder = Recorder()
    runtime.runner.outlets.register("test", recorder.outlet)
    runner = runtime.runner
    runtime.service.begin_shutdown(0.0)
    accepted = await runner.accept(job_of(runner, distinct_png(6)))
    assert accepted is not None
    await settle(runner)
    assert recorder.kinds() == ["defer"]
    (kept,) = await runtime.service.jobs.pending("test")
    assert kept.reply["notice_id"] == 77  # what the outlet asked to remember

    # The next process (same database): the job is read back and finished.
    later = await make_runtime(workers=1, data_dir=runtime.settings.data_dir)
    second = Recorder()
    later.runner.outlets.register("test", second.outlet)
    left = await later.runner.left_over("test")
    assert left[0].source["kind"] == "cached"  # the upload waited in the shared cache
    assert [job.request_id for job in left] == [accepted.request_id]
    await later.runner.resume(left)
    await settle(later.runner)
    assert second.kinds() == ["begin", "deliver", "end"]
    assert await later.service.jobs.pending("test") == []
    statuses = [(r["status"], r["error_kind"]) for r in rows(later)]
    assert statuses == [("refused", "shutting_down"), ("ok", None)]


async def test_an_upload_stashed_for_another_process_converts_from_the_cache(
    setup: tuple[Runtime, Recorder],
) -> None:
    runtime, recorder = setup
    runner = runtime.runner
    stashed = await runner.stash_upload(job_of(runner, distinct_png(7)))
    assert stashed.upload is None and stashed.source["kind"] == "cached"
    carried = Job.from_json(stashed.to_json())  # what a queue would carry
    assert await runner.accept(carried) is not None
    await settle(runner)
    assert [r["status"] for r in rows(runtime)] == ["ok"]
    assert recorder.kinds() == ["begin", "deliver", "end"]


async def test_a_batch_is_one_row_per_photo_and_one_answer(
    setup: tuple[Runtime, Recorder],
) -> None:
    """Several photos answered together (Discord's Anime-fy): each photo its own request and
    row; a photo the outlet could not deliver has its row updated, not a second one."""
    runtime, recorder = setup
    runner = runtime.runner
    files = {"a": distinct_png(31), "b": b"not a picture", "c": distinct_png(32)}

    async def fetch(job: Job) -> bytes:
        return files[str(job.source["name"])]

    runner.fetchers.register("test_file", fetch)
    items = [{"kind": "test_file", "name": name, "size": len(data)} for name, data in files.items()]
    job = job_of(runner, b"", source={"kind": "batch", "items": items}, upload=None)
    assert await runner.accept(job) is not None
    await settle(runner)
    # (the photos wait their turn on one worker: queue reports come between)
    assert [k for k in recorder.kinds() if k != "notify"] == ["begin", "deliver_batch", "end"]
    ((_, answered),) = [e for e in recorder.events if e[0] == "deliver_batch"]
    assert [type(result).__name__ for _, result in answered] == [
        "ConversionReply",
        "NotAnImage",
        "ConversionReply",
    ]
    ids = [part.request_id for part, _ in answered]
    assert len(set(ids)) == 3
    found = {r["request_id"]: (r["status"], r["error_kind"]) for r in rows(runtime)}
    assert len(rows(runtime)) == 3
    assert found == {
        ids[0]: ("ok", None),
        ids[1]: ("error", "not_image"),
        ids[2]: ("error", "delivery_failed"),
    }
    assert await runtime.service.jobs.pending("test") == []
