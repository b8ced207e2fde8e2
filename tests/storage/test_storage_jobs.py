"""The durable job table (issue 15, item 1): a job survives a reopen, carries everything needed
to answer it, counts its attempts, and leaves no raw id behind once finished or forgotten."""

from __future__ import annotations

from storage import Database, PendingJob
from tests.storage.conftest import Target


def job(db: Database, job_id: str, user: int, **kw: object) -> PendingJob:
    values: dict[str, object] = {
        "id": job_id,
        "platform": "telegram",
        "user_id": str(user),
        "user_hash": db.hash_id("telegram", user),
        "chat_id": str(user),
        "lang": "ru",
        "source": {"kind": "photo", "file_id": f"file-{job_id}", "file_size": 1234},
        "options": {"style": "shinkai", "faces": None},
        "reply": {"reply_to": 7},
    }
    values.update(kw)
    return PendingJob(**values)  # type: ignore[arg-type]


async def test_a_job_survives_a_reopen_and_round_trips(db: Database, target: Target) -> None:
    first = job(db, "r1", 11, created_at=1_000)
    assert await db.jobs.add(first)
    assert not await db.jobs.add(job(db, "r1", 11, lang="en"))  # delivered again: kept as is
    await db.jobs.add(job(db, "r2", 12, created_at=2_000))
    await db.jobs.add(job(db, "d1", 13, platform="discord", created_at=500))
    await db.close()
    async with await target.open() as again:
        pending = await again.jobs.pending("telegram")
        assert [j.id for j in pending] == ["r1", "r2"]  # oldest first, one platform
        assert pending[0] == first
        assert PendingJob.from_json(first.to_json()) == first  # the unit a queue can carry


async def test_reply_updates_attempts_and_deferral(db: Database) -> None:
    await db.jobs.add(job(db, "r1", 11))
    assert await db.jobs.update_reply("r1", status_message_id=42)
    assert await db.jobs.begin_attempt("r1") == 2
    assert await db.jobs.defer("r1", status_message_id=43, notice=True)
    stored = await db.jobs.get("r1")
    assert stored is not None
    assert stored.attempts == 1  # a shutdown is not a crash: the attempt is taken back
    assert stored.reply == {"reply_to": 7, "status_message_id": 43, "notice": True}
    assert await db.jobs.begin_attempt("nope") is None
    assert not await db.jobs.update_reply("nope", x=1)
    assert await db.jobs.update_reply("r1", notice=None, nested={"a": 1, "b": 2})
    assert await db.jobs.update_reply("r1", nested={"b": None})  # merge patch: nested keys too
    stored = await db.jobs.get("r1")
    assert stored is not None
    assert stored.reply == {"reply_to": 7, "status_message_id": 43, "nested": {"a": 1}}


async def test_finish_returns_the_reply_as_it_was_last(db: Database) -> None:
    """A worker finishing a job learns of a status message another process added after it
    read the row; a process adding one after the finish learns it must tidy up itself."""
    await db.jobs.add(job(db, "r1", 11))
    assert await db.jobs.update_reply("r1", status_message_id=42)
    assert await db.jobs.finish("r1") == {"reply_to": 7, "status_message_id": 42}
    assert not await db.jobs.update_reply("r1", status_message_id=43)
    assert await db.jobs.finish("r1") is None
    assert await db.jobs.get("r1") is None


async def test_finished_and_forgotten_jobs_leave_no_raw_ids(db: Database) -> None:
    await db.jobs.add(job(db, "r1", 987654321))
    await db.jobs.add(job(db, "r2", 987654321))
    await db.jobs.add(job(db, "r3", 555, created_at=10))
    assert await db.jobs.delete("r1") and not await db.jobs.delete("r1")
    await db.forget("telegram", db.hash_id("telegram", 987654321))
    assert await db.jobs.delete_older_than(1_000) == 1  # r3: too old to finish
    assert await db._sql.scalar("SELECT count(*) FROM jobs") == 0
