"""The admin dashboard, behind ANIMEBOT_ADMIN_TOKEN.

Sign in through the form (a server-side session behind an HttpOnly, SameSite=Strict cookie;
signing out ends it) or send `Authorization: Bearer <token>`. Comparisons are constant-time;
failed attempts are limited per client address (a browser that signed in before is limited on
its own, so guessing from its address cannot lock its owner out); cross-site sign-ins and
sign-outs are refused; the token is never logged. See `web.admin_auth`. Without a configured
token the dashboard is off and says how to turn it on.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

import i18n
from core.errors import InputError
from service.summary import StatsSummary
from web.admin_auth import (
    ADMIN_COOKIE,
    DEVICE_COOKIE,
    DEVICE_S,
    SESSION_S,
    Verdict,
    cross_site,
)
from web.app import STATE, WebState, json_error
from web.forms import read_form
from web.lang import remember_language, request_language, supported
from web.routes_public import html_response, page, style_label
from web.templates import render, script_json

log = logging.getLogger("animebot.web.admin")

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


def authorized(request: web.Request) -> tuple[bool, float]:
    """(signed in?, seconds to wait when the client's address is locked by failed attempts).

    A bearer token is an attempt like a sign-in: counted per client address when wrong."""
    state = request.app[STATE]
    if not state.runtime.settings.admin_token:
        return False, 0.0
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given.strip():
        client = state.client(request)
        verdict, wait = state.admin.check_token(f"addr:{client}", given)
        if verdict is Verdict.WRONG:
            log.warning("admin bearer token refused for %s", client)
        return verdict is Verdict.OK, wait
    return state.admin.session_valid(request.cookies.get(ADMIN_COOKIE, "")), 0.0


def _secure_cookie(request: web.Request, state: WebState) -> bool:
    return request.secure or state.runtime.settings.public_url.startswith("https://")


def _cross_site_refusal(request: web.Request, state: WebState, lang: str) -> web.Response | None:
    if not cross_site(request, state.runtime.settings.public_url):
        return None
    log.warning("admin %s refused: a cross-site request", request.path)
    return json_error(403, "cross_site", i18n.t("web.admin_cross_site", lang))


def _too_many(wait: float) -> int:
    return max(1, round(wait + 0.5))


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
        {"error": error, "error_hidden": "" if error else "hidden", "days": days, "lang": lang},
    )
    title = i18n.t("web.admin_login_title", lang)
    response = html_response(
        page(state, lang, title=title, content_html=content, script="admin.js"), status=status
    )
    if status in (401, 429):
        response.headers["WWW-Authenticate"] = 'Bearer realm="animebot admin"'
    return response


async def dashboard(request: web.Request) -> web.Response:
    state = request.app[STATE]
    lang = request_language(request)
    if not state.runtime.settings.admin_token:
        return _disabled_page(state, lang)
    days = _days(request) or DEFAULT_DAYS
    ok, wait = authorized(request)
    if not ok:
        status = 429 if wait > 0 else 401
        response = _login_page(state, lang, status=status, days=days)
        if wait > 0:
            response.headers["Retry-After"] = str(_too_many(wait))
        remember_language(request, response)  # the sign-in page's choice, for the dashboard
        return response
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
    if not state.runtime.settings.admin_token:
        return _disabled_page(state, lang)
    refusal = _cross_site_refusal(request, state, lang)
    if refusal is not None:
        return refusal
    try:
        form = await read_form(request)
    except InputError as exc:  # malformed, too many fields, a file: bad input, never a 500
        return json_error(400, exc.code, i18n.error_message(exc, lang))
    chosen = form.get("lang")
    lang = request_language(request, chosen if isinstance(chosen, str) else None)
    given = form.get("token")
    days_raw = form.get("days")
    days = int(days_raw) if isinstance(days_raw, str) and days_raw.isdigit() else DEFAULT_DAYS
    days = days if 1 <= days <= MAX_DAYS else DEFAULT_DAYS
    client = state.client(request)
    device = state.admin.device(request.cookies.get(DEVICE_COOKIE, ""))
    bucket = f"device:{device}" if device else f"addr:{client}"
    verdict, wait = state.admin.check_token(bucket, given if isinstance(given, str) else "")
    if verdict is Verdict.LOCKED:
        seconds = _too_many(wait)
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
    if verdict is Verdict.WRONG:
        log.warning("admin sign-in failed from %s", client)
        return _login_page(
            state, lang, status=401, error=i18n.t("web.admin_wrong_token", lang), days=days
        )
    log.info("admin signed in from %s", client)
    query = {"days": str(days)}
    if supported(chosen if isinstance(chosen, str) else None):
        query["lang"] = lang  # the dashboard keeps the language chosen on the sign-in page
    response = web.HTTPSeeOther(f"/admin?{urlencode(query)}")
    secure = _secure_cookie(request, state)
    response.set_cookie(
        ADMIN_COOKIE,
        state.admin.new_session(),
        max_age=SESSION_S,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )
    if device is None:
        response.set_cookie(
            DEVICE_COOKIE,
            state.admin.new_device(),
            max_age=DEVICE_S,
            path="/admin",
            httponly=True,
            samesite="Strict",
            secure=secure,
        )
    raise response


async def logout(request: web.Request) -> web.Response:
    state = request.app[STATE]
    refusal = _cross_site_refusal(request, state, request_language(request))
    if refusal is not None:
        return refusal
    state.admin.end_session(request.cookies.get(ADMIN_COOKIE, ""))  # a copy stops working too
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
    failures = await state.runtime.service.recent_failures(FAILURES_SHOWN)
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
    ok, wait = authorized(request)
    if wait > 0:
        seconds = _too_many(wait)
        message = i18n.t("web.admin_too_many", lang, seconds=seconds)
        return json_error(429, "too_many_attempts", message, retry_after_s=seconds)
    if not ok:
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
