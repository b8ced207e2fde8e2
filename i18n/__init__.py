"""Message catalogue: every user-facing string, in English, Chinese and Russian.

Strings live in `i18n/locales/<lang>/<namespace>.json` (one namespace per front end plus
`common`), keys are unique across namespaces, and `{placeholders}` are `str.format` fields.
A key missing in one language falls back to English; tests keep the catalogues complete.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

from core.errors import AnimeBotError, ImageTooLarge, ImageTooSmall, UnknownStyle

LANGUAGES = ("en", "zh", "ru")
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "zh": "中文", "ru": "Русский"}
# Script variants: a catalogue of its own that falls back to its base language, for a platform
# that tells them apart. Discord's zh-TW (Traditional Chinese) has the Discord and common
# messages; everyone else's "zh" is Simplified.
VARIANTS = {"zh-TW": "zh"}
_ROOT = Path(__file__).resolve().parent / "locales"


def normalize_language(code: str | None) -> str:
    """Map a platform language code ('zh-hans', 'ru-RU', 'en-GB', None) to a catalogue."""
    if not code:
        return DEFAULT_LANGUAGE
    base = code.replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


@cache
def catalogue(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in sorted((_ROOT / lang).glob("*.json")):
        for key, text in json.loads(path.read_text(encoding="utf-8")).items():
            if key in merged:
                raise ValueError(f"duplicate message key {key!r} in {path}")
            merged[key] = text
    return merged


def t(key: str, lang: str | None = None, /, **params: object) -> str:
    """The message `key` in `lang` (a variant such as "zh-TW" falls back to its base language,
    any language to English), with `params` filled in."""
    text = catalogue(lang).get(key) if lang in VARIANTS else None
    text = text or catalogue(normalize_language(lang)).get(key) or catalogue(DEFAULT_LANGUAGE)[key]
    return text.format(**params) if params else text


def error_message(exc: BaseException, lang: str | None = None) -> str:
    """A translated, human sentence for any failure; never the exception's own text."""
    if not isinstance(exc, AnimeBotError):
        return t("error.internal", lang, ref="-")
    params: dict[str, object] = {}
    seconds = getattr(exc, "retry_after_s", None)
    if seconds is not None:
        params["seconds"] = max(1, math.ceil(seconds))
        params["minutes"] = max(1, math.ceil(seconds / 60))
        params["hours"] = max(1, math.ceil(seconds / 3600))
    if isinstance(exc, ImageTooLarge):
        params["limit_mp"] = max(1, round(exc.limit / 1e6)) if exc.pixels else 0
        params["limit_mb"] = max(1, round(exc.limit / 1024 / 1024)) if not exc.pixels else 0
        key = "error.too_large_pixels" if exc.pixels else "error.too_large_bytes"
        return t(key, lang, **params)
    if isinstance(exc, ImageTooSmall):
        params["min_side"] = exc.min_side
    if isinstance(exc, UnknownStyle):
        params["style"] = exc.style
        params["styles"] = ", ".join(exc.available)
    ref = getattr(exc, "request_id", None)
    params["ref"] = ref or "-"
    extra = getattr(exc, "message_params", None)  # an error's own placeholders
    if isinstance(extra, dict):
        params.update(extra)
    key = f"error.{exc.code}"
    if key not in catalogue(DEFAULT_LANGUAGE):
        key = "error.internal"
    return t(key, lang, **params)


def note_message(note: str, lang: str | None = None) -> str | None:
    """A short remark for a conversion note (e.g. 'animated_first_frame'), if it deserves one."""
    key = f"note.{note}"
    return t(key, lang) if key in catalogue(DEFAULT_LANGUAGE) else None


def clip_notes(
    notes: tuple[str, ...] | list[str],
    lang: str | None = None,
    *,
    seconds: float,
    side: int,
    fps: float,
) -> list[str]:
    """The remarks for a converted clip's notes ('cut', 'downscaled', ...), with its numbers."""
    params = {"seconds": f"{seconds:g}", "side": side, "fps": f"{fps:.3g}"}
    found = [f"note.clip_{note}" for note in notes]
    return [t(key, lang, **params) for key in found if key in catalogue(DEFAULT_LANGUAGE)]
