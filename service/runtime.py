"""Builds the one engine, database and service of a process, and takes them down cleanly.

Every front end in the process (web page, Telegram, Discord) receives the same `Runtime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from core.engine import Engine, EngineConfig
from core.registry import Registry, user_models_dir
from service import logprivacy
from service.convert import ConversionService
from service.settings import Settings
from service.warmup import warm_up
from storage import Database

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
    )


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
    _purger: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    async def start(
        cls, settings: Settings, *, registry: Registry | None = None, warm: bool = True
    ) -> Runtime:
        """Load the models, run one warm-up conversion (`service.warmup`; `warm=False` skips
        it, for tests), open the database. Front ends start serving after this returns, so
        /readyz says ready only once the first request no longer pays for a cold start."""
        protect_secrets(settings)
        if registry is None:
            from models import WEIGHTS_DIR

            registry = Registry([WEIGHTS_DIR, user_models_dir()])
        engine = Engine(registry, engine_config(settings))
        await engine.run_in_pool(engine.warm_up)  # load every model once, before serving
        if warm:
            await warm_up(engine)
        db = await Database.open(
            settings.database,
            cache_budget_bytes=int(settings.cache_mb * 1024 * 1024),
            result_ttl_s=settings.result_ttl_days * 86400,
            input_ttl_s=settings.input_ttl_hours * 3600,
            key_file=settings.key_file,
        )
        runtime = cls(settings, engine, db, ConversionService(engine, db, settings))
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
        finished = await self.service.drain(self.settings.shutdown_grace_s)
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
