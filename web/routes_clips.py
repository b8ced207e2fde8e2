"""Clips on the web: `/api/convert` hands a video or animated GIF/WebP here (it answers an
MP4), and `GET /api/progress/{token}` tells the page how many frames are done, so it can show
a progress bar while the POST is still running.

The page makes up a random token per upload and sends it as the form field `progress`;
progress is kept only while that clip converts, and only its visitor can read it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

import i18n
from core.errors import AnimeBotError
from service.clips import ClipReply, ClipRequest
from service.errors import InternalError
from service.lifecycle import Job
from web.app import WebState, new_reference

log = logging.getLogger("animebot.web")

_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass
class ClipProgress:
    """(visitor, token) -> (frames done, frames in all), for clips converting now."""

    running: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)


PROGRESS = web.AppKey("animebot_clip_progress", ClipProgress)


def setup(app: web.Application) -> None:
    app[PROGRESS] = ClipProgress()
    app.router.add_get("/api/progress/{token}", progress, name="clip_progress")


async def progress(request: web.Request) -> web.Response:
    from web.routes_public import visitor_id

    user_id, _ = visitor_id(request)
    found = request.app[PROGRESS].running.get((user_id, request.match_info["token"]))
    if found is None:
        raise web.HTTPNotFound()
    done, total = found
    response = web.json_response({"done": done, "total": total})
    response.headers["Cache-Control"] = "no-store"
    return response


async def convert_clip(
    request: web.Request,
    state: WebState,
    job: Job,
    data: bytes,
    form: MultiDictProxy[Any],
    style: str | None,
    faces: bool | None,
) -> web.Response:
    """The clip branch of `/api/convert`: an MP4, or the same JSON errors as photos. Clips go
    to the service's clip entry point (`runtime.clips`) in this process, not through the job
    runner, and with ANIMEBOT_QUEUE set they still run here (see docs/ARCHITECTURE.md)."""
    from web.routes_public import _error

    user_id, lang = job.user_id, job.lang

    token = form.get("progress")
    key = (user_id, token) if isinstance(token, str) and _TOKEN.fullmatch(token) else None
    running = request.app[PROGRESS].running

    async def on_frames(done: int, total: int) -> None:
        if key is not None:
            running[key] = (done, total)

    try:
        reply = await state.runtime.clips.convert(
            ClipRequest(
                "web",
                user_id,
                data,
                style=style,
                faces=faces,
                on_frames=on_frames,
                request_id=job.request_id,
            )
        )
    except AnimeBotError as exc:
        return _error(state, lang, exc)
    except Exception:
        ref = new_reference()
        log.exception("web clip failed (reference %s)", ref)
        return _error(state, lang, InternalError(ref))
    finally:
        if key is not None:
            running.pop(key, None)
    return clip_response(reply, lang)


def clip_response(reply: ClipReply, lang: str) -> web.Response:
    response = web.Response(body=reply.data, content_type=reply.mime)
    headers = response.headers
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", reply.style)
    headers["Content-Disposition"] = f'inline; filename="anime_{safe}.{reply.ext}"'
    headers["Cache-Control"] = "no-store"
    headers["X-Animebot-Style"] = quote(reply.style, safe="")
    headers["X-Animebot-Cache"] = "hit" if reply.cache_hit else "miss"
    headers["X-Animebot-Time-Ms"] = str(round(reply.total_ms))
    headers["X-Animebot-Compute-Ms"] = str(round(reply.compute_ms))
    headers["X-Animebot-Size"] = f"{reply.width}x{reply.height}"
    headers["X-Animebot-Frames"] = str(reply.frames)
    headers["X-Animebot-Fps"] = f"{reply.fps:.3f}"
    headers["X-Animebot-Seconds"] = f"{reply.seconds:.3f}"
    headers["X-Animebot-Audio"] = "1" if reply.has_audio else "0"
    notes = i18n.clip_notes(
        reply.notes,
        lang,
        seconds=round(reply.seconds, 1),
        side=max(reply.width, reply.height),
        fps=reply.fps,
    )
    if notes:  # translated sentences, percent-encoded (header values are ASCII)
        headers["X-Animebot-Notes-Text"] = quote(" ".join(notes), safe=" ")
    headers["X-Animebot-Request-Id"] = reply.request_id
    return response
