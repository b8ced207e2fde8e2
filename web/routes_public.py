"""The photo page and the JSON API it uses.

`POST /api/convert` (multipart: image, style, faces, side_by_side, format, lang) converts
through the same job lifecycle (`runtime.runner`) as the bots: platform "web", the person
identified by a random anonymous cookie, so web conversions are cached, counted and rate
limited too. It answers the image bytes, or a JSON error `{code, message}` with 400 / 413 /
429 (+ Retry-After) / 500 (+ reference) / 503 while shutting down. The form is read by
`web.forms` (hard limits, typed errors); who a request counts as is decided by `web.visitor`
(signed cookies only).
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

import i18n
from core.errors import AnimeBotError, EmptyInput, ImageTooLarge, InputError, UnknownStyle
from core.video import looks_like_clip
from service.convert import ConversionReply
from service.errors import InternalError, Refusal
from service.lifecycle import Job
from service.lifecycle.waiting import KIND as WEB_OUTLET
from service.lifecycle.waiting import WebReply
from web import routes_clips, visitor
from web.app import STATE, WebState, json_error, new_reference
from web.forms import UnknownFormat, read_form
from web.lang import remember_language, request_language
from web.templates import render, script_json

log = logging.getLogger("animebot.web")

UID_COOKIE = visitor.UID_COOKIE
FORMATS = ("jpeg", "png", "webp")
DRAINING_RETRY_S = 10
_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no"}

FAVICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E"
    "%3Cg fill='%23e8799a'%3E%3Ccircle cx='16' cy='8' r='6'/%3E%3Ccircle cx='24' cy='14' r='6'/%3E"
    "%3Ccircle cx='21' cy='24' r='6'/%3E%3Ccircle cx='11' cy='24' r='6'/%3E"
    "%3Ccircle cx='8' cy='14' r='6'/%3E%3C/g%3E"
    "%3Ccircle cx='16' cy='17' r='3.5' fill='%23fff4e0'/%3E"
    "%3C/svg%3E"
)


def setup(app: web.Application) -> None:
    app.router.add_get("/", index, name="index")
    app.router.add_post("/api/convert", convert, name="convert")
    app.router.add_get("/api/styles", styles, name="styles")
    app.router.add_get("/styles/{name}/preview.jpg", style_preview, name="style_preview")
    routes_clips.setup(app)


# -- helpers shared with the admin pages --------------------------------------------------------


def language_options_html(lang: str) -> str:
    return "".join(
        f'<option value="{code}"{" selected" if code == lang else ""}>'
        f"{html.escape(i18n.LANGUAGE_NAMES[code])}</option>"
        for code in i18n.LANGUAGES
    )


def page(state: WebState, lang: str, *, title: str, content_html: str, script: str) -> str:
    assets = state.assets
    return render(
        assets.templates["layout.html"],
        lang,
        {
            "lang": lang,
            "title": title,
            "favicon": FAVICON,
            "css_url": assets.static_url("style.css"),
            "js_url": assets.static_url(script),
            "language_options_html": language_options_html(lang),
            "content_html": content_html,
        },
    )


def html_response(body: str, *, status: int = 200) -> web.Response:
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def style_label(state: WebState, name: str, lang: str) -> str:
    key = f"style.{name}"
    if key in i18n.catalogue(i18n.DEFAULT_LANGUAGE):
        return i18n.t(key, lang)
    return state.runtime.service.style_titles().get(name, name)


def default_style(state: WebState) -> str:
    return state.runtime.service.default_style()


# -- the page -----------------------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    state = request.app[STATE]
    lang = request_language(request)
    settings = state.runtime.settings
    default = default_style(state)
    options = "".join(
        f'<option value="{html.escape(name)}"{" selected" if name == default else ""}'
        f"{preview_attribute(state, name)}>"
        f"{html.escape(style_label(state, name, lang))}</option>"
        for name in state.runtime.service.styles()
    )
    limit_mb = max(1, round(state.upload_limit / 1024 / 1024))
    days = max(1, round(settings.result_ttl_days))
    english = i18n.catalogue(i18n.DEFAULT_LANGUAGE)
    strings = {
        key: i18n.t(key, lang)
        for key in english
        if key.startswith(("web.", "note.", "clip."))
        or key in ("error.internal", "error.too_large_bytes")
    }
    clip_mb = max(1, round(state.clip_limit / 1024 / 1024))
    config = {
        "lang": lang,
        "maxBytes": state.upload_limit,
        "limitMb": limit_mb,
        "clipMaxBytes": state.clip_limit,
        "clipLimitMb": clip_mb,
    }
    content = render(
        state.assets.templates["index.html"],
        lang,
        {
            "lang": lang,
            "style_options_html": options,
            "web.drop_limit": i18n.t("web.drop_limit", lang, limit_mb=limit_mb),
            "web.privacy": i18n.t("web.privacy", lang, days=days),
            "strings_json": script_json(strings),
            "config_json": script_json(config),
        },
    )
    body = page(state, lang, title=i18n.t("web.title", lang), content_html=content, script="app.js")
    response = html_response(body)
    response.headers["Cache-Control"] = "no-cache"
    remember_language(request, response)
    _, new_uid = visitor_id(request)
    if new_uid:
        visitor.set_cookie(response, new_uid)
    return response


def visitor_id(request: web.Request) -> tuple[str, str | None]:
    """(the id conversions are counted under, a new signed cookie to set or None).

    A browser has the cookie from the page. A client that sends none, or one this server did
    not sign, is counted by its address, so neither dropping nor inventing cookies escapes the
    per-person limits."""
    state = request.app[STATE]
    return state.visitors.identify(request, state.client(request))


# -- the API ------------------------------------------------------------------------------------


def preview_url(state: WebState, name: str) -> str | None:
    """Where the page fetches a style's small preview image (None: the style has none)."""
    if state.runtime.service.style_preview(name) is None:
        return None
    return f"/styles/{quote(name, safe='')}/preview.jpg"


