"""`GET /metrics`: Prometheus text for the service's registry plus this front end's own
(process, platform and garbage-collector collectors, HTTP responses, conversions in flight)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)


class WebMetrics:
    def __init__(self, inflight: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.responses = Counter(
            "animebot_http_responses",
            "Web responses by route and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.inflight = Gauge(
            "animebot_conversions_inflight",
            "Conversions accepted by the service and not finished (any front end)",
            registry=self.registry,
        )
        self.inflight.set_function(inflight)


def exposition(*registries: CollectorRegistry) -> bytes:
    return b"".join(generate_latest(registry) for registry in registries)


async def metrics(request: web.Request) -> web.Response:
    from web.app import STATE

    state = request.app[STATE]
    body = exposition(state.runtime.service.metrics.registry, state.metrics.registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Cache-Control"] = "no-store"
    return response
