"""Child process of test_storage_crash: concurrent usage writes until it is SIGKILLed.

Usage: python crash_writer.py DB_PATH WRITES. All WRITES records start at once via
asyncio.gather, but each waits for one permit line on stdin, so the parent decides how far
the child can get. After each commit the record's id is printed (and flushed) on stdout.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

from storage import Database, UsageRecord


async def main(path: Path, writes: int) -> None:
    loop = asyncio.get_running_loop()
    permits = asyncio.Semaphore(0)

    def feed_permits() -> None:
        for _line in sys.stdin:
            loop.call_soon_threadsafe(permits.release)

    threading.Thread(target=feed_permits, daemon=True).start()
    async with await Database.open(path) as db:

        async def write(i: int) -> None:
            await permits.acquire()
            row_id = await db.usage.record(
                UsageRecord(
                    platform="crash",
                    status="ok",
                    user_hash=db.hash_id("crash", i),
                    style="hayao",
                    compute_ms=i,
                    request_id=f"write-{i}",
                )
            )
            sys.stdout.write(f"{row_id}\n")
            sys.stdout.flush()

        await asyncio.gather(*(write(i) for i in range(writes)))
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
