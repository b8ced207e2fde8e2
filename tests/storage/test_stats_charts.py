"""service.charts renders the statistics as a PNG, also for a fresh install with no data."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from service.charts import render_stats_png
from storage import Database, DayCount, StatsSummary, UsageRecord

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOW = 1_700_000_000.0
ROOT = Path(__file__).resolve().parents[2]


def decode(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def ink(image: Image.Image) -> int:
    """Number of distinct colours: a blank canvas has one or two."""
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours) if colours else 1 << 20


def test_empty_summary_renders() -> None:
    png = render_stats_png(StatsSummary.empty(now=NOW))
    image = decode(png)
    assert image.size == (1200, 750)
    assert len(png) > 10_000 and ink(image) > 10


def test_populated_summary_renders_differently() -> None:
    summary = StatsSummary(
        days=7,
        start_ms=int((NOW - 7 * 86_400) * 1000),
        end_ms=int(NOW * 1000),
        per_day=[
            DayCount("2023-11-10", "telegram", 12),
            DayCount("2023-11-10", "discord", 4),
            DayCount("2023-11-14", "web", 7),
            DayCount("2023-01-01", "web", 99),  # outside the window: ignored, no crash
        ],
        per_style={"hayao": 15, "paprika": 5, "shinkai": 3},
        per_platform={"telegram": 12, "web": 7, "discord": 4},
        total=30,
        ok=23,
        error=4,
        refused=3,
        unique_users=9,
        cache_hits=6,
        cache_hit_rate=6 / 23,
        queue_wait_p50_ms=40,
        queue_wait_p95_ms=900,
        compute_p50_ms=1800,
        compute_p95_ms=None,
        error_kinds={"damaged": 3, "too_large": 1},
        refusal_reasons={"busy": 2, "quota": 1},
    )
    png = render_stats_png(summary, title="test bot")
    empty = render_stats_png(StatsSummary.empty(days=7, now=NOW))
    image = decode(png)
    assert image.size == (1200, 750)
    assert len(png) > 20_000 and png != empty
    assert ink(image) > ink(decode(empty))


async def test_renders_real_summary_from_threads(db: Database) -> None:
    """A summary read from either backend (SQLite, PostgreSQL) renders."""
    for i in range(20):
        await db.usage.record(
            UsageRecord(
                platform=("telegram", "web")[i % 2],
                status="ok" if i % 5 else "error",
                style=("hayao", "paprika")[i % 2],
                compute_ms=100 + i,
                queue_wait_ms=i,
                error_kind=None if i % 5 else "damaged",
            )
        )
    summary = await db.stats.summary()
    # The service renders off the event loop; concurrent renders must not interfere.
    pngs = await asyncio.gather(*(asyncio.to_thread(render_stats_png, summary) for _ in range(3)))
    assert len(set(pngs)) == 1
    decode(pngs[0])


def test_charts_do_not_use_pyplot() -> None:
    code = (
        "import sys; from service.charts import render_stats_png; "
        "from storage import StatsSummary; render_stats_png(StatsSummary.empty()); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


async def test_the_stats_chart_title_says_its_window_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/stats (both bots) and the dashboard's PNG: "… last 30 days", not "… — last 30 days"
    twice."""
    from matplotlib.figure import Figure

    from service.runtime import Runtime
    from service.settings import Settings

    titles: list[str] = []
    suptitle = Figure.suptitle

    def spy(self: Figure, t: str, **kwargs: Any) -> Any:
        titles.append(t)
        return suptitle(self, t, **kwargs)

    monkeypatch.setattr(Figure, "suptitle", spy)
    runtime = await Runtime.start(Settings(data_dir=tmp_path / "data", workers=1), warm=False)
    try:
        decode(await runtime.service.stats_chart(30))
        decode(await runtime.service.stats_chart(7))
    finally:
        await runtime.stop()
    assert len(titles) == 2
    for title, days in zip(titles, (30, 7), strict=True):
        assert title.count(f"last {days} days") == 1, title
        assert title.count("days") == 1, title
