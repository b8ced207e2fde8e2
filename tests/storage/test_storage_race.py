"""Quotas and rate limits hold across processes: two OS processes, each with its own
connection(s), race for the same user's last units at the same moment, and together they are
granted exactly the limit, never more (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from storage import Database
from tests.storage.conftest import Target

RACER = Path(__file__).with_name("quota_racer.py")
ROOT = Path(__file__).resolve().parents[2]
LIMIT, BURST, ATTEMPTS = 7, 5, 20
DEADLINE_S = 60.0


async def start_racer(
    target: Target, limit: int = LIMIT, amount: int = 1
) -> asyncio.subprocess.Process:
    args = [str(target.location), str(target.key_file), str(limit), str(BURST), str(ATTEMPTS)]
    args.append(str(amount))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(RACER),
        *args,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE_S)
    assert line.strip() == b"ready", line
    return proc


async def result(proc: asyncio.subprocess.Process) -> dict[str, object]:
    out, _ = await asyncio.wait_for(proc.communicate(), DEADLINE_S)
    assert proc.returncode == 0
    parsed: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
    return parsed


async def test_two_processes_racing_never_over_grant(target: Target) -> None:
    async with await target.open() as db:  # created and migrated before the race
        await db.quota.try_take("racer", "2026-12-03", LIMIT)  # one unit already used
    first, second = await start_racer(target), await start_racer(target)
    for proc in (first, second):  # both are connected and waiting: let them go together
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    a, b = await asyncio.gather(result(first), result(second))

    assert a["quota"] + b["quota"] == LIMIT - 1  # type: ignore[operator]
    counts = sorted([*a["counts"], *b["counts"]])  # type: ignore[misc]
    assert counts == list(range(2, LIMIT + 1))  # every unit granted once, to one process
    assert a["rate"] + b["rate"] == BURST  # type: ignore[operator]
    async with await target.open() as db:
        assert await db.quota.count("racer", "2026-12-03") == LIMIT


async def go(*procs: asyncio.subprocess.Process) -> None:
    for proc in procs:  # all are connected and waiting: let them go together
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()


async def test_two_processes_taking_clip_costs_never_over_grant(target: Target) -> None:
    """A clip takes its whole cost (frames x pixels in photos) in one atomic statement: 40
    takes of 3 units race for the 19 left of 20, and exactly 6 are granted (18 units)."""
    limit, amount = 20, 3
    async with await target.open() as db:
        await db.quota.try_take("racer", "2026-12-03", limit)  # one unit already used
    first = await start_racer(target, limit, amount)
    second = await start_racer(target, limit, amount)
    await go(first, second)
    a, b = await asyncio.gather(result(first), result(second))

    assert a["quota"] + b["quota"] == (limit - 1) // amount  # type: ignore[operator]
    counts = sorted([*a["counts"], *b["counts"]])  # type: ignore[misc]
    assert counts == list(range(1 + amount, limit + 1, amount))  # each take 3 units, once
    async with await target.open() as db:
        assert await db.quota.count("racer", "2026-12-03") == 1 + 6 * amount
        assert await db.quota.give_back("racer", "2026-12-03", amount) == 1 + 5 * amount


async def test_the_check_then_increment_pattern_is_what_try_take_replaces(db: Database) -> None:
    """Why `try_take` exists: 'count, then increment later' lets concurrent requests all pass
    the check; one atomic take per request does not."""
    seen = await asyncio.gather(*(db.quota.count("u", "d") for _ in range(5)))
    assert all(n < 3 for n in seen)  # all five would pass a limit of 3
    taken = await asyncio.gather(*(db.quota.try_take("u", "d", 3) for _ in range(5)))
    assert sorted(t for t in taken if t is not None) == [1, 2, 3]
    assert taken.count(None) == 2
