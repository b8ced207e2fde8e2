"""`GET /healthz`: the process answers. `GET /readyz`: models loaded, the database answers,
Redis answers when ANIMEBOT_QUEUE is set, and the process is not draining; 200 when ready,
503 with the failing checks otherwise."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger("animebot.web")

DB_TIMEOUT_S = 2.0


async def healthz(request: web.Request) -> web.Response:
    response = web.json_response({"status": "alive"})
    response.headers["Cache-Control"] = "no-store"
    return response


async def _answers(ping: Callable[[], Awaitable[bool]]) -> bool:
    try:
        async with asyncio.timeout(DB_TIMEOUT_S):
            return await ping()
    except Exception:
        log.warning("readiness: the queue (Redis) did not answer", exc_info=True)
        return False


async def readyz(request: web.Request) -> web.Response:
    from web.app import STATE

    state = request.app[STATE]
    runtime = state.runtime
    checks: dict[str, bool] = {}
    try:
        checks["models"] = bool(runtime.service.styles())
    except Exception:
        log.exception("readiness: listing the styles failed")
        checks["models"] = False
    try:
        async with asyncio.timeout(DB_TIMEOUT_S):
            await runtime.service.check_storage()
        checks["database"] = True
    except Exception:
        log.warning("readiness: the database did not answer", exc_info=True)
        checks["database"] = False
    if runtime.queue is not None:  # ANIMEBOT_QUEUE: jobs go through Redis
        checks["queue"] = await _answers(runtime.queue.ping)
    checks["accepting"] = not (state.draining or runtime.service.closing)
    ready = all(checks.values())
    response = web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)
    response.headers["Cache-Control"] = "no-store"
    return response
