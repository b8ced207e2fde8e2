"""A worker process for the queue tests: `QueueWorker` with an executor that does what a
worker does, in small: fetch the photo from the Telegram stand-in by its file id (token only,
no running bot), convert it with the real engine, reply through the delivery ledger, finish the
durable job row in the shared SQLite file. Prints `start ID` / `end ID` (flushed) so the parent
knows when it is in the middle of a job.

    python -m tests.queue.worker_child REDIS_URL DB_PATH BASE_URL BASE_FILE_URL TOKEN CONCURRENCY \
        STALL_AT   (N > 0: the Nth job it starts never ends, so a kill lands in the middle of it)
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

from telegram import Bot

from core.engine import Engine, EngineConfig
from core.registry import Registry
from models import WEIGHTS_DIR
from service.queue import QueueConfig, QueueWorker
from service.queue.worker import Run
from storage import Database


class StandinExecutor:
    def __init__(self, engine: Engine, bot: Bot, db: Database, stall_at: int = 0) -> None:
        self.engine, self.bot, self.db = engine, bot, db
        self.started = 0
        self.stall_at = stall_at  # 0: never

    async def execute(self, payload: dict[str, Any], run: Run) -> None:
        job_id = payload["request_id"]
        print("start", job_id, run.attempt, flush=True)
        try:
            await self._execute(payload, run, job_id)
        finally:  # the run is over, answered or not (a failure is the queue's to retry)
            print("end", job_id, flush=True)

    async def _execute(self, payload: dict[str, Any], run: Run, job_id: str) -> None:
        self.started += 1
        if self.started == self.stall_at:  # a job that never ends: the parent kills us in it
            print("stalled", job_id, flush=True)
            await asyncio.Event().wait()
        if await self.db.jobs.get(job_id) is None:  # finished by an earlier run
            return
        file = await self.bot.get_file(payload["source"]["telegram_file_id"])
        data = bytes(await file.download_as_bytearray())
        result = await self.engine.convert(data, style="hayao", faces=False, fmt="jpeg")
        async with run.ledger.once(job_id, f"{run.worker_id}/{run.attempt}") as deliver:
            if deliver:
                await self.bot.send_photo(
                    payload["reply"]["chat_id"],
                    result.image.data,
                    reply_to_message_id=payload["reply"]["reply_to"],
                )
        await self.db.jobs.delete(job_id)

    async def give_up(self, payload: dict[str, Any], run: Run) -> None:
        await self.bot.send_message(payload["reply"]["chat_id"], "gave up")
        await self.db.jobs.delete(payload["request_id"])


async def main(argv: list[str]) -> None:
    redis_url, db_path, base_url, base_file_url, token, concurrency, stall_at = argv
    engine = Engine(Registry([WEIGHTS_DIR]), EngineConfig(workers=int(concurrency)))
    await engine.run_in_pool(engine.warm_up)
    db = await Database.open(Path(db_path))
    config = QueueConfig(redis_url, heartbeat_s=0.5, poll_s=0.05, job_timeout_s=5)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Bot(token, base_url=base_url, base_file_url=base_file_url) as bot:
        executor = StandinExecutor(engine, bot, db, int(stall_at))
        worker = QueueWorker(config, executor, concurrency=int(concurrency))
        await worker.start()
        print("ready", worker.worker_id, flush=True)
        await stop.wait()
        await worker.stop()
    await db.close()
    await engine.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
