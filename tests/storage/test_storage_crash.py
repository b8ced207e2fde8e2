"""SIGKILL during concurrent writes: the file stays intact and every reported commit is there.

The child prints an id only after its transaction committed, so each printed id must survive
the kill (WAL + synchronous=NORMAL loses nothing on a process crash, only possibly on power
loss). Synchronisation is by pipes only: the parent hands out write permits on stdin and
kills the child as soon as 30 ids have arrived on stdout.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from storage import Database, UsageRecord

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("crash_writer.py")
WRITES = 100
WINDOW = 20  # permits ahead of the acknowledged ids: up to 20 writes queued at the kill
KILL_AFTER = 30
WATCHDOG_S = 120  # only to fail instead of hanging if the child wedges


def run_child_until_killed(db_path: Path) -> tuple[list[int], subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-u", str(CHILD), str(db_path), str(WRITES)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    watchdog = threading.Timer(WATCHDOG_S, proc.kill)
    watchdog.start()
    try:
        proc.stdin.write("go\n" * WINDOW)
        proc.stdin.flush()
        ids: list[int] = []
        while len(ids) < KILL_AFTER:
            line = proc.stdout.readline()
            if not line:
                proc.kill()
                pytest.fail(f"child ended after {len(ids)} ids: {proc.stderr.read()}")
            ids.append(int(line))
            proc.stdin.write("go\n")
            proc.stdin.flush()
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()  # ids printed between our last read and the kill
        proc.wait()
    finally:
        watchdog.cancel()
        proc.stdin.close()
        proc.stdout.close()
        proc.stderr.close()
    complete_lines = rest.split("\n")[:-1]  # a line cut off by the kill has no newline
    ids += [int(x) for x in complete_lines]
    return ids, proc


async def test_sigkill_mid_write_keeps_every_committed_row(tmp_path: Path) -> None:
    db_path = tmp_path / "crash.db"
    ids, proc = run_child_until_killed(db_path)
    assert proc.returncode == -signal.SIGKILL
    assert len(ids) >= KILL_AFTER and len(set(ids)) == len(ids)

    conn = sqlite3.connect(db_path)  # plain sqlite3 first: it recovers the WAL
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        present = {int(r[0]) for r in conn.execute("SELECT id FROM usage")}
        bad = conn.execute(
            "SELECT count(*) FROM usage WHERE platform != 'crash' OR status != 'ok'"
            " OR request_id NOT LIKE 'write-%' OR user_hash IS NULL"
        ).fetchone()[0]
    finally:
        conn.close()
    assert set(ids) <= present, f"lost committed ids: {sorted(set(ids) - present)}"
    assert len(present) < WRITES, "the child finished before the kill: nothing was tested"
    assert len(present) <= KILL_AFTER + WINDOW
    assert bad == 0  # no torn or half-filled rows

    async with await Database.open(db_path) as db:  # the service can carry on
        assert await db.integrity_check() == "ok"
        new_id = await db.usage.record(UsageRecord(platform="crash", status="ok"))
        assert new_id > max(present)
