"""Aggregates over the usage log for the dashboard, the /stats command and CSV export.

Counting happens in SQL; percentiles are computed here (nearest-rank) because SQLite has no
percentile function (so both engines give the same numbers). All queries of one summary run in
one read transaction, so the numbers agree with each other even while requests keep arriving.
Days are UTC.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from storage.clock import to_ms
from storage.sql import Sql

DAY_S = 86_400


class DayCount(NamedTuple):
    """Successful conversions on one UTC day from one platform."""

    day: str
    platform: str
    conversions: int


class Failure(NamedTuple):
    """A failed or refused request, without any user or chat id."""

    created_at: int
    platform: str
    style: str | None
    status: str
    error_kind: str | None
    request_id: str | None


def percentile(values: Sequence[int], pct: float) -> int | None:
    """Nearest-rank percentile: the smallest value with at least pct% of values <= it."""
    if not values:
        return None
    if not 0 < pct <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {pct}")
    ordered = sorted(values)
    rank = math.ceil(pct / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True)
class StatsSummary:
    """Statistics for the window [start_ms, end_ms].

    per_day, per_style and per_platform count successful conversions (status ok); the
    status totals count every request. Latency percentiles cover ok rows that were not
    served from the cache (a cache hit has no queue wait or compute worth measuring).
    cache_hit_rate is cache hits / ok conversions (0.0 when there were none).
    """

    days: int
    start_ms: int
    end_ms: int
    per_day: list[DayCount] = field(default_factory=list)
    per_style: dict[str, int] = field(default_factory=dict)
    per_platform: dict[str, int] = field(default_factory=dict)
    total: int = 0
    ok: int = 0
    error: int = 0
    refused: int = 0
    unique_users: int = 0
    cache_hits: int = 0
    cache_hit_rate: float = 0.0
    queue_wait_p50_ms: int | None = None
    queue_wait_p95_ms: int | None = None
    compute_p50_ms: int | None = None
    compute_p95_ms: int | None = None
    error_kinds: dict[str, int] = field(default_factory=dict)
    refusal_reasons: dict[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, days: int = 30, now: float | None = None) -> StatsSummary:
        """A summary with no requests (a fresh install)."""
        end = to_ms(time.time() if now is None else now)
        return cls(days=days, start_ms=end - days * DAY_S * 1000, end_ms=end)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (per_day as a list of objects)."""
        out = asdict(self)
        out["per_day"] = [d._asdict() for d in self.per_day]
        return out

    def to_csv_rows(self) -> list[tuple[str, str, str, str | int | float]]:
        """Long-format rows for `csv.writer`: a header, then (section, key, platform, value)."""
        rows: list[tuple[str, str, str, str | int | float]] = [
            ("section", "key", "platform", "value")
        ]
        rows += [("per_day", d.day, d.platform, d.conversions) for d in self.per_day]
        rows += [("per_style", k, "", v) for k, v in sorted(self.per_style.items())]
        rows += [("per_platform", k, "", v) for k, v in sorted(self.per_platform.items())]
        rows += [("error_kind", k, "", v) for k, v in sorted(self.error_kinds.items())]
        rows += [("refusal_reason", k, "", v) for k, v in sorted(self.refusal_reasons.items())]
        for name in (
            "days", "start_ms", "end_ms", "total", "ok", "error", "refused", "unique_users",
            "cache_hits", "cache_hit_rate", "queue_wait_p50_ms", "queue_wait_p95_ms",
            "compute_p50_ms", "compute_p95_ms",
        ):  # fmt: skip
            value = getattr(self, name)
            rows.append(("total", name, "", "" if value is None else value))
        return rows


