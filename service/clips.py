"""Clips and animated GIFs in anime style: limits, cost, cache, progress, fairness.

`await ClipService(service).convert(ClipRequest(...))` -> `ClipReply` (an MP4) or a typed
refusal, like photos. The work streams decode -> stylize -> encode (`core.video.ClipJob`) in
the engine's worker pool, a chunk of frames at a time; each chunk takes its own turn in the
service's fair queue and costs about one photo there (frames x pixels, see
`Settings.clip_photo_pixels`), so someone sending photos waits for one chunk, not for a whole
clip. A clip costs as many photos against the daily quota, taken whole before it is converted
and given back if it fails or is cancelled (`service.admission`, shared with photos).
Cancelling the request frees the worker slot at once; the thread stops after the frame it is
on and drops the output.

Results are cached by the upload's bytes + style + options (including the upload limit the
bit rate was fitted to); the upload itself is never stored.

Front ends do not call this directly: a clip is a job of the job runner (`options["clip"]`,
service/lifecycle/), which calls `convert` wherever its workers run and hands the reply to the
outlet (`deliver_clip`), so an accepted clip is a durable row like a photo.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from core.clipstyle import ClipStylizer
from core.tiling import MapFn
from core.video import (
    STICKER_FPS,
    STICKER_SECONDS,
    STICKER_SIDE,
    ClipJob,
    ClipLimits,
    ClipPlan,
    EncodedClip,
    can_make_stickers,
    plan,
    to_gif,
    to_sticker,
)
from service.convert import ConversionService
from service.errors import Refusal, ShuttingDown
from service.fairqueue import RESTART_RETRY_S
from storage import UsageRecord

log = logging.getLogger("animebot.clips")

# Bump when the clip pipeline changes what it produces for the same input (cache keys use it).
CLIP_PIPELINE = "c2"

FramesCallback = Callable[[int, int], Awaitable[None]]  # (frames done, frames in all)


@dataclass(frozen=True)
class ClipRequest:
    platform: str
    user_id: str | int
    data: bytes
    chat_id: str | int | None = None
    style: str | None = None
    faces: bool | None = None
    max_output_bytes: int = 0  # the platform's upload limit (0: none); the bit rate fits it
    is_admin: bool = False
    # A Telegram video sticker: WebM VP9, 512 px, at most 3 s (longer ones cut, with the note)
    sticker: bool = False
    on_frames: FramesCallback | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])


@dataclass(frozen=True)
class ClipReply:
    """The converted clip as the engine encoded it (`clip`: bytes, MIME type, size, frames,
    fps, seconds, audio), plus what the service adds: style, notes, cache and cost."""

    clip: EncodedClip
    style: str
    notes: tuple[str, ...]  # "cut", "downscaled", "fps_capped", "audio_dropped"
    cache_hit: bool
    result_key: str
    cost: int  # photos this clip counted as
    flicker: float  # output frame-to-frame change over the input's (1: none added)
    compute_ms: float
    total_ms: float
    request_id: str


def clip_limits(service: ConversionService) -> ClipLimits:
    s = service.settings.engine
    return ClipLimits(
        max_seconds=s.clip_max_seconds,
        max_frames=s.clip_max_frames,
        max_side=s.clip_max_side,
        max_bytes=s.clip_max_bytes,
        max_fps=s.clip_max_fps,
    )


def clip_cost(clip: ClipPlan, photo_pixels: int) -> int:
    """Photos a clip counts as: its frames x pixels over one photo's."""
    return max(1, math.ceil(clip.pixels / max(1, photo_pixels)))


