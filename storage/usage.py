"""The usage log: one row per request, whatever its outcome, for statistics and quotas.

A request id has at most one *outcome* row per person: `record` is an upsert keyed by both
(`outcome_key`), so a job that runs again (its worker died after writing the row, before the
job was marked done) replaces its row instead of adding one, on SQLite and PostgreSQL alike.
A row written with `once=False` (a job put off by a shutdown, to be finished after the
restart) is not keyed: the attempt that finishes the job adds its outcome beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from storage.clock import now_ms
from storage.sql import Sql

Status = Literal["ok", "error", "refused"]
STATUSES: frozenset[str] = frozenset({"ok", "error", "refused"})


@dataclass(frozen=True, kw_only=True)
class UsageRecord:
    """What one request did. Ids are HMAC hashes (see `Database.hash_id`), never raw ids.

    `error_kind` is the typed error's code for `error`, the refusal reason (busy,
    rate_limited, quota…) for `refused`. `created_at` is unix milliseconds; latencies are
    milliseconds and may be floats (stored rounded).
    """

    platform: str
    status: Status
    user_hash: str | None = None
    chat_hash: str | None = None
    style: str | None = None
    faces: bool | None = None
    side_by_side: bool | None = None
    input_bytes: int | None = None
    input_w: int | None = None
    input_h: int | None = None
    output_bytes: int | None = None
    cache_hit: bool = False
    queue_wait_ms: float | None = None
    compute_ms: float | None = None
    error_kind: str | None = None
    request_id: str | None = None
    created_at: int = field(default_factory=now_ms)
    once: bool = True  # the request's one outcome row (see the module docstring)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, got {self.status!r}")
        if not self.platform:
            raise ValueError("platform must not be empty")


_COLUMNS = (
    "created_at",
    "platform",
    "user_hash",
    "chat_hash",
    "style",
    "faces",
    "side_by_side",
    "input_bytes",
    "input_w",
    "input_h",
    "output_bytes",
    "cache_hit",
    "queue_wait_ms",
    "compute_ms",
    "status",
    "error_kind",
    "request_id",
    "outcome_key",
)
_INSERT = (
    f"INSERT INTO usage ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _COLUMNS)}) "
    "ON CONFLICT (outcome_key) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "outcome_key")
    + " RETURNING id"
)


def _int_or_none(value: bool | int | None) -> int | None:
    return None if value is None else int(value)


def _round_ms(value: float | None) -> int | None:
    return None if value is None else max(0, round(value))


class UsageRepo:
    """Writes usage rows: one outcome per request id."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def record(self, rec: UsageRecord) -> int:
        """Insert the row (or replace the request's earlier outcome row) and return its id
        (committed when this returns)."""
        params = {
            "created_at": int(rec.created_at),
            "platform": rec.platform,
            "user_hash": rec.user_hash,
            "chat_hash": rec.chat_hash,
            "style": rec.style,
            "faces": _int_or_none(rec.faces),
            "side_by_side": _int_or_none(rec.side_by_side),
            "input_bytes": rec.input_bytes,
            "input_w": rec.input_w,
            "input_h": rec.input_h,
            "output_bytes": rec.output_bytes,
            "cache_hit": int(rec.cache_hit),
            "queue_wait_ms": _round_ms(rec.queue_wait_ms),
            "compute_ms": _round_ms(rec.compute_ms),
            "status": rec.status,
            "error_kind": rec.error_kind,
            "request_id": rec.request_id,
            # Scoped by the person: a short random web id repeated by chance for someone
            # else never replaces their row.
            "outcome_key": (
                f"{rec.user_hash or ''}:{rec.request_id}" if rec.once and rec.request_id else None
            ),
        }
        async with self._sql.transaction() as tx:
            row_id = await tx.scalar(_INSERT, params)
        return int(row_id)

    async def update_outcome(self, request_id: str, status: Status, error_kind: str | None) -> bool:
        """Change the outcome of the request's row (a result that could not be delivered):
        a request keeps exactly one row. False when it has none."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, got {status!r}")
        async with self._sql.transaction() as tx:
            count = await tx.execute(
                # Its outcome row, else the latest row of that request id (a job resumed
                # after a restart may have left one from before: only the attempt that
                # delivered is changed).
                "UPDATE usage SET status = ?, error_kind = ? WHERE id = COALESCE("
                "(SELECT max(id) FROM usage WHERE request_id = ? AND outcome_key IS NOT NULL), "
                "(SELECT max(id) FROM usage WHERE request_id = ?))",
                (status, error_kind, request_id, request_id),
            )
        return count > 0
