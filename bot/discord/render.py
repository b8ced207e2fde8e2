"""What the bot posts: embeds for results and statistics, and files sized to the upload limit.

Pure functions of their inputs (no Discord calls). `fit_to_limit` decodes and re-encodes
the statistics chart, so callers run it off the event loop (`fit_file` does, in a thread);
conversion results arrive already encoded to fit (the engine's `max_bytes`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import discord

from core.errors import AnimeBotError
from core.imageio import decode, encode_to_fit
from i18n import catalogue, note_message, t
from service.convert import ConversionReply
from service.summary import StatsSummary

COLOUR = discord.Colour(0xE86A92)
MAX_FILES_PER_MESSAGE = 10  # Discord's limit of attachments on one message
FIELD_LIMIT = 1024  # characters in an embed field value


@dataclass(frozen=True)
class OutFile:
    """One file ready to upload."""

    data: bytes
    filename: str
    recompressed: bool = False
    spoiler: bool = False

    def to_discord(self) -> discord.File:
        import io

        return discord.File(io.BytesIO(self.data), filename=self.filename, spoiler=self.spoiler)


def style_label(name: str, lang: str, titles: Mapping[str, str]) -> str:
    """A style's display name: the catalogue's translation, else the model's own title."""
    key = f"style.{name}"
    if key in catalogue("en"):
        return t(key, lang)
    return titles.get(name, name)


def fit_to_limit(data: bytes, limit: int) -> tuple[bytes, bool] | None:
    """`data` if it fits in `limit` bytes, else a JPEG re-encoding that fits
    (`core.imageio.encode_to_fit`), with True for "recompressed"; None if nothing fits. For
    pictures the service hands over as they are (the statistics chart); conversion results
    are encoded to fit by the engine itself."""
    if len(data) <= limit:
        return data, False
    try:
        image = decode(data, max_pixels=200_000_000, max_bytes=len(data) + 1, min_side=1)
    except AnimeBotError:
        return None
    fitted = encode_to_fit(image.rgb, image.alpha, limit)
    return None if fitted is None else (fitted.data, True)


async def fit_file(
    data: bytes, limit: int, *, stem: str, ext: str, spoiler: bool = False
) -> OutFile | None:
    """An upload named `stem.ext` (or `stem.jpg` once recompressed) that fits in `limit`."""
    fitted = await asyncio.to_thread(fit_to_limit, data, limit)
    if fitted is None:
        return None
    out, recompressed = fitted
    suffix = "jpg" if recompressed else ext
    return OutFile(out, f"{stem}.{suffix}", recompressed, spoiler)


def pack(files: Sequence[OutFile], limit: int) -> list[list[OutFile]]:
    """Group files into messages whose uploads stay within `limit` bytes in all (and at most
    ten files each), keeping their order. Each file must fit on its own."""
    groups: list[list[OutFile]] = []
    current: list[OutFile] = []
    used = 0
    for f in files:
        if current and (used + len(f.data) > limit or len(current) >= MAX_FILES_PER_MESSAGE):
            groups.append(current)
            current, used = [], 0
        current.append(f)
        used += len(f.data)
    if current:
        groups.append(current)
    return groups


def _notes(notes: Iterable[str], lang: str, recompressed: bool) -> list[str]:
    lines = [text for note in dict.fromkeys(notes) if (text := note_message(note, lang))]
    if recompressed:
        lines.append(t("dc.note.recompressed", lang))
    return lines


def _seconds(ms: float, lang: str) -> str:
    return t("dc.result.seconds", lang, seconds=f"{ms / 1000:.1f}")


