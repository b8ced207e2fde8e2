"""The few SQL spellings that differ between SQLite and PostgreSQL.

Everything else the repositories write is SQL both engines accept as is: `INSERT … ON CONFLICT
… DO UPDATE … RETURNING`, `DELETE … RETURNING`, window functions, `CAST(… AS BIGINT)`. Named
parameters are written `:name` (or `?`) everywhere; the PostgreSQL connection rewrites them to
`$n` (storage/pg.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    name: str
    greatest: str  # the scalar max of two or more values
    least: str  # the scalar min of two or more values
    blobs_in_db: bool  # cache bytes in the database (bytea) instead of files beside it

    def utc_day(self, ms_column: str) -> str:
        """`YYYY-MM-DD` (UTC) of a column holding unix milliseconds."""
        if self.name == "sqlite":
            return f"strftime('%Y-%m-%d', {ms_column} / 1000, 'unixepoch')"
        return f"to_char(to_timestamp({ms_column} / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


SQLITE = Dialect("sqlite", greatest="max", least="min", blobs_in_db=False)
POSTGRES = Dialect("postgresql", greatest="GREATEST", least="LEAST", blobs_in_db=True)