def chunk_frames(clip: ClipPlan, photo_pixels: int, workers: int) -> int:
    """Frames per fair-queue turn: about one photo's pixels, rounded up to a multiple of the
    workers (an idle bot runs a turn's frames side by side on every core: 3 frames on 2 cores
    would leave one idle a third of the time)."""
    frames = max(1, round(photo_pixels / max(1, clip.width * clip.height)))
    return -(-frames // workers) * workers


class ClipService:
    """The service's entry point for clips (`runner.clips`): the job runner hands it the bytes
    and gets an MP4 back; it keeps the one usage row of each clip request it converts (the
    runner keeps those it turns away before, or whose delivery fails, as for photos).
    Stateless beside the service's engine, database, fair queue and limits."""

    def __init__(self, service: ConversionService) -> None:
        self.service = service
        self.engine = service.engine
        self.limits = clip_limits(service)

    @property
    def makes_stickers(self) -> bool:
        """Whether Telegram video stickers can be answered as stickers (this PyAV has VP9);
        otherwise they are answered as animations."""
        return can_make_stickers()

    async def convert(self, req: ClipRequest) -> ClipReply:
        started = time.perf_counter()
        svc = self.service
        user_hash = svc.db.hash_id(req.platform, req.user_id)
        row: dict[str, Any] = {
            "platform": req.platform,
            "user_hash": user_hash,
            "chat_hash": None if req.chat_id is None else svc.db.hash_id(req.platform, req.chat_id),
            "request_id": req.request_id,
            "input_bytes": len(req.data),
        }
        try:
            if svc.closing:
                raise ShuttingDown("shutting down", retry_after_s=RESTART_RETRY_S)
            reply = await self._convert(req, user_hash, row, started)
        except asyncio.CancelledError:
            if svc.closing:  # cut short by a shutdown: turned away (a durable job is put off)
                await asyncio.shield(self._record(row, "refused", ShuttingDown.code))
            else:
                await asyncio.shield(self._record(row, "error", "cancelled"))
            raise
        except Refusal as exc:
            await self._record(row, "refused", exc.code)
            raise
        except Exception as exc:
            code = getattr(exc, "code", None)
            if code is None or code == "internal":
                log.exception("clip %s failed", req.request_id)
            await self._record(row, "error", code or "internal")
            raise
        await self._record(row, "ok", None)
        return reply

    async def _convert(
        self, req: ClipRequest, user_hash: str, row: dict[str, Any], started: float
    ) -> ClipReply:
        svc = self.service
        prefs = await svc.db.prefs.get(req.platform, user_hash)
        style = svc.style_for(req.style or prefs.style)
        faces = req.faces if req.faces is not None else (prefs.faces is not False)
        row.update(style=style, faces=faces, side_by_side=False)
        await svc.admission.enter(user_hash, req.is_admin)
        clip: ClipPlan = await self.engine.run_light(plan, req.data, self.limits_for(req))
        row.update(input_w=clip.info.width, input_h=clip.info.height)
        key = await asyncio.to_thread(self._key, req, style, faces)
        hit = await svc.db.cache.get(key)
        cost = clip_cost(clip, svc.settings.limits.clip_photo_pixels)
        if hit is not None:
            await svc.admission.cache_hit(req.platform, user_hash, req.is_admin, row, hit.size)
            meta = hit.meta
            cached = EncodedClip(
                data=hit.data,
                mime=hit.mime,
                ext=str(meta.get("ext", "mp4")),
                width=int(meta.get("width", 0)),
                height=int(meta.get("height", 0)),
                frames=int(meta.get("frames", 0)),
                fps=float(meta.get("fps", 0.0)),
                seconds=float(meta.get("seconds", 0.0)),
                has_audio=bool(meta.get("has_audio", False)),
            )
            return ClipReply(
                clip=cached,
                style=style,
                notes=tuple(meta.get("notes", ())),
                cache_hit=True,
                result_key=key,
                cost=0,
                flicker=float(meta.get("flicker", 1.0)),
                compute_ms=0.0,
                total_ms=(time.perf_counter() - started) * 1000,
                request_id=req.request_id,
            )
        day = await svc.admission.take(user_hash, req.is_admin, cost)
        try:
            t0 = time.perf_counter()
            encoded, flicker, waited_ms = await self._run(req, user_hash, clip, style, faces)
            compute_ms = (time.perf_counter() - t0) * 1000 - waited_ms
            meta = {
                "ext": encoded.ext,
                "width": encoded.width,
                "height": encoded.height,
                "frames": encoded.frames,
                "fps": encoded.fps,
                "seconds": encoded.seconds,
                "has_audio": encoded.has_audio,
                "notes": list(clip.notes),
                "flicker": flicker,
                "style": style,
            }
            await svc.db.cache.put(
                key, encoded.data, kind="result", mime=encoded.mime, owner_hash=user_hash, meta=meta
            )
        except BaseException:  # failed or cancelled: the clip cost nothing
            await asyncio.shield(svc.admission.give_back(user_hash, day, cost))
            raise
        row.update(output_bytes=len(encoded.data), queue_wait_ms=waited_ms, compute_ms=compute_ms)
        return ClipReply(
            clip=encoded,
            style=style,
            notes=clip.notes,
            cache_hit=False,
            result_key=key,
            cost=cost,
            flicker=flicker,
            compute_ms=compute_ms,
            total_ms=(time.perf_counter() - started) * 1000,
            request_id=req.request_id,
        )

    async def as_gif(self, reply: ClipReply, max_bytes: int) -> bytes | None:
        """The result again as a looping GIF, for platforms that play GIFs inline; None when
        it would not fit `max_bytes` (a GIF is many times the MP4's size). In a worker slot:
        every frame is decoded and quantized."""
        found: bytes | None = await self.engine.run_job(
            lambda _map: to_gif(reply.clip.data, max_bytes)
        )
        return found

    def limits_for(self, req: ClipRequest) -> ClipLimits:
        """The settings' limits, narrowed to a video sticker's where one is asked for."""
        lim = self.limits
        if not req.sticker:
            return lim
        return replace(
            lim,
            max_seconds=min(lim.max_seconds, STICKER_SECONDS),
            max_side=min(lim.max_side, STICKER_SIDE),
            max_fps=min(lim.max_fps, STICKER_FPS),
        )

    def _key(self, req: ClipRequest, style: str, faces: bool) -> str:
        version = self.engine.model_version(style, faces)
        lim = self.limits_for(req)
        raw = (
            f"clip|{CLIP_PIPELINE}|{hashlib.sha256(req.data).hexdigest()}|{version}|"
            f"s={lim.max_seconds}|f={lim.max_frames}|side={lim.max_side}|fps={lim.max_fps}|"
            f"out={req.max_output_bytes}|sticker={req.sticker}"
        )
        return hashlib.sha256(raw.encode()).hexdigest()

    async def _run(
        self, req: ClipRequest, user_hash: str, clip: ClipPlan, style: str, faces: bool
    ) -> tuple[EncodedClip, float, float]:
        """Stream the clip through the engine a chunk at a time, each chunk a turn in the fair
        queue. Returns the clip, its flicker ratio and the time spent waiting for turns."""
        svc = self.service
        job: ClipJob = await self.engine.run_light(
            lambda: ClipJob(req.data, clip, max_bytes=req.max_output_bytes)
        )
        stylizer: ClipStylizer | None = None
        chunk = chunk_frames(
            clip, svc.settings.limits.clip_photo_pixels, self.engine.config.workers
        )
        waited_ms = 0.0
        try:
            while not job.finished:
                async with svc.queue.slot(user_hash) as waited:
                    waited_ms += waited
                    if stylizer is None:  # loads the models in a worker, not on the loop
                        stylizer = await self.engine.run_light(
                            lambda: ClipStylizer(self.engine, style, faces=faces)
                        )
                    await self.engine.run_job(partial(_chunk, job, stylizer, chunk))
                if req.on_frames is not None:
                    await _report(req.on_frames, job.done, job.total)
            encoded: EncodedClip = await self.engine.run_light(job.finish)
            if req.sticker:  # encoded again as WebM VP9 at a rate that fits 256 KB
                mp4 = encoded.data
                encoded = await self.engine.run_job(lambda _map: to_sticker(mp4))
        except BaseException:
            job.cancel()
            raise
        return encoded, job.flicker, waited_ms

    async def _record(self, row: dict[str, Any], status: str, error_kind: str | None) -> None:
        svc = self.service
        # Turned away by a shutdown: the attempt after the restart adds its outcome beside it.
        once = error_kind != ShuttingDown.code
        try:
            record = UsageRecord(status=status, error_kind=error_kind, once=once, **row)  # type: ignore[arg-type]
            await svc.db.usage.record(record)
        except Exception:
            log.exception("could not record usage for clip %s", row.get("request_id"))
        svc.metrics.requests.labels(row["platform"], status, error_kind or "clip").inc()


def _chunk(job: ClipJob, stylizer: ClipStylizer, frames: int, map_fn: MapFn[Any, Any]) -> int:
    """One fair-queue turn of a clip, on a worker thread: `frames` frames side by side."""
    return job.step(lambda batch: stylizer.batch(batch, map_fn), frames)


async def _report(callback: FramesCallback, done: int, total: int) -> None:
    """Progress never fails a conversion (a message edit may be refused by the platform)."""
    try:
        await callback(done, total)
    except Exception:
        log.warning("clip progress callback failed", exc_info=True)
