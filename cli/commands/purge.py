"""`animebot purge`: apply the cache TTLs and disk budget of the settings to the database named
by them (ANIMEBOT_DB, or ANIMEBOT_DATA/animebot.sqlite3) and print what was removed. A running
`animebot serve` does the same every hour; this is for cron jobs and for right now."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from service.startup import load_settings

if TYPE_CHECKING:
    from cli.common import Subparsers
    from service.settings import Settings


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "purge",
        help="delete expired cache entries and old counters now",
        description="Apply ANIMEBOT_RESULT_TTL_DAYS, ANIMEBOT_INPUT_TTL_HOURS and "
        "ANIMEBOT_CACHE_MB to the cache, drop old quota counters and orphaned cache files, and "
        "print what was removed. Safe while animebot serve is running.",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings("purge")
    if settings is None:
        return 2
    path = settings.db.target
    if isinstance(path, Path) and not path.is_file():
        print(f"no database at {path}: nothing to purge")
        return 0
    removed = asyncio.run(_purge(settings))
    print(describe(removed))
    return 0


async def _purge(settings: Settings) -> dict[str, int]:
    from storage import Database

    part = settings.db
    db = await Database.open(
        part.target,
        cache_budget_bytes=part.cache_budget_bytes,
        result_ttl_s=part.result_ttl_s,
        input_ttl_s=part.input_ttl_s,
        key_file=part.key_file,
    )
    async with db:
        return await db.purge()


LABELS = {
    "expired": "expired cache entries",
    "evicted": "cache entries evicted to fit ANIMEBOT_CACHE_MB",
    "quota": "old daily quota counters",
    "rate_limits": "rate-limit buckets untouched for a day",
    "orphans": "orphaned cache files",
}


def describe(removed: dict[str, int]) -> str:
    lines = [f"purged {sum(removed.values()):,} item(s) from the cache and counters:"]
    width = max(len(f"{n:,}") for n in removed.values()) if removed else 1
    for key, count in removed.items():
        lines.append(f"  {count:>{width},}  {LABELS.get(key, key)}")
    return "\n".join(lines)
