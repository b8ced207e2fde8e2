"""Clips on the web: `/api/convert` hands a video or animated GIF/WebP here (it answers an
MP4), and `GET /api/progress/{token}` tells the page how many frames are done, so it can show
a progress bar while the POST is still running.

A clip is a job of the job runner like a photo (`options["clip"]`): converted in this
request's task in one process, or by a worker through the shared queue (ANIMEBOT_QUEUE), the
upload going through the shared blob store and the progress coming back through Redis.
The page makes up a random token per upload and sends it as the form field `progress`; the
token names the request's job only while that clip converts, and only its visitor can read it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

import i18n
from core.errors import AnimeBotError
from service.clips import ClipReply
from service.errors import InternalError
from service.lifecycle import Job
from service.lifecycle.job import CLIP
from web.app import STATE, WebState, new_reference

log = logging.getLogger("animebot.web")

_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


@dataclass
class ClipProgress:
    """(visitor, token) -> the request id of a clip converting now."""

    running: dict[tuple[str, str], str] = field(default_factory=dict)


PROGRESS = web.AppKey("animebot_clip_progress", ClipProgress)


def setup(app: web.Application) -> None:
    app[PROGRESS] = ClipProgress()
    app.router.add_get("/api/progress/{token}", progress, name="clip_progress")


async def progress(request: web.Request) -> web.Response:
    from web.routes_public import visitor_id

    user_id, _ = visitor_id(request)
    request_id = request.app[PROGRESS].running.get((user_id, request.match_info["token"]))
    if request_id is None:
        raise web.HTTPNotFound()
    found = await request.app[STATE].runtime.runner.frames(request_id)
    if found is None:  # not started yet (or already answered)
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
    """The clip branch of `/api/convert`: an MP4, or the same JSON errors as photos."""
    from web.routes_public import _error, answer

    token = form.get("progress")
    key = (job.user_id, token) if isinstance(token, str) and _TOKEN.fullmatch(token) else None
    running = request.app[PROGRESS].running
    options = {**job.options, CLIP: True, "style": style, "faces": faces}
    job = replace(job, options=options, upload=data)
    if key is not None:
        running[key] = job.request_id
    try:
        reply = await answer(state, job)
        if not isinstance(reply, ClipReply):
            raise TypeError("a clip job answered with a photo")
    except AnimeBotError as exc:
        return _error(state, job.lang, exc)
    except Exception:
        ref = new_reference()
        log.exception("web clip failed (reference %s)", ref)
        return _error(state, job.lang, InternalError(ref))
    finally:
        if key is not None:
            running.pop(key, None)
    return clip_response(reply, job.lang)


def clip_response(reply: ClipReply, lang: str) -> web.Response:
    clip = reply.clip
    response = web.Response(body=clip.data, content_type=clip.mime)
    headers = response.headers
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", reply.style)
    headers["Content-Disposition"] = f'inline; filename="anime_{safe}.{clip.ext}"'
    headers["Cache-Control"] = "no-store"
    headers["X-Animebot-Style"] = quote(reply.style, safe="")
    headers["X-Animebot-Cache"] = "hit" if reply.cache_hit else "miss"
    headers["X-Animebot-Time-Ms"] = str(round(reply.total_ms))
    headers["X-Animebot-Compute-Ms"] = str(round(reply.compute_ms))
    headers["X-Animebot-Size"] = f"{clip.width}x{clip.height}"
    headers["X-Animebot-Frames"] = str(clip.frames)
    headers["X-Animebot-Fps"] = f"{clip.fps:.3f}"
    headers["X-Animebot-Seconds"] = f"{clip.seconds:.3f}"
    headers["X-Animebot-Audio"] = "1" if clip.has_audio else "0"
    notes = i18n.clip_notes(
        reply.notes,
        lang,
        seconds=round(clip.seconds, 1),
        side=max(clip.width, clip.height),
        fps=clip.fps,
    )
    if notes:  # translated sentences, percent-encoded (header values are ASCII)
        headers["X-Animebot-Notes-Text"] = quote(" ".join(notes), safe=" ")
    headers["X-Animebot-Request-Id"] = reply.request_id
    return response
