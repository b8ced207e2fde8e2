"""What an idle queue worker costs Redis, and how fast it picks up a job.

    python bench/queue_idle.py [--seconds 10] [--jobs 20] [--workers 1] [--poll-s 0.1 ...]

For each poll setting (the first is the baseline the ratios are against), `--workers` idle
`QueueWorker`s (concurrency 1 each) on a fresh redis-server: Redis's own command counts
(`INFO commandstats`, reset first) over `--seconds` of idling, by command; then `--jobs` jobs
dispatched one at a time at random moments (so every phase of the poll is sampled): the pickup
latency from the front end's `dispatch()` call to the job's start on a worker, and Redis
commands per job over that phase, net of the idle cost (commands inside Lua scripts not
counted);
then a backlog of `--jobs` empty jobs of one person queued at once: jobs/s (the gap between a
job's end and the next one's start: the person's next job is queued when one ends).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis as redis_py

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

from service.queue import QueueConfig, QueueWorker, RedisDispatcher
from service.queue.worker import Run
from tests.queue.redis_server import RedisProcess


class Stamps:
    """Records when each job started; releases waiters per job."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.arrived = asyncio.Event()

    async def execute(self, payload: dict[str, Any], run: Run) -> None:
        self.started[payload["request_id"]] = time.perf_counter()
        self.arrived.set()

    async def give_up(self, payload: dict[str, Any], run: Run) -> None:
        raise AssertionError("no job uses up its runs here")


def command_counts(server: RedisProcess) -> dict[str, int]:
    with redis_py.Redis(port=server.port) as conn:
        stats = conn.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def reset_stats(server: RedisProcess) -> None:
    with redis_py.Redis(port=server.port) as conn:
        conn.config_resetstat()


def payload(user: int) -> dict[str, Any]:
    return {"request_id": uuid.uuid4().hex, "platform": "bench", "user_id": user}


async def measure(poll_s: float, seconds: float, jobs: int, n_workers: int) -> dict[str, Any]:
    server = RedisProcess()
    server.start()
    try:
        config = QueueConfig(server.url, poll_s=poll_s)
        stamps = Stamps()
        workers = [QueueWorker(config, stamps, concurrency=1) for _ in range(n_workers)]
        dispatcher = await RedisDispatcher.connect(config)
        for worker in workers:
            await worker.start()
        try:
            await asyncio.sleep(1.0)  # settle: connections made, first beats sent
            reset_stats(server)
            await asyncio.sleep(seconds)
            counts = command_counts(server)
            counts.pop("info", None)  # the measurement's own command
            counts.pop("config|resetstat", None)

            latencies: list[float] = []
            reset_stats(server)
            phase_start = time.perf_counter()
            for i in range(jobs):
                await asyncio.sleep(random.uniform(0.0, 1.0))  # the same for every setting
                job = payload(user=i)
                stamps.arrived.clear()
                sent = time.perf_counter()
                await dispatcher.dispatch_payload(job["request_id"], job)
                async with asyncio.timeout(30):
                    while job["request_id"] not in stamps.started:
                        await stamps.arrived.wait()
                        stamps.arrived.clear()
                latencies.append(stamps.started[job["request_id"]] - sent)
            phase_s = time.perf_counter() - phase_start
            in_phase = sum(command_counts(server).values()) - 1  # less the INFO

            backlog = [payload(user=10_000) for _ in range(jobs)]
            t0 = time.perf_counter()
            for job in backlog:  # one person: the fairness cap holds the rest in its list
                await dispatcher.dispatch_payload(job["request_id"], job)
            async with asyncio.timeout(120):
                while not all(j["request_id"] in stamps.started for j in backlog):
                    await stamps.arrived.wait()
                    stamps.arrived.clear()
            backlog_s = time.perf_counter() - t0
            await asyncio.sleep(0.5)  # let arq finish the last job's bookkeeping before stopping
        finally:
            for worker in workers:
                await worker.stop(grace_s=5)
            await dispatcher.close()
    finally:
        server.remove()
    latencies.sort()
    return {
        "poll_s": poll_s,
        "per_s": {k: v / seconds for k, v in sorted(counts.items()) if v},
        "total_per_s": sum(counts.values()) / seconds,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p95_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] * 1000,
        "max_ms": latencies[-1] * 1000,
        "backlog_jobs_s": jobs / backlog_s,
        # what the jobs added, net of the idle cost over the same time
        "cmds_per_job": (in_phase - phase_s * sum(counts.values()) / seconds) / jobs,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--poll-s", type=float, action="append")
    args = parser.parse_args()
    settings = args.poll_s or [0.1, QueueConfig("redis://").poll_s]
    results = [await measure(p, args.seconds, args.jobs, args.workers) for p in settings]
    base = results[0]
    print(
        f"{args.workers} idle worker(s), {args.seconds:.0f} s; {args.jobs} single jobs picked up; "
        f"a backlog of {args.jobs} empty jobs of one person"
    )
    print(
        f"{'poll_s':>7} {'idle cmds/s':>11} {'vs base':>8} {'pickup p50':>10} {'p95':>6} "
        f"{'max ms':>7} {'cmds/job':>8} {'backlog jobs/s':>15}  idle commands/s by name"
    )
    for r in results:
        names = ", ".join(f"{k} {v:.1f}" for k, v in r["per_s"].items())
        ratio = r["total_per_s"] / base["total_per_s"] if base["total_per_s"] else float("nan")
        print(
            f"{r['poll_s']:>7.2f} {r['total_per_s']:>11.2f} {ratio:>7.2f}x {r['p50_ms']:>10.1f} "
            f"{r['p95_ms']:>6.1f} {r['max_ms']:>7.1f} {r['cmds_per_job']:>8.1f} "
            f"{r['backlog_jobs_s']:>15.1f}  {names}"
        )


if __name__ == "__main__":
    asyncio.run(main())
