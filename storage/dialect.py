"""The few SQL spellings that differ between SQLite and PostgreSQL.

Everything else the repositories write is SQL both engines accept as is: `INSERT … ON CONFLICT
… DO UPDATE … RETURNING`, `DELETE … RETURNING`, window functions, `CAST(… AS BIGINT)`. Named
parameters are written `:name` (or `?`) everywhere; the PostgreSQL connection rewrites them to
`$n` (storage/pg.py). The schema's differences (storage/migrations.py) are here too, so each
migration is written once: SQLite's STRICT tables take INTEGER and REAL only, PostgreSQL gets
the natural width of each column.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    name: str
    greatest: str  # the scalar max of two or more values
    least: str  # the scalar min of two or more values
    blobs_in_db: bool  # cache bytes in the database (bytea) instead of files beside it
    # Schema spellings:
    big_int: str  # an integer that outgrows 32 bits: unix milliseconds, byte sizes, counters
    flag: str  # a 0/1 column (with its own CHECK)
    double: str  # a floating-point column
    auto_id: str  # an auto-numbered primary key column
    table_options: str  # after a CREATE TABLE's closing parenthesis
    keyed_table_options: str  # the same for a table whose rows live in its primary key

    def utc_day(self, ms_column: str) -> str:
        """`YYYY-MM-DD` (UTC) of a column holding unix milliseconds."""
        if self.name == "sqlite":
            return f"strftime('%Y-%m-%d', {ms_column} / 1000, 'unixepoch')"
        return f"to_char(to_timestamp({ms_column} / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

    def is_json(self, column: str) -> str:
        """A CHECK condition: the TEXT column holds valid JSON."""
        if self.name == "sqlite":
            return f"json_valid({column})"
        return f"{column}::jsonb IS NOT NULL"


SQLITE = Dialect(
    "sqlite",
    greatest="max",
    least="min",
    blobs_in_db=False,
    big_int="INTEGER",
    flag="INTEGER",
    double="REAL",
    auto_id="INTEGER PRIMARY KEY AUTOINCREMENT",
    table_options=" STRICT",
    keyed_table_options=" STRICT, WITHOUT ROWID",
)
POSTGRES = Dialect(
    "postgresql",
    greatest="GREATEST",
    least="LEAST",
    blobs_in_db=True,
    big_int="BIGINT",
    flag="SMALLINT",
    double="DOUBLE PRECISION",
    auto_id="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    table_options="",
    keyed_table_options="",
)
