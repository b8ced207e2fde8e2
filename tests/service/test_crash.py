"""SIGKILL in the middle of 100 concurrent conversions: the database opens cleanly and every
conversion that had returned is recorded."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from models.pairs import PROJECT_ROOT
from storage import Database

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


async def integrity(db_path: Path) -> str:
    db = await Database.open(db_path)
    try:
        return await db.integrity_check()
    finally:
        await db.close()


def test_sigkill_mid_batch_keeps_a_clean_database(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.service.crash_child", str(tmp_path)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    finished: list[str] = []
    assert child.stdout is not None
    try:
        for line in child.stdout:  # blocks on the child's output: no sleeping, no polling
            if line.startswith("done "):
                finished.append(line.split()[1])
                if len(finished) == 25:
                    child.send_signal(signal.SIGKILL)
                    break
            assert not line.startswith("all-finished"), "the batch ended before the kill"
    finally:
        child.kill()
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL and len(finished) == 25

    db_path = tmp_path / "animebot.sqlite3"
    assert asyncio.run(integrity(db_path)) == "ok"  # reopens (recovering the WAL) cleanly
    with sqlite3.connect(db_path) as conn:
        rows = dict(
            conn.execute("SELECT request_id, status FROM usage WHERE request_id IS NOT NULL")
        )
    missing = [rid for rid in finished if rows.get(rid) != "ok"]
    assert not missing, f"finished conversions without an ok usage row: {missing}"
    assert len(rows) < 100  # the kill really landed mid-batch
