"""Durable jobs: accepted requests that have not been answered yet.

A job is written (and committed) when a bot accepts a request, before the platform is told
the request was received, and deleted when the request has its answer (a result, or a
message saying why not). Whatever is still here when a process starts was interrupted (a
crash, or a shutdown that ran out of grace) and is finished by that process.

A `PendingJob` is self-contained: who asked, where the picture comes from (a platform file
reference, never the picture itself), the options, and where the answer goes. So it can be
serialised (`to_json`) and carried elsewhere, e.g. by a queue between processes. Unlike every
other table it holds raw platform ids and reply tokens, because answering needs them; they
live only as long as the job is pending.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from storage.clock import now_ms
from storage.sql import Row, Sql, Tx

JSONDict = dict[str, Any]


@dataclass(frozen=True)
class PendingJob:
    """One accepted request, as much as it takes to finish it in another process.

    `source`: where the picture comes from, e.g. `{"telegram_file_id": ..., "kind": "photo"}`
    or `{"input_key": ...}` (a photo in the cache), or Discord attachment URLs.
    `options`: style, faces, side_by_side, output kind...
    `reply`: where the answer goes, e.g. `{"chat_id", "reply_to", "status_message_id"}` or
    `{"application_id", "token", "thinking_message_id"}`.
    `attempts`: how many times a process began working on it (bounds crash loops).
    """

    id: str  # the platform's own key for the request (a redelivery has the same one)
    platform: str
    user_id: str  # raw platform id (needed to answer); deleted with the job
    user_hash: str  # the keyed hash, so /forget finds the person's pending jobs
    lang: str
    chat_id: str | None = None
    source: JSONDict = field(default_factory=dict)
    options: JSONDict = field(default_factory=dict)
    reply: JSONDict = field(default_factory=dict)
    created_at: int = field(default_factory=now_ms)  # unix ms
    attempts: int = 1

    def age_s(self, now: int | None = None) -> float:
        return ((now_ms() if now is None else now) - self.created_at) / 1000

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PendingJob:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a job is a JSON object")
        return cls(**data)

    def with_reply(self, **changes: Any) -> PendingJob:
        return replace(self, reply={**self.reply, **changes})


_COLUMNS = (
    "id",
    "platform",
    "user_id",
    "user_hash",
    "chat_id",
    "lang",
    "source",
    "options",
    "reply",
    "created_at",
    "attempts",
)
_JSON_COLUMNS = frozenset({"source", "options", "reply"})
_INSERT = (
    f"INSERT INTO jobs ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _COLUMNS)}) ON CONFLICT DO NOTHING"
)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch (what SQLite's json_patch does): objects merge key by key,
    a null removes the key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def _params(job: PendingJob) -> JSONDict:
    raw = asdict(job)
    return {k: json.dumps(raw[k]) if k in _JSON_COLUMNS else raw[k] for k in _COLUMNS}


def _job(row: Row) -> PendingJob:
    values = {k: json.loads(row[k]) if k in _JSON_COLUMNS else row[k] for k in _COLUMNS}
    return PendingJob(**values)


class JobsRepo:
    """The `jobs` table: add when accepted, delete when answered, list what is left."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql

    async def add(self, job: PendingJob) -> bool:
        """Insert the job (committed when this returns); False when a job with its id is
        already pending (the platform delivered the same request again)."""
        async with self._sql.transaction() as tx:
            return await tx.execute(_INSERT, _params(job)) > 0

    async def get(self, job_id: str) -> PendingJob | None:
        row = await self._sql.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else _job(row)

    async def pending(self, platform: str) -> list[PendingJob]:
        """Every job of `platform`, oldest first."""
        rows = await self._sql.fetchall(
            "SELECT * FROM jobs WHERE platform = ? ORDER BY created_at, id", (platform,)
        )
        return [_job(r) for r in rows]

    async def update_reply(self, job_id: str, **changes: Any) -> bool:
        """Merge `changes` into the job's reply reference (e.g. a status message id); a None
        value removes the key (JSON merge patch)."""
        return await self._patch_reply(job_id, changes, take_back_attempt=False)

    async def begin_attempt(self, job_id: str) -> int | None:
        """Count one more attempt; the new count, or None when the job is gone."""
        async with self._sql.transaction() as tx:
            value = await tx.scalar(
                "UPDATE jobs SET attempts = attempts + 1 WHERE id = ? RETURNING attempts",
                (job_id,),
            )
        return None if value is None else int(value)

    async def defer(self, job_id: str, **reply_changes: Any) -> bool:
        """The job was put off by a shutdown, not by a crash: take back its attempt and
        merge `reply_changes` (the notice the person got)."""
        return await self._patch_reply(job_id, reply_changes, take_back_attempt=True)

    async def _patch_reply(
        self, job_id: str, changes: JSONDict, *, take_back_attempt: bool
    ) -> bool:
        """Read, merge (in Python: one behaviour on both engines) and write back, with the
        row locked meanwhile (FOR UPDATE; SQLite's write transaction locks the file)."""
        lock = " FOR UPDATE" if self._sql.dialect.name == "postgresql" else ""
        greatest = self._sql.dialect.greatest
        attempts = f"{greatest}(attempts - 1, 0)" if take_back_attempt else "attempts"
        async with self._sql.transaction() as tx:
            reply = await tx.scalar(f"SELECT reply FROM jobs WHERE id = ?{lock}", (job_id,))
            if reply is None:
                return False
            merged = merge_patch(json.loads(reply), changes)
            await tx.execute(
                f"UPDATE jobs SET reply = ?, attempts = {attempts} WHERE id = ?",
                (json.dumps(merged), job_id),
            )
        return True

    async def delete(self, job_id: str) -> bool:
        async with self._sql.transaction() as tx:
            return await tx.execute("DELETE FROM jobs WHERE id = ?", (job_id,)) > 0

    async def finish(self, job_id: str) -> JSONDict | None:
        """Delete the job (answered) and return its reply reference as it was at that moment
        (None: no such job). One statement, so a process adding to the reference meanwhile
        (`update_reply`: a status message it just posted) either did so before, and it is in
        what this returns, or finds no row after, and tidies up itself."""
        async with self._sql.transaction() as tx:
            reply = await tx.scalar("DELETE FROM jobs WHERE id = ? RETURNING reply", (job_id,))
        if reply is None:
            return None
        merged: JSONDict = json.loads(reply)
        return merged

    async def delete_older_than(self, cutoff_ms: int) -> int:
        """Drop jobs nobody finished in time (their raw ids must not stay forever)."""
        async with self._sql.transaction() as tx:
            return await tx.execute("DELETE FROM jobs WHERE created_at < ?", (cutoff_ms,))

    @staticmethod
    async def delete_owned(tx: Tx, user_hash: str) -> int:
        """Inside a caller's transaction (forget): every job of one person."""
        return await tx.execute("DELETE FROM jobs WHERE user_hash = ?", (user_hash,))
