"""Prometheus metrics of one service instance (own registry, so tests can run several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "animebot_requests",
            "Conversion requests by outcome",
            ["platform", "status", "kind"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "animebot_cache_hits",
            "Requests answered from the cache",
            ["platform"],
            registry=self.registry,
        )
        self.compute_seconds = Histogram(
            "animebot_compute_seconds",
            "Engine time per conversion",
            ["style"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_wait_seconds = Histogram(
            "animebot_queue_wait_seconds",
            "Time waiting for a worker",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_waiting = Gauge(
            "animebot_queue_waiting", "Conversions waiting", registry=self.registry
        )
        self.running = Gauge(
            "animebot_conversions_running", "Conversions running", registry=self.registry
        )
