"""Transactions are all-or-nothing, whether they end by error, cancellation or success."""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
import pytest

from storage import Database, UsageRecord
from storage.connection import run_to_completion

INSERT = "INSERT INTO usage (created_at, platform, status) VALUES (?, 'test', 'ok')"


async def count(db: Database) -> int:
    return int(await db._sql.scalar("SELECT count(*) FROM usage WHERE platform = 'test'"))


async def still_usable(db: Database) -> None:
    """A transaction left open on the shared connection would make BEGIN fail here."""
    async with db._sql.transaction() as tx:
        await tx.execute("INSERT INTO quota (user_hash, day, count) VALUES ('probe', 'd', 1)")
        await tx.execute("DELETE FROM quota WHERE user_hash = 'probe'")


async def test_cancelled_while_suspended_leaves_no_partial_row(db: Database) -> None:
    written = asyncio.Event()
    never = asyncio.Event()

    async def writer() -> None:
        async with db._sql.transaction() as tx:
            await tx.execute(INSERT, (1,))
            await tx.execute(
                "INSERT INTO prefs (platform, user_hash, updated_at) VALUES ('t', 'u', 1)"
            )
            written.set()
            await never.wait()  # e.g. waiting on file I/O when the request is cancelled

    task = asyncio.create_task(writer())
    await written.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await count(db) == 0
    assert await db._sql.scalar("SELECT count(*) FROM prefs") == 0
    await still_usable(db)


@pytest.mark.parametrize("cancel_at", [-1, 0, 1, 2, 3])
async def test_cancellation_at_every_await(db: Database, cancel_at: int) -> None:
    """Cancel just before BEGIN, before each of three INSERTs, or before COMMIT.

    The statement being awaited when the CancelledError arrives has already been queued to
    the connection thread and does run; the rollback must undo it. A cancelled COMMIT is
    finished instead, so the outcome is always all rows or none.
    """

    async def writer() -> None:
        me = asyncio.current_task()
        assert me is not None
        if cancel_at == -1:
            me.cancel()
        async with db._sql.transaction() as tx:
            for i in range(3):
                if i == cancel_at:
                    me.cancel()
                await tx.execute(INSERT, (i,))
            if cancel_at == 3:
                me.cancel()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(writer())
    assert await count(db) == (3 if cancel_at == 3 else 0)
    await still_usable(db)


async def test_error_rolls_back_earlier_statements(db: Database) -> None:
    with pytest.raises((sqlite3.IntegrityError, asyncpg.CheckViolationError)):
        async with db._sql.transaction() as tx:
            await tx.execute(INSERT, (1,))
            await tx.execute(
                "INSERT INTO usage (created_at, platform, status) VALUES (1, 'test', 'bogus')"
            )
    assert await count(db) == 0
    with pytest.raises(RuntimeError):
        async with db._sql.transaction() as tx:
            await tx.execute(INSERT, (1,))
            raise RuntimeError("caller bug")
    assert await count(db) == 0
    await still_usable(db)


async def test_concurrent_mixed_writes_do_not_interleave(db: Database) -> None:
    users = [db.hash_id("web", i) for i in range(10)]

    async def user_session(user: str, i: int) -> None:
        await db.usage.record(UsageRecord(platform="web", status="ok", user_hash=user))
        await db.prefs.update("web", user, style=f"s{i}")
        await db.quota.increment(user, "d")
        await db.cache.put(
            f"{i:02x}" + "c" * 62, b"x" * i, kind="result", mime="x", owner_hash=user
        )
        if i % 2:
            await db.forget("web", user)

    await asyncio.gather(*(user_session(u, i) for i, u in enumerate(users)))
    assert await db._sql.scalar("SELECT count(*) FROM usage") == 5
    assert await db._sql.scalar("SELECT count(*) FROM prefs") == 5
    assert await db._sql.scalar("SELECT count(*) FROM cache") == 5
    if db.dialect == "sqlite":
        assert await db.integrity_check() == "ok"


async def test_run_to_completion_finishes_then_reraises_cancel() -> None:
    started = asyncio.Event()
    go = asyncio.Event()
    finished: list[bool] = []

    async def commit_like() -> str:
        started.set()
        await go.wait()
        finished.append(True)
        return "done"

    outer = asyncio.create_task(run_to_completion(commit_like()))
    await started.wait()
    outer.cancel()
    go.set()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert finished == [True]
    assert await run_to_completion(commit_like()) == "done"
