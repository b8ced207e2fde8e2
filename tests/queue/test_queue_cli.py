"""`animebot serve --role front` + two `animebot worker` processes + a real redis-server, as
an operator runs them (SQLite shared by the processes of this machine, or once a real
PostgreSQL server as several machines would share it): photos through the web API are all
answered, by both workers; /readyz checks Redis and the database; /metrics shows the queue
gauges; no raw id reaches a worker's log."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from models.pairs import PROJECT_ROOT
from tests.queue.redis_server import RedisProcess, free_port
from tests.service.helpers import distinct_png
from tests.standins.telegram_api import TelegramStandIn, make_user
from tests.standins.telegram_fixtures import telegram_standin

__all__ = ["telegram_standin"]

ANIMEBOT = [sys.executable, "-m", "cli.main"]


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*ANIMEBOT, *args], cwd=PROJECT_ROOT, env=env, stdout=out, stderr=out
            )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


async def ready(session: aiohttp.ClientSession, url: str, within_s: float = 120) -> dict:
    async with asyncio.timeout(within_s):
        while True:
            try:
                async with session.get(url) as r:
                    if r.status == 200:
                        return dict(await r.json())
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)  # another process is starting: nothing to await


async def gauges(session: aiohttp.ClientSession, base: str, expected: tuple[str, ...]) -> str:
    async with asyncio.timeout(20):
        while True:
            async with session.get(f"{base}/metrics") as r:
                text = await r.text()
            if all(line in text for line in expected):
                return text
            await asyncio.sleep(0.2)  # another process's periodic refresh: nothing to await


async def conversions(session: aiohttp.ClientSession, port: int) -> int:
    """Successful conversions counted by one process's /metrics."""
    async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
        text = await r.text()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("animebot_requests_total{") and 'status="ok"' in line
    )