def _clip(text: str, limit: int = FIELD_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def result_embed(reply: ConversionReply, out: OutFile, lang: str, style: str) -> discord.Embed:
    """The short embed under a /anime result: style, time, faces found and notes."""
    embed = discord.Embed(title=t("dc.result.title", lang, style=style), colour=COLOUR)
    embed.add_field(name=t("dc.result.time", lang), value=_seconds(reply.total_ms, lang))
    faces = str(reply.faces_found) if reply.faces else t("faces.off", lang)
    embed.add_field(name=t("dc.result.faces", lang), value=faces)
    notes = _notes(reply.notes, lang, out.recompressed)
    if notes:
        embed.add_field(
            name=t("dc.result.notes", lang), value=_clip("\n".join(notes)), inline=False
        )
    if not out.spoiler:  # an embedded picture would show what the spoiler hides
        embed.set_image(url=f"attachment://{out.filename}")
    return embed


@dataclass(frozen=True)
class MenuOutcome:
    """What the context menu made of a message: results, failures and what it skipped."""

    replies: Sequence[ConversionReply]
    files: Sequence[OutFile]
    failures: Sequence[tuple[str, str]]  # (filename, translated reason)
    skipped_over_limit: int
    skipped_not_images: int
    limit: int
    elapsed_ms: float


def menu_embed(outcome: MenuOutcome, lang: str, styles: Sequence[str]) -> discord.Embed:
    """One summary embed for the Anime-fy context menu's result files."""
    title = t("dc.result.title", lang, style=", ".join(dict.fromkeys(styles)))
    embed = discord.Embed(title=title, colour=COLOUR)
    embed.add_field(name=t("dc.result.converted", lang), value=str(len(outcome.files)))
    embed.add_field(name=t("dc.result.time", lang), value=_seconds(outcome.elapsed_ms, lang))
    if outcome.replies and outcome.replies[0].faces:
        found = sum(r.faces_found for r in outcome.replies)
        embed.add_field(name=t("dc.result.faces", lang), value=str(found))
    lines = _notes(
        (n for r in outcome.replies for n in r.notes),
        lang,
        any(f.recompressed for f in outcome.files),
    )
    if outcome.skipped_over_limit:
        lines.append(
            t(
                "dc.menu.skipped_limit",
                lang,
                limit=outcome.limit,
                skipped=outcome.skipped_over_limit,
            )
        )
    if outcome.skipped_not_images:
        lines.append(t("dc.menu.skipped_other", lang, skipped=outcome.skipped_not_images))
    if lines:
        embed.add_field(
            name=t("dc.result.notes", lang), value=_clip("\n".join(lines)), inline=False
        )
    if outcome.failures:
        failed = "\n".join(
            t("dc.result.failed_item", lang, filename=name, reason=reason)
            for name, reason in outcome.failures
        )
        embed.add_field(name=t("dc.result.failed", lang), value=_clip(failed), inline=False)
    return embed


def _counts(values: Mapping[str, int], lang: str) -> str:
    if not values:
        return t("dc.stats.none", lang)
    ordered = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    return _clip("\n".join(f"{name}: {count}" for name, count in ordered))


def _percentiles(p50: int | None, p95: int | None, lang: str) -> str:
    if p50 is None or p95 is None:
        return t("dc.stats.none", lang)
    return t("dc.stats.ms", lang, p50=p50, p95=p95)


def stats_embed(
    summary: StatsSummary, lang: str, titles: Mapping[str, str], chart_name: str | None
) -> discord.Embed:
    """The /stats summary: totals, people, cache, latency, and counts by style/platform/error."""
    embed = discord.Embed(title=t("dc.stats.title", lang, days=summary.days), colour=COLOUR)
    embed.add_field(
        name=t("dc.stats.requests", lang),
        value=t(
            "dc.stats.requests_value",
            lang,
            total=summary.total,
            ok=summary.ok,
            error=summary.error,
            refused=summary.refused,
        ),
        inline=False,
    )
    embed.add_field(name=t("dc.stats.users", lang), value=str(summary.unique_users))
    embed.add_field(name=t("dc.stats.cache", lang), value=f"{summary.cache_hit_rate * 100:.0f}%")
    embed.add_field(
        name=t("dc.stats.compute", lang),
        value=_percentiles(summary.compute_p50_ms, summary.compute_p95_ms, lang),
        inline=False,
    )
    embed.add_field(
        name=t("dc.stats.queue", lang),
        value=_percentiles(summary.queue_wait_p50_ms, summary.queue_wait_p95_ms, lang),
        inline=False,
    )
    styles = {style_label(k, lang, titles): v for k, v in summary.per_style.items()}
    embed.add_field(name=t("dc.stats.styles", lang), value=_counts(styles, lang))
    embed.add_field(name=t("dc.stats.platforms", lang), value=_counts(summary.per_platform, lang))
    problems = {**summary.error_kinds, **summary.refusal_reasons}
    embed.add_field(name=t("dc.stats.errors", lang), value=_counts(problems, lang))
    if chart_name is not None:
        embed.set_image(url=f"attachment://{chart_name}")
    return embed
