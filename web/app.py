"""The aiohttp application (`make_app`) and the front end that serves it (`WebFrontEnd`).

Routes live in `routes_public` (the page and its JSON API), `routes_admin` (the dashboard),
`health` and `metrics`. Every response gets security headers; an unexpected failure becomes a
500 with a reference id that is logged with the traceback, never the exception text.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

import i18n
from service.lifecycle import Waiting
from service.lifecycle.waiting import KIND as WEB_OUTLET
from service.runtime import Runtime
from web.admin_auth import AdminAuth
from web.clientaddr import client_address
from web.forms import FORM_OVERHEAD_BYTES
from web.lang import request_language
from web.metrics import WebMetrics
from web.templates import STATIC_DIR, Assets, load_assets
from web.visitor import Visitors

log = logging.getLogger("animebot.web")

# The web page's long-side cap (the engine's own cap, ANIMEBOT_MAX_SIDE, still applies).
WEB_MAX_SIDE = 2048
# No client addresses or user agents in the access log (privacy); request line, status, size, time.
ACCESS_LOG_FORMAT = '"%r" %s %b %Tfs'
# What every response says in `Server:` (aiohttp's default names the Python and aiohttp
# versions, which helps nobody but someone looking for a known hole).
SERVER_NAME = "animebot"
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


@dataclass
class WebState:
    runtime: Runtime
    metrics: WebMetrics
    max_side: int
    # Signs the anonymous visitor cookies; hands out new ones sparingly per address.
    visitors: Visitors
    # Dashboard sessions, device cookies and failed sign-in counting per address.
    admin: AdminAuth
    draining: bool = False
    # Requests waiting for their job's answer (the web outlet resolves them).
    waiting: Waiting = field(default_factory=Waiting)
    _assets: Assets | None = None

    @property
    def assets(self) -> Assets:
        if self._assets is None:
            raise RuntimeError("web assets are loaded at application start-up")
        return self._assets

    def client(self, request: web.Request) -> str:
        """The client's address (X-Forwarded-For believed from ANIMEBOT_TRUSTED_PROXIES)."""
        return client_address(request, self.runtime.settings.trusted_proxies)

    @property
    def upload_limit(self) -> int:
        """The largest photo accepted (ANIMEBOT_MAX_UPLOAD_MB)."""
        return self.runtime.settings.max_upload_bytes

    @property
    def clip_limit(self) -> int:
        """The largest clip accepted (ANIMEBOT_CLIP_MAX_MB): clips have their own limit."""
        return self.runtime.settings.limits.clip_max_bytes

    @property
    def file_limit(self) -> int:
        """The largest file read from a form: a photo or a clip, whichever may be larger
        (each kind is held to its own limit once the bytes tell which it is)."""
        return max(self.upload_limit, self.clip_limit)

    @property
    def body_limit(self) -> int:
        """The largest request body aiohttp reads (client_max_size): file + form overhead."""
        return self.file_limit + FORM_OVERHEAD_BYTES


STATE = web.AppKey("animebot_web_state", WebState)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_reference() -> str:
    return uuid.uuid4().hex[:10]


_dumps = functools.partial(json.dumps, ensure_ascii=False)


