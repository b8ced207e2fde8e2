"""Child process for test_crash: 100 concurrent conversions through a real Runtime; prints
`done <request_id>` (flushed) as each one returns, so the parent knows what finished."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from service.convert import ConversionRequest
from service.runtime import Runtime
from service.settings import Settings
from tests.service.helpers import distinct_png


async def main(data_dir: Path) -> None:
    runtime = await Runtime.start(
        Settings(data_dir=data_dir, workers=2, rate_burst=0, daily_quota=0)
    )
    print("ready", flush=True)

    async def one(i: int) -> None:
        req = ConversionRequest(platform="crash", user_id=i % 7, image=distinct_png(1000 + i))
        reply = await runtime.service.convert(req)
        print("done", reply.request_id, flush=True)

    await asyncio.gather(*(one(i) for i in range(100)))
    print("all-finished", flush=True)
    await runtime.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
