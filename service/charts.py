"""PNG charts of the usage statistics (for /stats in the bots and the web dashboard).

Uses matplotlib's object-oriented API with the Agg canvas, never pyplot, so there is no
global figure state. Rendering takes a few hundred milliseconds: call it through
`asyncio.to_thread`. Matplotlib's font cache is shared between threads, so renders are
serialised by a lock.
"""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from storage.stats import StatsSummary

_RENDER_LOCK = threading.Lock()
_NO_DATA = "no data yet"


def render_stats_png(summary: StatsSummary, *, title: str | None = None, dpi: int = 100) -> bytes:
    """Render conversions per day (stacked by platform), conversions per style, latency
    p50/p95 and a text panel (totals, cache hit rate, errors, refusals) as PNG bytes.

    `title` is the whole title, used as given (default "animebot usage — last N days")."""
    with _RENDER_LOCK:
        fig = Figure(figsize=(12, 7.5), dpi=dpi, layout="constrained")
        FigureCanvasAgg(fig)
        fig.suptitle(title or chart_title(summary.days), fontsize=14)
        grid = fig.add_gridspec(2, 3, height_ratios=(1.1, 1))
        _per_day(fig.add_subplot(grid[0, :]), summary)
        _per_style(fig.add_subplot(grid[1, 0]), summary)
        _latency(fig.add_subplot(grid[1, 1]), summary)
        _text_panel(fig.add_subplot(grid[1, 2]), summary)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()


def chart_title(days: int) -> str:
    return f"animebot usage — last {days} days"


def _days(summary: StatsSummary) -> list[str]:
    """Every UTC day of the window, so quiet days show as gaps rather than vanish."""
    start = datetime.fromtimestamp(summary.start_ms / 1000, UTC).date()
    end = datetime.fromtimestamp(summary.end_ms / 1000, UTC).date()
    span = (end - start).days
    return [(start + timedelta(days=i)).isoformat() for i in range(span + 1)]


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, _NO_DATA, ha="center", va="center", transform=ax.transAxes, color="grey")


def _per_day(ax: Axes, summary: StatsSummary) -> None:
    ax.set_title("Conversions per day (UTC)")
    days = _days(summary)
    index = {day: i for i, day in enumerate(days)}
    platforms = sorted({d.platform for d in summary.per_day})
    bottom = [0] * len(days)
    for platform in platforms:
        heights = [0] * len(days)
        for d in summary.per_day:
            if d.platform == platform and d.day in index:
                heights[index[d.day]] += d.conversions
        ax.bar(range(len(days)), heights, bottom=bottom, label=platform, width=0.8)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    step = max(1, len(days) // 15)
    ticks = list(range(0, len(days), step))
    ax.set_xticks(ticks, [days[i][5:] for i in ticks], rotation=45, ha="right")
    ax.set_xlim(-0.6, len(days) - 0.4)
    ax.set_ylabel("conversions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if platforms:
        ax.legend(loc="upper left", fontsize="small")
    else:
        ax.set_ylim(0, 1)
        _no_data(ax)


def _per_style(ax: Axes, summary: StatsSummary) -> None:
    ax.set_title("Conversions per style")
    if not summary.per_style:
        ax.set_xticks([])
        ax.set_yticks([])
        _no_data(ax)
        return
    styles = sorted(summary.per_style.items(), key=lambda kv: (-kv[1], kv[0]))[:12]
    names = [name for name, _ in reversed(styles)]
    bars = ax.barh(names, [count for _, count in reversed(styles)], color="tab:purple")
    ax.bar_label(bars, padding=2, fontsize="small")
    ax.set_xlabel("conversions")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(x=0.15)


def _latency(ax: Axes, summary: StatsSummary) -> None:
    ax.set_title("Latency, uncached (ms)")
    groups = ["queue wait", "compute"]
    p50 = [summary.queue_wait_p50_ms, summary.compute_p50_ms]
    p95 = [summary.queue_wait_p95_ms, summary.compute_p95_ms]
    if all(v is None for v in (*p50, *p95)):
        ax.set_xticks([])
        ax.set_yticks([])
        _no_data(ax)
        return
    width = 0.38
    for offset, label, values in ((-width / 2, "p50", p50), (width / 2, "p95", p95)):
        bars = ax.bar(
            [i + offset for i in range(len(groups))],
            [0 if v is None else v for v in values],
            width=width,
            label=label,
        )
        ax.bar_label(bars, labels=["n/a" if v is None else str(v) for v in values], fontsize=8)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel("ms")
    ax.margins(y=0.15)
    ax.legend(fontsize="small")


def _top(counts: dict[str, int], limit: int = 5) -> list[str]:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    lines = [f"  {kind}: {n}" for kind, n in ordered[:limit]]
    if len(ordered) > limit:
        lines.append(f"  … {len(ordered) - limit} more")
    return lines or ["  none"]


def _text_panel(ax: Axes, summary: StatsSummary) -> None:
    ax.set_axis_off()
    ax.set_title("Summary")
    lines = [
        f"requests: {summary.total}",
        f"ok: {summary.ok}   errors: {summary.error}   refused: {summary.refused}",
        f"unique users: {summary.unique_users}",
        f"cache hit rate: {summary.cache_hit_rate:.0%} ({summary.cache_hits} of {summary.ok})",
        "",
        "errors:",
        *_top(summary.error_kinds),
        "refusals:",
        *_top(summary.refusal_reasons),
    ]
    ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=9)
