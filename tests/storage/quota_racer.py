"""Child process of test_storage_race.py: opens the database, says "ready", waits for "go" on
stdin, then fires `attempts` concurrent quota takes (of `amount` units each, as a clip takes
its cost) and rate-limit acquisitions at one user and prints how many of each were granted,
as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from storage import Database


async def main(
    location: str, key_file: str, limit: int, burst: int, attempts: int, amount: int = 1
) -> None:
    async with await Database.open(location, key_file=Path(key_file)) as db:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        now = 2_000_000_000.0  # one instant for every take: nothing refills during the race
        taken = await asyncio.gather(
            *(db.quota.try_take("racer", "2026-12-03", limit, amount) for _ in range(attempts))
        )
        waits = await asyncio.gather(
            *(db.rates.try_acquire("racer", burst, 1.0, now=now) for _ in range(attempts))
        )
        granted = {
            "quota": sum(t is not None for t in taken),
            "counts": sorted(t for t in taken if t is not None),
            "rate": sum(w == 0.0 for w in waits),
        }
        print(json.dumps(granted), flush=True)


if __name__ == "__main__":
    location, key_file, limit, burst, attempts = sys.argv[1:6]
    amount = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    asyncio.run(main(location, key_file, int(limit), int(burst), int(attempts), amount))