def json_error(
    status: int,
    code: str,
    message: str,
    *,
    retry_after_s: int | None = None,
    request_id: str | None = None,
) -> web.Response:
    body: dict[str, object] = {"code": code, "message": message}
    if request_id:
        body["request_id"] = request_id
    if retry_after_s is not None:
        body["retry_after_s"] = retry_after_s
    response = web.json_response(body, status=status, dumps=_dumps)
    if retry_after_s is not None:
        response.headers["Retry-After"] = str(retry_after_s)
    response.headers["Cache-Control"] = "no-store"
    return response


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "other"


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers everywhere; JSON errors under /api/; no exception text to anyone."""
    state = request.app[STATE]
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if request.path.startswith("/api/") and exc.status >= 400:
            lang = request_language(request)
            if exc.status == 413:
                response = json_error(
                    413, "too_large", i18n.t("error.too_large_bytes", lang, limit_mb=_mb(state))
                )
            elif exc.status in (404, 405):
                response = json_error(exc.status, "not_found", i18n.t("web.error_not_found", lang))
            else:
                response = json_error(exc.status, "bad_request", i18n.t("error.bad_input", lang))
        else:
            _secure(exc)
            state.metrics.responses.labels(_route_name(request), str(exc.status)).inc()
            raise
    except asyncio.CancelledError:
        raise
    except Exception:
        ref = new_reference()
        log.exception("web request %s %s failed (reference %s)", request.method, request.path, ref)
        message = i18n.t("error.internal", request_language(request), ref=ref)
        if request.path.startswith("/api/"):
            response = json_error(500, "internal", message, request_id=ref)
        else:
            response = web.Response(status=500, text=message, content_type="text/plain")
    _secure(response)
    state.metrics.responses.labels(_route_name(request), str(response.status)).inc()
    return response


def _mb(state: WebState) -> int:
    """A body over every limit: the larger one is the one it broke."""
    return max(1, round(state.file_limit / 1024 / 1024))


def _secure(response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")


async def _load_assets(app: web.Application) -> None:
    app[STATE]._assets = await asyncio.to_thread(load_assets)


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME


def _hide_server_version() -> None:
    """Also for what aiohttp answers itself, before any route (a malformed request line)."""
    from aiohttp import web_response

    if hasattr(web_response, "SERVER_SOFTWARE"):
        web_response.SERVER_SOFTWARE = SERVER_NAME


def make_app(runtime: Runtime, *, max_side: int = WEB_MAX_SIDE) -> web.Application:
    """The whole web front end for one runtime (the page, API, dashboard, health, metrics)."""
    from web import health, metrics, routes_admin, routes_public, uploads

    settings = runtime.settings
    app = web.Application(
        middlewares=[guard, uploads.bound_uploads],
        # = WebState.body_limit: the larger of the photo and clip limits, plus the form
        client_max_size=max(settings.max_upload_bytes, settings.limits.clip_max_bytes)
        + FORM_OVERHEAD_BYTES,
    )
    state = WebState(
        runtime=runtime,
        metrics=WebMetrics(lambda: runtime.service.inflight),
        max_side=min(max_side, settings.max_side),
        visitors=Visitors(runtime.service.derive_key("web-visitor-cookie")),
        admin=AdminAuth(settings.admin_token, runtime.service.derive_key("web-admin-device")),
    )
    app[STATE] = state
    runtime.runner.outlets.register(WEB_OUTLET, state.waiting.outlet)
    if runtime.queue is not None:  # jobs run on workers: their results come back via Redis
        runtime.queue.deliver_web_to(state.waiting.answer)
    app[uploads.UPLOADS] = uploads.budget_for(state.body_limit)
    app.on_startup.append(_load_assets)
    app.on_response_prepare.append(_server_header)
    _hide_server_version()
    routes_public.setup(app)
    routes_admin.setup(app)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", metrics.metrics)
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=False)
    return app


class WebFrontEnd:
    """Serves `make_app(runtime)` on settings.host:settings.port until `stop()`.

    `begin_drain()` turns new conversions away (503) and makes /readyz fail, while running ones
    finish; `stop()` does that too, closes the listener and gives open requests up to the
    shutdown grace to complete.
    """

    name = "web"

    def __init__(
        self, runtime: Runtime, *, host: str | None = None, port: int | None = None
    ) -> None:
        self.runtime = runtime
        self.host = runtime.settings.host if host is None else host
        self.port = runtime.settings.port if port is None else port
        self.app = make_app(runtime)
        self._runner: web.AppRunner | None = None

    @property
    def state(self) -> WebState:
        return self.app[STATE]

    @property
    def url(self) -> str:
        public = self.runtime.settings.public_url
        if public:
            return public.rstrip("/") + "/"
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        runner = web.AppRunner(
            self.app,
            shutdown_timeout=max(1.0, self.runtime.settings.shutdown_grace_s),
            access_log=logging.getLogger("animebot.web.access"),
            access_log_format=ACCESS_LOG_FORMAT,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if self.port == 0 and runner.addresses:  # an ephemeral port (tests): the real one
            self.port = int(runner.addresses[0][1])

    def begin_drain(self) -> None:
        self.state.draining = True

    async def stop(self) -> None:
        self.begin_drain()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
