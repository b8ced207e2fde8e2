"""Scale benchmark: the web API at 1280 px with the jobs on a Redis queue and 1 or 2 worker
processes, against today's single process (in-process queue), all in one run on this machine;
plus the Redis round trips each job adds (read from Redis's MONITOR stream, minus what the
same time without jobs costs: idle polling and heartbeats).

    python bench/scale.py [--photos 24] [--clients 4] [--side 1280]

Every configuration gets the same distinct photos (no cache hits) from `--clients` concurrent
HTTP clients. Processes are started with the `animebot` CLI exactly as an operator would; the
CPU threads are the same in total (ANIMEBOT_WORKERS per process: 2 for the single process and
the one worker, 1 for each of two workers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import redis as redis_py

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

from bench.service import pct, photo_variants
from tests.queue.redis_server import RedisProcess, free_port

ANIMEBOT = [sys.executable, "-m", "cli.main"]


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([*ANIMEBOT, *args], cwd=ROOT, env=env, stdout=out, stderr=out)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


async def wait_ready(session: aiohttp.ClientSession, port: int) -> None:
    async with asyncio.timeout(180):
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


async def drive(
    port: int, photos: list[bytes], clients: int
) -> tuple[float, list[float], set[str]]:
    """(images per second, latencies in s, request ids) for the photos via POST /api/convert."""
    todo = list(enumerate(photos))
    latencies: list[float] = []
    ids: set[str] = set()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:

        async def client() -> None:
            while todo:
                _, data = todo.pop(0)
                form = aiohttp.FormData()
                form.add_field("image", data, filename="p.jpg", content_type="image/jpeg")
                t0 = time.perf_counter()
                async with session.post(f"http://127.0.0.1:{port}/api/convert", data=form) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}")
                    ids.add(r.headers["X-Animebot-Request-Id"])
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return len(photos) / (time.perf_counter() - t0), latencies, ids


def net_bytes(server: RedisProcess) -> int:
    """Bytes in and out of Redis so far (INFO stats; MONITOR's own stream excluded)."""
    with redis_py.Redis(port=server.port) as conn:
        stats = conn.info("stats")
    return int(stats["total_net_input_bytes"]) + int(stats["total_net_output_bytes"])


class Monitor:
    """Redis's MONITOR stream while it runs. A round trip is one command a client sent, or one
    MULTI..EXEC block; commands that Lua scripts run inside Redis are not round trips. A round
    trip is a job's when it names a job id (its queue entry, lease, result, delivery mark...);
    the others are polling, heartbeats, fleet reads and the /metrics gauges."""

    def __init__(self, server: RedisProcess) -> None:
        self.events: list[tuple[str, str, str]] = []
        self._conn = redis_py.Redis(port=server.port)
        self._monitor = self._conn.monitor().__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._monitor.listen():
                lua = event.get("client_type") == "lua"
                client = "lua" if lua else f"{event['client_address']}:{event['client_port']}"
                command = str(event["command"])
                self.events.append((client, command.split(" ", 1)[0].lower(), command))
        except Exception:  # the connection closed by stop()
            return

    def stop(self, job_ids: set[str]) -> tuple[int, int, int]:
        """(round trips naming a job, other round trips, commands incl. inside scripts)."""
        events = list(self.events)
        with contextlib.suppress(Exception):
            self._monitor.connection.disconnect()
        self._conn.close()
        jobs = other = 0
        blocks: dict[str, bool] = {}  # client -> its open MULTI names a job
        for client, name, command in events:
            if client == "lua":
                continue
            named = any(job in command for job in job_ids)
            if name == "multi":
                blocks[client] = False
            elif client in blocks and name != "exec":
                blocks[client] |= named
            else:
                named |= blocks.pop(client, False)
                if named:
                    jobs += 1
                else:
                    other += 1
        return jobs, other, len(events)


async def run_config(
    name: str, workers: int, photos: list[bytes], clients: int, tmp: Path
) -> tuple[float, list[float], tuple[float, float, float] | None]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ANIMEBOT_RATE_BURST": "0"}
    env |= {"ANIMEBOT_DAILY_QUOTA": "0", "ANIMEBOT_LOG_LEVEL": "WARNING"}
    env["ANIMEBOT_DATA"] = str(tmp / name)
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    redis: RedisProcess | None = None
    try:
        if workers == 0:
            env["ANIMEBOT_WORKERS"] = "2"
            procs.append(start(["serve", "--port", str(port)], env, tmp / f"{name}.log"))
            ports = [port]
        else:
            redis = RedisProcess()
            redis.start()
            env["ANIMEBOT_QUEUE"] = redis.url
            env["ANIMEBOT_WORKERS"] = str(2 // workers)
            procs.append(start(["serve", "--role", "front", "--port", str(port)], env, tmp / "f"))
            ports = [port]
            for i in range(workers):
                wport = free_port()
                procs.append(start(["worker", "--port", str(wport)], env, tmp / f"{name}-w{i}"))
                ports.append(wport)
        async with aiohttp.ClientSession() as session:
            for p in ports:
                await wait_ready(session, p)
        await drive(port, photos[:2], 1)  # first requests of each process: not measured
        monitor = Monitor(redis) if redis else None
        before = net_bytes(redis) if redis else 0
        rate, lat, ids = await drive(port, photos[2:], clients)
        per_job = None
        if monitor is not None and redis is not None:
            moved = net_bytes(redis) - before
            named, other, commands = monitor.stop(ids)
            jobs = len(photos) - 2
            per_job = (named / jobs, other / jobs, commands / jobs, moved / jobs)
        return rate, lat, per_job
    finally:
        stop(procs)
        if redis is not None:
            redis.remove()


async def main(args: argparse.Namespace) -> None:
    photos = photo_variants(args.photos + 2, args.side)
    tmp = Path(tempfile.mkdtemp(prefix="animebot-scale-"))
    print(f"{args.photos} distinct {args.side} px photos, {args.clients} clients, web API")
    print(f"machine: {os.cpu_count()} CPUs (shared with whatever else runs)")
    results = {}
    try:
        for name, workers in (("single process", 0), ("1 worker", 1), ("2 workers", 2)):
            rate, lat, per_job = await run_config(
                name.replace(" ", "-"), workers, photos, args.clients, tmp
            )
            results[name] = rate
            base = results["single process"]
            print(
                f"{name:15s} {rate:6.2f} img/s ({rate / base:4.2f}x)  "
                f"p50 {pct(lat, 50) * 1000:6.0f} ms  p95 {pct(lat, 95) * 1000:6.0f} ms"
            )
            if per_job:
                named, other, commands, moved = per_job
                print(
                    f"{'':15s} Redis per job: {named:.1f} round trips naming the job + "
                    f"{other:.1f} others (polls, heartbeats, fleet reads, gauges); "
                    f"{commands:.1f} commands incl. inside Lua scripts; "
                    f"{moved / 1024:.0f} KiB in+out (MONITOR's copy included)"
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--side", type=int, default=1280)
    asyncio.run(main(parser.parse_args()))
