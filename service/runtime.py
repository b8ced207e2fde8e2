"""Builds the one engine, database and service of a process, and takes them down cleanly.

Every front end in the process (web page, Telegram, Discord) receives the same `Runtime`, and
hands its requests to the same `JobRunner` (`runtime.runner`, service/lifecycle/).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from core.engine import Engine, EngineConfig
from core.registry import Registry
from service import logprivacy
from service.clips import ClipService
from service.convert import ConversionService
from service.lifecycle import JobRunner
from service.settings import Settings
from service.warmup import warm_up
from storage import Database

if TYPE_CHECKING:
    from service.queue.bridge import QueueFront

log = logging.getLogger("animebot.runtime")

PURGE_EVERY_S = 3600.0


def protect_secrets(settings: Settings) -> None:
    """Keep every token of the settings out of every log record, from now on."""
    telegram_secret = settings.telegram_token.split(":", 1)[-1]
    logprivacy.protect(
        settings.telegram_token,
        telegram_secret if len(telegram_secret) >= 8 else "",
        settings.discord_token,
        settings.admin_token,
        *(_password(url) for url in (settings.db_url, settings.queue_url)),
    )


def _password(url: str) -> str:
    """The password inside a database or queue URL ('' when none)."""
    return urlsplit(url).password or "" if url else ""


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        workers=settings.workers,
        threads_per_job=settings.threads_per_job,
        max_side=settings.max_side,
        max_pixels=settings.max_pixels,
        max_bytes=settings.max_upload_bytes,
    )


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    db: Database
    service: ConversionService
    runner: JobRunner
    # The shared queue's front half when ANIMEBOT_QUEUE is set (service/queue/), else None.
    queue: QueueFront | None = None
    _purger: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def clips(self) -> ClipService:
        """Clips and animated GIFs (service/clips.py), the job runner's: front ends send clips
        as jobs (`options["clip"]`); this is for what runs here alone (the CLI, benches)."""
        return self.runner.clips

    @classmethod
    async def start(
        cls, settings: Settings, *, registry: Registry | None = None, warm: bool = True
    ) -> Runtime:
        """Load the models, run one warm-up conversion (`service.warmup`; `warm=False` skips
        it, for tests), open the database. Front ends start serving after this returns, so
        /readyz says ready only once the first request no longer pays for a cold start."""
        protect_secrets(settings)
        if registry is None:
            registry = Registry.default(settings.paths.models_dir)
        engine = Engine(registry, engine_config(settings))
        await engine.run_in_pool(engine.warm_up)  # load every model once, before serving
        if warm:
            await warm_up(engine)
        part = settings.db
        db = await Database.open(
            part.target,
            cache_budget_bytes=part.cache_budget_bytes,
            result_ttl_s=part.result_ttl_s,
            input_ttl_s=part.input_ttl_s,
            key_file=part.key_file,
        )
        service = ConversionService(engine, db, settings)
        runtime = cls(settings, engine, db, service, JobRunner(service))
        runtime._purger = asyncio.create_task(runtime._purge_loop(), name="animebot-purge")
        log.info("ready: styles %s, %d workers", ", ".join(registry.names()), settings.workers)
        return runtime

    async def _purge_loop(self) -> None:
        while True:
            try:
                removed = await self.db.purge()
                log.info("cache purge: %s", removed)
            except Exception:
                log.exception("cache purge failed")
            if expired := await self.service.jobs.expire():
                log.warning("dropped %d job(s) nobody finished within a day", expired)
            await asyncio.sleep(PURGE_EVERY_S)

    async def stop(self) -> None:
        """Refuse new work, let running conversions finish (bounded), then close everything."""
        finished = await self.runner.drain(self.settings.shutdown_grace_s)
        if not finished:
            log.warning(
                "shutdown: conversions still running after %.0f s", self.settings.shutdown_grace_s
            )
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        await self.engine.close()
        await self.db.close()
        log.info("stopped cleanly")