async def usage_of_web(db: str) -> list[tuple[str, str]]:
    """(request_id, status) of every web usage row, from the SQLite file or the server."""
    query = "SELECT request_id, status FROM usage WHERE platform = 'web'"
    if db.startswith("postgresql://"):
        import asyncpg

        conn = await asyncpg.connect(db)
        try:
            return [(r[0], r[1]) for r in await conn.fetch(query)]
        finally:
            await conn.close()
    with sqlite3.connect(db) as sqlite:
        return [(r[0], r[1]) for r in sqlite.execute(query).fetchall()]


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """ANIMEBOT_DB for every process: the data folder's SQLite file, or a fresh database on
    the session's PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "data" / "animebot.sqlite3")
    url: str = request.getfixturevalue("pg_url")
    return url


async def test_front_end_and_two_workers_answer_every_web_photo(
    redis_server: RedisProcess, tmp_path: Path, shared_db: str
) -> None:
    db = shared_db
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "ANIMEBOT_QUEUE": redis_server.url,
        "ANIMEBOT_DATA": str(tmp_path / "data"),  # with PostgreSQL: the id key file only
        "ANIMEBOT_DB": db,
        "ANIMEBOT_WORKERS": "1",
        "ANIMEBOT_RATE_BURST": "0",
        "ANIMEBOT_DAILY_QUOTA": "0",
    }
    ports = [free_port() for _ in range(3)]
    procs = [Proc(["serve", "--role", "front", "--port", str(ports[0])], env, tmp_path / "f.log")]
    procs += [
        Proc(["worker", "--port", str(p)], env, tmp_path / f"w{i}.log")
        for i, p in enumerate(ports[1:])
    ]
    front = f"http://127.0.0.1:{ports[0]}"
    try:
        async with aiohttp.ClientSession() as session:
            for port in ports:
                body = await ready(session, f"http://127.0.0.1:{port}/readyz")
                assert body["checks"]["queue"] is True and body["checks"]["database"] is True
            photos = [distinct_png(i, side=200) for i in range(12)]

            async def convert(data: bytes) -> tuple[int, str]:
                form = aiohttp.FormData()
                form.add_field("image", data, filename="p.png", content_type="image/png")
                async with session.post(f"{front}/api/convert", data=form) as r:
                    await r.read()
                    return r.status, r.headers.get("Content-Type", "")

            answers = await asyncio.gather(*(convert(p) for p in photos))
            assert answers == [(200, "image/jpeg")] * len(photos)
            # The gauges are refreshed every 2 s: wait for the values of now.
            expected = ("animebot_queue_workers 2.0", "animebot_queue_depth 0.0")
            metrics = await gauges(session, front, expected)
            assert "animebot_queue_up 1.0" in metrics
            done = [await conversions(session, port) for port in ports]
            assert done[0] == 0  # the front end converts nothing itself
            assert sum(done[1:]) == len(photos) and min(done[1:]) > 0  # both workers did
    finally:
        codes = [p.stop() for p in procs]
    assert codes == [0, 0, 0]
    rows = await usage_of_web(db)  # the workers wrote them, in the one shared database
    assert sorted(status for _, status in rows) == ["ok"] * len(photos)
    assert len({request_id for request_id, _ in rows}) == len(photos)
    if not db.endswith(".sqlite3"):  # nothing but the id key file in the data folder
        assert not list((tmp_path / "data").glob("*.sqlite3*"))
    worker_logs = [(tmp_path / f"w{i}.log").read_text() for i in range(2)]
    # No job arguments (raw ids) reached the workers' logs.
    assert all(log.count("animebot_job") == 0 for log in worker_logs)
    assert "127.0.0.1" not in "".join(worker_logs).replace("http://127.0.0.1", "")
    for log, port in zip(worker_logs, ports[1:], strict=True):  # a worker serves no page
        url = f"http://127.0.0.1:{port}"
        assert f"as worker on the shared queue: health and metrics on {url}" in log
        assert "front ends:" not in log


async def inflight(session: aiohttp.ClientSession, port: int) -> float:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith("animebot_conversions_inflight "):
            return float(line.split()[1])
    return 0.0


async def test_telegram_photos_through_front_end_and_workers_with_a_sigkill(
    redis_server: RedisProcess, tmp_path: Path, telegram_standin: TelegramStandIn
) -> None:
    """The real Telegram front end (long polling the stand-in) queues the photos; two
    `animebot worker` processes fetch them by file id and reply with the token alone; one
    worker is SIGKILLed while it converts: every photo is answered exactly once."""
    api = telegram_standin
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "ANIMEBOT_QUEUE": redis_server.url,
        "ANIMEBOT_QUEUE_JOB_TIMEOUT_S": "5",  # a killed worker's job comes back after 15 s
        "ANIMEBOT_DATA": str(tmp_path / "data"),
        "ANIMEBOT_WORKERS": "1",
        "ANIMEBOT_RATE_BURST": "0",
        "ANIMEBOT_DAILY_QUOTA": "0",
        "TELEGRAM_TOKEN": api.token,
        "TELEGRAM_API_URL": api.base_url,
    }
    ports = [free_port() for _ in range(3)]
    procs = [Proc(["serve", "--role", "front", "--port", str(ports[0])], env, tmp_path / "f.log")]
    procs += [
        Proc(["worker", "--port", str(p)], env, tmp_path / f"w{i}.log")
        for i, p in enumerate(ports[1:])
    ]
    victim = procs[1]
    try:
        async with aiohttp.ClientSession() as session:
            for port in ports:
                await ready(session, f"http://127.0.0.1:{port}/readyz")
            asked = []
            for i in range(30):
                user = make_user(8000 + i % 5)
                message = await api.send_photo(user, None, distinct_png(i, side=480))
                asked.append((user["id"], message["message_id"]))
            async with asyncio.timeout(120):
                while not await inflight(session, ports[1]):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)  # another process's state: nothing to await
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait(10)

            def replies() -> Counter[tuple[Any, Any]]:
                return Counter(
                    (c.chat_id, c.reply_to_message_id) for c in api.calls_to("sendPhoto") if c.ok
                )

            async with asyncio.timeout(120):
                while set(replies()) < set(asked):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)  # replies from other processes
            counts = replies()
            assert [m for m in asked if counts[m] != 1] == []  # 0 lost, 0 answered twice
            # Positions came from the shared queue (the front end's status messages), and
            # each status message went away with its job's answer.
            queued = [
                c
                for c in api.calls_to("sendMessage")
                if c.ok and "in the queue" in str(c.params.get("text"))
            ]
            assert queued
            async with asyncio.timeout(30):
                while any(  # noqa: ASYNC110 (other processes tidy up)
                    api.message(c.chat_id, c.result["message_id"]) is not None  # type: ignore[arg-type]
                    for c in queued
                ):
                    await asyncio.sleep(0.1)
    finally:
        codes = [p.stop() for p in procs]
    assert codes == [0, -signal.SIGKILL, 0]
    # The survivor ran the killed worker's job again (arq's second run of it).
    assert "an earlier run did not finish" in (tmp_path / "w1.log").read_text()
    with sqlite3.connect(tmp_path / "data" / "animebot.sqlite3") as db:
        rows = db.execute("SELECT request_id FROM usage WHERE platform = 'telegram'").fetchall()
    assert len(rows) == len({r[0] for r in rows}) == len(asked)  # one usage row per request
