"""The admin dashboard, behind ANIMEBOT_ADMIN_TOKEN.

Sign in through the form (an HttpOnly, SameSite=Strict session cookie signed with the token, so
changing the token signs everyone out) or send `Authorization: Bearer <token>`. Comparisons are
constant-time; failed sign-ins are rate limited per address; the token is never logged. Without
a configured token the dashboard is off and says how to turn it on.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

import i18n
from storage import StatsSummary
from web.app import STATE, WebState, json_error
from web.lang import remember_language, request_language
from web.routes_public import html_response, page, style_label
from web.templates import render, script_json

log = logging.getLogger("animebot.web.admin")

ADMIN_COOKIE = "animebot_admin"
SESSION_S = 12 * 3600
DAY_CHOICES = (1, 7, 30, 90, 365)
DEFAULT_DAYS = 30
MAX_DAYS = 3650
FAILURES_SHOWN = 20


def setup(app: web.Application) -> None:
    app.router.add_get("/admin", dashboard, name="admin")
    app.router.add_post("/admin/login", login, name="admin_login")
    app.router.add_post("/admin/logout", logout, name="admin_logout")
    app.router.add_get("/api/admin/stats", stats_json, name="admin_stats")
    app.router.add_get("/api/admin/chart.png", chart_png, name="admin_chart")


# -- authentication -----------------------------------------------------------------------------


def session_value(token: str, expires: int) -> str:
    message = f"animebot-admin-session:{expires}".encode()
    signature = hmac.new(token.encode(), message, hashlib.sha256).hexdigest()
    return f"{expires}.{signature}"


def authorized(request: web.Request) -> bool:
    token = request.app[STATE].runtime.settings.admin_token
    if not token:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given.strip():
        return hmac.compare_digest(given.strip().encode(), token.encode())
    cookie = request.cookies.get(ADMIN_COOKIE, "")
    expires_text, _, _ = cookie.partition(".")
    if not expires_text.isdigit() or int(expires_text) < time.time():
        return False
    return hmac.compare_digest(cookie.encode(), session_value(token, int(expires_text)).encode())


def _secure_cookie(request: web.Request, state: WebState) -> bool:
    return request.secure or state.runtime.settings.public_url.startswith("https://")


# -- pages --------------------------------------------------------------------------------------


def _days(request: web.Request) -> int | None:
    raw = request.query.get("days", str(DEFAULT_DAYS)).strip()
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        return None
    return int(raw)


def _disabled_page(state: WebState, lang: str) -> web.Response:
    content = render(state.assets.templates["admin_disabled.html"], lang, {})
    title = i18n.t("web.admin_disabled_title", lang)
    return html_response(
        page(state, lang, title=title, content_html=content, script="admin.js"), status=404
    )


def _login_page(
    state: WebState, lang: str, *, status: int, error: str = "", days: int = DEFAULT_DAYS
) -> web.Response:
    content = render(
        state.assets.templates["admin_login.html"],
        lang,
        {"error": error, "error_hidden": "" if error else "hidden", "days": days},
    )
    title = i18n.t("web.admin_login_title", lang)
    response = html_response(
        page(state, lang, title=title, content_html=content, script="admin.js"), status=status
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="animebot admin"'
    return response


async def dashboard(request: web.Request) -> web.Response:
    state = request.app[STATE]
    lang = request_language(request)
    if not state.runtime.settings.admin_token:
        return _disabled_page(state, lang)
    days = _days(request) or DEFAULT_DAYS
    if not authorized(request):
        return _login_page(state, lang, status=401, days=days)
    payload = await stats_payload(state, days, lang)
    choices = sorted({*DAY_CHOICES, days})
    options = "".join(
        f'<option value="{d}"{" selected" if d == days else ""}>'
        f"{i18n.t('web.admin_days_option', lang, days=d)}</option>"
        for d in choices
    )
    english = i18n.catalogue(i18n.DEFAULT_LANGUAGE)
    strings = {key: i18n.t(key, lang) for key in english if key.startswith("web.admin_")}
    content = render(
        state.assets.templates["admin.html"],
        lang,
        {
            "days": days,
            "day_options_html": options,
            "strings_json": script_json(strings),
            "stats_json": script_json(payload),
        },
    )
    title = i18n.t("web.admin_title", lang)
    response = html_response(
        page(state, lang, title=title, content_html=content, script="admin.js")
    )
    remember_language(request, response)
    return response


async def login(request: web.Request) -> web.Response:
    state = request.app[STATE]
    lang = request_language(request)
    token = state.runtime.settings.admin_token
    if not token:
        return _disabled_page(state, lang)
    form = await request.post()
    given = form.get("token")
    days_raw = form.get("days")
    days = int(days_raw) if isinstance(days_raw, str) and days_raw.isdigit() else DEFAULT_DAYS
    days = days if 1 <= days <= MAX_DAYS else DEFAULT_DAYS
    client = request.remote or "unknown"
    wait = state.login_limiter.try_acquire(client)
    if wait > 0:
        seconds = max(1, round(wait + 0.5))
        log.warning("admin sign-in refused for %s: too many attempts", client)
        response = _login_page(
            state,
            lang,
            status=429,
            error=i18n.t("web.admin_too_many", lang, seconds=seconds),
            days=days,
        )
        response.headers["Retry-After"] = str(seconds)
        return response
    if not isinstance(given, str) or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        log.warning("admin sign-in failed from %s", client)
        return _login_page(
            state, lang, status=401, error=i18n.t("web.admin_wrong_token", lang), days=days
        )
    state.login_limiter.refund(client)
    log.info("admin signed in from %s", client)
    response = web.HTTPSeeOther(f"/admin?days={days}")
    expires = int(time.time()) + SESSION_S
    response.set_cookie(
        ADMIN_COOKIE,
        session_value(token, expires),
        max_age=SESSION_S,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=_secure_cookie(request, state),
    )
    raise response


async def logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther("/admin")
    response.del_cookie(ADMIN_COOKIE, path="/")
    raise response


# -- data ---------------------------------------------------------------------------------------


def day_list(summary: StatsSummary) -> list[str]:
    """Every UTC day of the window, so quiet days show as gaps in the chart."""
    start = datetime.fromtimestamp(summary.start_ms / 1000, UTC).date()
    end = datetime.fromtimestamp(summary.end_ms / 1000, UTC).date()
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


async def stats_payload(state: WebState, days: int, lang: str) -> dict[str, Any]:
    service = state.runtime.service
    summary = await service.stats(days)
    failures = await state.runtime.db.stats.recent_failures(FAILURES_SHOWN)
    return {
        "days": days,
        "summary": summary.to_dict(),
        "day_list": day_list(summary),
        "style_labels": {name: style_label(state, name, lang) for name in summary.per_style},
        "failures": [f._asdict() for f in failures],
        "now": {
            "queue_waiting": service.queue.waiting,
            "running": service.queue.running,
            "inflight": service.inflight,
            "draining": state.draining,
        },
        "generated_at": int(time.time() * 1000),
    }


def _api_refusal(request: web.Request, state: WebState) -> web.Response | None:
    lang = request_language(request)
    if not state.runtime.settings.admin_token:
        return json_error(404, "admin_disabled", i18n.t("web.admin_disabled_title", lang))
    if not authorized(request):
        response = json_error(401, "unauthorized", i18n.t("web.admin_unauthorized", lang))
        response.headers["WWW-Authenticate"] = 'Bearer realm="animebot admin"'
        return response
    return None


async def stats_json(request: web.Request) -> web.Response:
    state = request.app[STATE]
    refusal = _api_refusal(request, state)
    if refusal is not None:
        return refusal
    days = _days(request)
    lang = request_language(request)
    if days is None:
        return json_error(400, "bad_days", i18n.t("web.admin_bad_days", lang, max=MAX_DAYS))
    response = web.json_response(await stats_payload(state, days, lang))
    response.headers["Cache-Control"] = "no-store"
    return response


async def chart_png(request: web.Request) -> web.Response:
    state = request.app[STATE]
    refusal = _api_refusal(request, state)
    if refusal is not None:
        return refusal
    days = _days(request)
    if days is None:
        lang = request_language(request)
        return json_error(400, "bad_days", i18n.t("web.admin_bad_days", lang, max=MAX_DAYS))
    png = await state.runtime.service.stats_chart(days)
    response = web.Response(body=png, content_type="image/png")
    response.headers["Cache-Control"] = "no-store"
    return response
