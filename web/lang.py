"""Which language a web request is answered in: `?lang=`, then the language cookie, then the
browser's Accept-Language (q-values honoured), then English."""

from __future__ import annotations

from aiohttp import web

from i18n import DEFAULT_LANGUAGE, LANGUAGES

LANG_COOKIE = "animebot_lang"


def parse_accept_language(header: str | None) -> list[str]:
    """Supported catalogues named by an Accept-Language header, best first."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().replace("_", "-").lower()
        if not tag:
            continue
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        base = tag.split("-")[0]
        if quality > 0 and base in LANGUAGES:
            ranked.append((-quality, index, base))
    seen: list[str] = []
    for _, _, base in sorted(ranked):
        if base not in seen:
            seen.append(base)
    return seen


def supported(code: str | None) -> str | None:
    """The catalogue for an explicit choice, or None when it is not one we have."""
    if not code:
        return None
    base = code.strip().replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def request_language(request: web.Request, explicit: str | None = None) -> str:
    for choice in (explicit, request.query.get("lang"), request.cookies.get(LANG_COOKIE)):
        lang = supported(choice)
        if lang:
            return lang
    ranked = parse_accept_language(request.headers.get("Accept-Language"))
    return ranked[0] if ranked else DEFAULT_LANGUAGE


def remember_language(request: web.Request, response: web.StreamResponse) -> None:
    """Keep an explicit `?lang=` choice for later visits."""
    lang = supported(request.query.get("lang"))
    if lang and request.cookies.get(LANG_COOKIE) != lang:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86400, path="/", samesite="Lax", httponly=True
        )