class StatsRepo:
    """Read-only queries over `usage`."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def summary(self, days: int = 30, now: float | None = None) -> StatsSummary:
        """Aggregates over the last `days` days up to `now` (unix seconds, default now)."""
        if days <= 0:
            raise ValueError("days must be positive")
        end = to_ms(time.time() if now is None else now)
        window = {"start": end - days * DAY_S * 1000, "end": end}
        where = "created_at >= :start AND created_at <= :end"
        day = self._sql.dialect.utc_day("created_at")
        async with self._sql.snapshot() as tx:
            by_status = await tx.fetchall(
                f"SELECT status, count(*) AS n FROM usage WHERE {where} GROUP BY status", window
            )
            per_day = await tx.fetchall(
                f"SELECT {day} AS day, platform, count(*) AS n FROM usage "
                f"WHERE {where} AND status = 'ok' GROUP BY day, platform ORDER BY day, platform",
                window,
            )
            per_style = await tx.fetchall(
                f"SELECT coalesce(style, 'unknown') AS k, count(*) AS n FROM usage "
                f"WHERE {where} AND status = 'ok' GROUP BY k ORDER BY n DESC, k",
                window,
            )
            per_platform = await tx.fetchall(
                f"SELECT platform AS k, count(*) AS n FROM usage "
                f"WHERE {where} AND status = 'ok' GROUP BY k ORDER BY n DESC, k",
                window,
            )
            kinds = await tx.fetchall(
                f"SELECT status, coalesce(error_kind, 'unknown') AS k, count(*) AS n "
                f"FROM usage WHERE {where} AND status IN ('error', 'refused') "
                "GROUP BY status, k ORDER BY n DESC, k",
                window,
            )
            users = await tx.scalar(
                f"SELECT count(DISTINCT user_hash) FROM usage WHERE {where}", window
            )
            hits = await tx.scalar(
                f"SELECT count(*) FROM usage WHERE {where} AND status = 'ok' AND cache_hit = 1",
                window,
            )
            latencies = await tx.fetchall(
                f"SELECT queue_wait_ms, compute_ms FROM usage "
                f"WHERE {where} AND status = 'ok' AND cache_hit = 0",
                window,
            )
        counts = {str(r["status"]): int(r["n"]) for r in by_status}
        ok = counts.get("ok", 0)
        waits = [int(r["queue_wait_ms"]) for r in latencies if r["queue_wait_ms"] is not None]
        computes = [int(r["compute_ms"]) for r in latencies if r["compute_ms"] is not None]
        return StatsSummary(
            days=days,
            start_ms=window["start"],
            end_ms=end,
            per_day=[DayCount(str(r["day"]), str(r["platform"]), int(r["n"])) for r in per_day],
            per_style={str(r["k"]): int(r["n"]) for r in per_style},
            per_platform={str(r["k"]): int(r["n"]) for r in per_platform},
            total=sum(counts.values()),
            ok=ok,
            error=counts.get("error", 0),
            refused=counts.get("refused", 0),
            unique_users=int(users or 0),
            cache_hits=int(hits or 0),
            cache_hit_rate=(int(hits or 0) / ok) if ok else 0.0,
            queue_wait_p50_ms=percentile(waits, 50),
            queue_wait_p95_ms=percentile(waits, 95),
            compute_p50_ms=percentile(computes, 50),
            compute_p95_ms=percentile(computes, 95),
            error_kinds={str(r["k"]): int(r["n"]) for r in kinds if r["status"] == "error"},
            refusal_reasons={str(r["k"]): int(r["n"]) for r in kinds if r["status"] == "refused"},
        )

    async def recent_failures(self, limit: int = 20) -> list[Failure]:
        """The newest error and refused requests, newest first; no user or chat ids."""
        rows = await self._sql.fetchall(
            "SELECT created_at, platform, style, status, error_kind, request_id FROM usage "
            "WHERE status IN ('error', 'refused') ORDER BY created_at DESC, id DESC LIMIT ?",
            (int(limit),),
        )
        return [
            Failure(
                created_at=int(r["created_at"]),
                platform=str(r["platform"]),
                style=None if r["style"] is None else str(r["style"]),
                status=str(r["status"]),
                error_kind=None if r["error_kind"] is None else str(r["error_kind"]),
                request_id=None if r["request_id"] is None else str(r["request_id"]),
            )
            for r in rows
        ]
