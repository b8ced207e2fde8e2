"""A worker's only HTTP: `/healthz`, `/readyz` (models, database, Redis, not draining) and
`/metrics` (the service's registry with the queue gauges, plus process collectors). A worker
serves no page and accepts no upload."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from web.health import DB_TIMEOUT_S, healthz
from web.metrics import WebMetrics, exposition

if TYPE_CHECKING:
    from service.runtime import Runtime

log = logging.getLogger("animebot.web")


class OpsServer:
    name = "ops"

    def __init__(self, runtime: Runtime, queue_ping: Callable[[], Awaitable[bool]]) -> None:
        self.runtime, self.queue_ping = runtime, queue_ping
        self.host, self.port = runtime.settings.host, runtime.settings.port
        self.metrics = WebMetrics(lambda: runtime.service.inflight)
        self.draining = False
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def begin_drain(self) -> None:
        self.draining = True

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics_page)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if self.port == 0 and runner.addresses:
            self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def readyz(self, request: web.Request) -> web.Response:
        checks: dict[str, bool] = {"models": bool(self.runtime.service.styles())}
        for name, probe in (("database", self._db), ("queue", self.queue_ping)):
            try:
                async with asyncio.timeout(DB_TIMEOUT_S):
                    checks[name] = bool(await probe())
            except Exception:
                log.warning("readiness: %s did not answer", name, exc_info=True)
                checks[name] = False
        checks["accepting"] = not (self.draining or self.runtime.service.closing)
        ready = all(checks.values())
        response = web.json_response(
            {"ready": ready, "checks": checks}, status=200 if ready else 503
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    async def _db(self) -> bool:
        await self.runtime.service.check_storage()
        return True

    async def metrics_page(self, request: web.Request) -> web.Response:
        body = exposition(self.runtime.service.metrics.registry, self.metrics.registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        response.headers["Cache-Control"] = "no-store"
        return response
