"""Everything the bot writes, built from the i18n catalogue (keys `tg.*` in telegram.json)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from i18n import LANGUAGES, catalogue, note_message, t
from service.convert import ConversionReply
from service.summary import StatsSummary

# Commands in the menu, in order; /stats (admins only) and /anime (a reply) are left out of
# the menu to keep it short for everyone, but /help mentions /anime.
MENU_COMMANDS = ("start", "help", "style", "faces", "language", "privacy", "forget")
HELP_COMMANDS = ("anime", *MENU_COMMANDS[2:])
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")


def style_label(style: str, lang: str) -> str:
    """A style's name as people read it in `lang` ("Shinkai", "新海诚", "Синкай")."""
    key = f"style.{style}"
    if key in catalogue("en"):
        return t(key, lang)
    return t("style.unknown", lang, name=style)


def style_in_text(text: str | None, styles: Sequence[str]) -> str | None:
    """The first installed style named in free text, by its id or its name in any language
    (case-insensitive): "make it SHINKAI please", "新海诚风格", "в стиле Хаяо"."""
    if not text:
        return None
    folded = text.casefold()
    best: tuple[int, int, str] | None = None  # (position, -length): "hayao classic" over "hayao"
    for style in styles:
        for alias in {style, *(style_label(style, lang) for lang in LANGUAGES)}:
            position = _find(folded, alias.casefold())
            if position >= 0 and (best is None or (position, -len(alias)) < best[:2]):
                best = (position, -len(alias), style)
    return None if best is None else best[2]


def _find(text: str, alias: str) -> int:
    if not alias.strip():
        return -1
    if _CJK.search(alias):  # no spaces between words in Chinese: a substring is a match
        return text.find(alias)
    match = re.search(rf"(?<!\w){re.escape(alias)}(?!\w)", text)
    return match.start() if match else -1


def result_caption(reply: ConversionReply, seconds: float, lang: str) -> str:
    style = style_label(reply.style, lang)
    lines = [t("tg.result.caption", lang, style=style, seconds=f"{seconds:.1f}")]
    lines += [note for n in reply.notes if (note := note_message(n, lang))]
    return "\n".join(lines)


def command_list(lang: str, names: Iterable[str] = HELP_COMMANDS) -> str:
    return "\n".join(f"/{name} — {t(f'tg.cmd.{name}', lang)}" for name in names)


def style_list(styles: Sequence[str], lang: str) -> str:
    return ", ".join(style_label(s, lang) for s in styles)


def stats_summary(summary: StatsSummary, lang: str) -> str:
    def ms(value: int | None) -> str:
        return "–" if value is None else str(value)

    styles = ", ".join(f"{style_label(k, lang)} {v}" for k, v in summary.per_style.items())
    return t(
        "tg.stats.summary",
        lang,
        days=summary.days,
        ok=summary.ok,
        total=summary.total,
        users=summary.unique_users,
        hit_rate=round(summary.cache_hit_rate * 100),
        errors=summary.error,
        refused=summary.refused,
        p50=ms(summary.compute_p50_ms),
        p95=ms(summary.compute_p95_ms),
        styles=styles or "–",
    )
