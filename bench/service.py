"""Service benchmark: cache-hit latency, throughput under 50 concurrent requests, and what
SQLite bookkeeping costs per request.

    python bench/service.py [--requests 50] [--side 640]

Baselines measured in the same run: the engine alone (no service, no SQLite) for throughput,
and a no-op for the write overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, bench/ comes first on sys.path, where bench/models.py and bench/service.py
# would shadow the project's packages: look in the project root instead.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

from core.imageio import encode
from models.pairs import shared_dir
from service.convert import ConversionRequest
from service.runtime import Runtime
from service.settings import Settings
from storage import UsageRecord


def photo_variants(count: int, side: int) -> list[bytes]:
    """Distinct photos (different cache keys) cut from a shared photo, or synthetic ones."""
    import cv2

    src = shared_dir() / "data" / "photos" / "street_railroad_crossing.jpg"
    base = cv2.imread(str(src))
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        if base is None:
            img = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
        else:
            h, w = base.shape[:2]
            y, x = int(rng.integers(0, h - side // 2)), int(rng.integers(0, w - side // 2))
            crop = base[y : y + side // 2, x : x + side // 2]
            img = cv2.cvtColor(cv2.resize(crop, (side, side)), cv2.COLOR_BGR2RGB)
        img[0, 0] = i % 256  # make each one unique
        out.append(encode(img, fmt="jpeg").data)
    return out


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(values, p))


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), rate_burst=0, daily_quota=0, queue_max=1000)
        rt = await Runtime.start(settings)
        svc = rt.service
        photos = photo_variants(args.requests + 1, args.side)
        print(f"workers={settings.workers} styles={svc.styles()} photo={args.side}px")

        # 1. cache hits: the same upload again (byte-identical and so decode-free)
        await svc.convert(ConversionRequest("bench", 1, image=photos[-1]))
        hits = []
        for _ in range(200):
            t = time.perf_counter()
            reply = await svc.convert(ConversionRequest("bench", 1, image=photos[-1]))
            hits.append((time.perf_counter() - t) * 1000)
            assert reply.cache_hit
        print(
            f"cache hit latency: p50 {pct(hits, 50):.2f} ms  p95 {pct(hits, 95):.2f} ms"
            "  (target <= 5 ms)"
        )

        # 2. throughput: engine alone, then the full service, both with N concurrent requests
        decoded = [await rt.engine.decode(p) for p in photos[:-1]]
        t = time.perf_counter()
        await asyncio.gather(*(rt.engine.convert(d, fmt="jpeg") for d in decoded))
        engine_s = time.perf_counter() - t
        t = time.perf_counter()
        replies = await asyncio.gather(
            *(
                svc.convert(ConversionRequest("bench", i, image=p))
                for i, p in enumerate(photos[:-1])
            )
        )
        service_s = time.perf_counter() - t
        assert not any(r.cache_hit for r in replies)
        n = len(decoded)
        waits = [r.queue_wait_ms for r in replies]
        print(
            f"{n} concurrent requests: service {n / service_s:.2f} img/s ({service_s:.2f} s), "
            f"engine alone {n / engine_s:.2f} img/s ({engine_s:.2f} s), "
            f"ratio {engine_s / service_s:.2f}; "
            f"queue wait p50 {pct(waits, 50):.0f} ms p95 {pct(waits, 95):.0f} ms"
        )

        # 3. SQLite write overhead per request: one usage row, the way the service writes it
        rows = []
        for i in range(300):
            t = time.perf_counter()
            await rt.db.usage.record(UsageRecord(platform="bench", status="ok", user_hash=f"u{i}"))
            rows.append((time.perf_counter() - t) * 1000)
        noop = []
        for _ in range(300):
            t = time.perf_counter()
            await asyncio.sleep(0)
            noop.append((time.perf_counter() - t) * 1000)
        print(
            f"usage row write: p50 {pct(rows, 50):.2f} ms p95 {pct(rows, 95):.2f} ms "
            f"(event-loop round trip baseline p50 {pct(noop, 50):.3f} ms)"
        )
        await rt.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--side", type=int, default=640)
    asyncio.run(main(ap.parse_args()))