def preview_attribute(state: WebState, name: str) -> str:
    url = preview_url(state, name)
    return f' data-preview="{html.escape(url)}"' if url else ""


async def style_preview(request: web.Request) -> web.StreamResponse:
    """A scene style's preview.jpg, looked up by name in the registry (never a path)."""
    state = request.app[STATE]
    name = request.match_info["name"]
    preview = state.runtime.service.style_preview(name)
    if preview is None:
        raise web.HTTPNotFound()
    return web.FileResponse(preview, headers={"Cache-Control": "public, max-age=86400"})


async def styles(request: web.Request) -> web.Response:
    state = request.app[STATE]
    lang = request_language(request)
    default = default_style(state)
    return web.json_response(
        {
            "default": default,
            "styles": [
                {
                    "name": name,
                    "label": style_label(state, name, lang),
                    "default": name == default,
                    "preview": preview_url(state, name),
                }
                for name in state.runtime.service.styles()
            ],
        }
    )


def _flag(form: MultiDictProxy[Any], name: str) -> bool | None:
    """A checkbox: the last value wins (the page sends a hidden "0" before the checkbox)."""
    values = [v for v in form.getall(name, []) if isinstance(v, str)]
    if not values:
        return None
    value = values[-1].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def _text(form: MultiDictProxy[Any], name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


async def convert(request: web.Request) -> web.Response:
    state = request.app[STATE]
    lang = request_language(request)
    if state.draining:
        return json_error(
            503,
            "unavailable",
            i18n.t("web.error_draining", lang),
            retry_after_s=DRAINING_RETRY_S,
        )
    user_id, new_uid = visitor_id(request)
    response = await _convert(request, state, lang, user_id)
    if new_uid:  # on refusals too: a cookie handed out is never wasted
        visitor.set_cookie(response, new_uid)
    return response


async def _convert(request: web.Request, state: WebState, lang: str, user_id: str) -> web.Response:
    job = Job(
        platform="web",
        user_id=user_id,
        lang=lang,
        source={"kind": "upload"},
        # The page never re-uses an upload: do not keep people's photos.
        options={"keep_input": False},
        outlet={"kind": WEB_OUTLET, "max_side": state.max_side},
        durable=False,  # the request itself waits: nothing to finish after a restart
    )
    too_large = ImageTooLarge("upload too large", limit=state.file_limit)
    too_large_photo = ImageTooLarge("upload too large", limit=state.upload_limit)
    if request.content_length is not None and request.content_length > state.body_limit:
        return await _early_error(state, job, too_large)
    try:
        form = await read_form(request, max_file_bytes=state.file_limit)
    except InputError as exc:  # malformed, too many fields, too large: never a 500
        return await _early_error(state, job, exc)
    job = replace(job, lang=request_language(request, _text(form, "lang")))
    image = form.get("image")  # a file part's bytes (read_form); a text field is no photo
    data = image if isinstance(image, bytes) else b""
    if not data:
        return await _early_error(state, job, EmptyInput("no image in the form"))
    if looks_like_clip(data):  # a video or an animated GIF/WebP: every frame, as an MP4
        if len(data) > state.clip_limit:  # clips have a limit of their own
            return await _early_error(state, job, ImageTooLarge("clip", limit=state.clip_limit))
        return await routes_clips.convert_clip(
            request, state, job, data, form, _text(form, "style"), _flag(form, "faces")
        )
    if len(data) > state.upload_limit:
        return await _early_error(state, job, too_large_photo)
    fmt = (_text(form, "format") or "jpeg").lower()
    if fmt not in FORMATS:
        return await _early_error(state, job, UnknownFormat(fmt, FORMATS))
    options = {
        **job.options,
        "style": _text(form, "style"),
        "faces": _flag(form, "faces"),
        "side_by_side": bool(_flag(form, "side_by_side")),
        "fmt": fmt,
    }
    job = replace(job, options=options, upload=data)
    try:
        reply = await _answer(state, job)
    except AnimeBotError as exc:
        return _error(state, job.lang, exc)
    except Exception:  # the runner answers its failures; this is a bug between us and it
        ref = new_reference()
        log.exception("web conversion failed (reference %s)", ref)
        return _error(state, job.lang, InternalError(ref))
    return _image_response(reply)


async def _answer(state: WebState, job: Job) -> ConversionReply:
    """The photo's result through the runner (the web outlet hands it back), or its error."""
    reply = await answer(state, job)
    if not isinstance(reply, ConversionReply):
        raise TypeError("a photo job answered with a clip")
    return reply


async def answer(state: WebState, job: Job) -> WebReply:
    """The job's result through the runner (the web outlet hands it back, from this process
    or from a worker), or its error."""
    future = state.waiting.expect(job.request_id)
    try:
        await state.runtime.runner.run(job)
        return await future
    finally:
        state.waiting.forget(job.request_id)


def _image_response(reply: ConversionReply) -> web.Response:
    response = web.Response(body=reply.data, content_type=reply.mime)
    headers = response.headers
    safe_name = re.sub(r"[^A-Za-z0-9_.-]", "_", reply.style)
    headers["Content-Disposition"] = f'inline; filename="anime_{safe_name}.{reply.ext}"'
    headers["Cache-Control"] = "no-store"
    headers["X-Animebot-Style"] = quote(reply.style, safe="")  # header values are ASCII
    headers["X-Animebot-Cache"] = "hit" if reply.cache_hit else "miss"
    headers["X-Animebot-Time-Ms"] = str(round(reply.total_ms))
    headers["X-Animebot-Compute-Ms"] = str(round(reply.compute_ms))
    headers["X-Animebot-Queue-Ms"] = str(round(reply.queue_wait_ms))
    headers["X-Animebot-Faces"] = str(reply.faces_found)
    headers["X-Animebot-Size"] = f"{reply.width}x{reply.height}"
    if reply.notes:
        headers["X-Animebot-Notes"] = ",".join(reply.notes)
    headers["X-Animebot-Request-Id"] = reply.request_id
    return response


async def _early_error(state: WebState, job: Job, exc: AnimeBotError) -> web.Response:
    """A request refused before it became a job: still one usage row, like the rest."""
    try:
        await _answer_rejected(state, job, exc)
    except AnimeBotError as answered:
        return _error(state, job.lang, answered)
    return _error(state, job.lang, exc)


async def _answer_rejected(state: WebState, job: Job, exc: AnimeBotError) -> None:
    answer = state.waiting.expect(job.request_id)
    try:
        await state.runtime.runner.reject(job, exc)
        await answer
    finally:
        state.waiting.forget(job.request_id)


def _error(state: WebState, lang: str, exc: AnimeBotError) -> web.Response:
    message = i18n.error_message(exc, lang)
    if isinstance(exc, ImageTooLarge):
        return json_error(413, exc.code, message)
    if isinstance(exc, InputError | UnknownStyle):
        return json_error(400, exc.code, message)
    if isinstance(exc, Refusal):
        return json_error(429, exc.code, message, retry_after_s=exc.retry_after_whole_s)
    ref = exc.request_id if isinstance(exc, InternalError) else new_reference()
    if not isinstance(exc, InternalError):
        log.error("web conversion failed with %s (reference %s)", exc.code, ref)
        message = i18n.error_message(InternalError(ref), lang)
    return json_error(500, "internal", message, request_id=ref)
