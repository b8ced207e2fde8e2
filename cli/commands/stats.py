"""`animebot stats [--days N] [--csv]`: the usage statistics of the database named by the
settings (ANIMEBOT_DB, or ANIMEBOT_DATA/animebot.sqlite3) as a terminal table or CSV."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cli.common import positive_int
from service.startup import load_settings

if TYPE_CHECKING:
    from cli.common import Subparsers
    from storage import StatsSummary


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "stats",
        help="print usage statistics",
        description="Print the usage statistics (conversions per day, platform and style, "
        "latency, cache hit rate, errors) of the database named by ANIMEBOT_DB or "
        "ANIMEBOT_DATA. Safe while animebot serve is running.",
    )
    p.add_argument("--days", type=positive_int, default=30, metavar="N", help="window (30)")
    p.add_argument("--csv", action="store_true", help="print CSV rows instead of a table")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings("stats")
    if settings is None:
        return 2
    path = settings.db.target
    if isinstance(path, Path) and not path.is_file():
        # A fresh install has simply recorded nothing yet: not a failure (like `purge`). The
        # note goes to stderr with --csv, so the CSV output stays valid (empty).
        print(
            f"nothing recorded yet: no database at {path} (if animebot keeps its data "
            "elsewhere, set ANIMEBOT_DATA or ANIMEBOT_DB)",
            file=sys.stderr if args.csv else sys.stdout,
        )
        return 0
    summary = asyncio.run(_summary(path, args.days, settings.db.key_file))
    if args.csv:
        csv.writer(sys.stdout, lineterminator="\n").writerows(summary.to_csv_rows())
    else:
        print(table(summary))
    return 0


async def _summary(path: Path | str, days: int, key_file: Path | None) -> StatsSummary:
    from storage import Database

    async with await Database.open(path, key_file=key_file) as db:
        return await db.stats.summary(days=days)


def _day(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))


def _ms(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,} ms"


def _columns(rows: list[tuple[str, ...]], right: set[int] | None = None) -> list[str]:
    right = right or set()
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def table(s: StatsSummary) -> str:
    out = [
        f"animebot statistics: last {s.days} days ({_day(s.start_ms)} to {_day(s.end_ms)} UTC)",
        "",
        *_columns(
            [
                ("requests", f"{s.total:,}"),
                ("converted", f"{s.ok:,}"),
                ("errors", f"{s.error:,}"),
                ("refused", f"{s.refused:,}"),
                ("people", f"{s.unique_users:,}"),
                ("cache hit rate", f"{s.cache_hit_rate:.0%} ({s.cache_hits:,} of {s.ok:,})"),
            ]
        ),
        "",
        "latency of uncached conversions",
        *(
            "  " + line
            for line in _columns(
                [
                    ("", "p50", "p95"),
                    ("queue wait", _ms(s.queue_wait_p50_ms), _ms(s.queue_wait_p95_ms)),
                    ("compute", _ms(s.compute_p50_ms), _ms(s.compute_p95_ms)),
                ],
                right={1, 2},
            )
        ),
    ]
    platforms = sorted({d.platform for d in s.per_day})
    out += ["", "conversions per day (UTC)"]
    if platforms:
        per_day: dict[str, dict[str, int]] = {}
        for d in s.per_day:
            per_day.setdefault(d.day, {})[d.platform] = d.conversions
        rows = [("day", *platforms, "total")]
        for day in sorted(per_day):
            counts = [per_day[day].get(p, 0) for p in platforms]
            rows.append((day, *(f"{n:,}" for n in counts), f"{sum(counts):,}"))
        out += ["  " + line for line in _columns(rows, right=set(range(1, len(platforms) + 2)))]
    else:
        out.append("  none")
    for title, totals in (
        ("per platform", s.per_platform),
        ("per style", s.per_style),
        ("errors by kind", s.error_kinds),
        ("refusals by reason", s.refusal_reasons),
    ):
        out += ["", title]
        if totals:
            ordered = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
            out += ["  " + line for line in _columns([(k, f"{n:,}") for k, n in ordered], {1})]
        else:
            out.append("  none")
    return "\n".join(out)
