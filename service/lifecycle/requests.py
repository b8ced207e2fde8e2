"""What the service is asked for a job: the job's options and the outlet's limits turned into
a `ConversionRequest` or a `ClipRequest`, so the result is encoded once, to fit where it goes.
Pure: the same job and limits always make the same request."""

from __future__ import annotations

from service.clips import ClipRequest, FramesCallback
from service.convert import ConversionRequest
from service.fairqueue import ProgressCallback
from service.lifecycle.job import Job
from service.lifecycle.outlet import OutletLimits


def conversion_request(
    job: Job,
    image: bytes | None,
    limits: OutletLimits,
    on_progress: ProgressCallback | None = None,
) -> ConversionRequest:
    """The service's request for this job, encoded for the outlet's limits (None for `image`:
    the service reads the job's cached upload itself)."""
    fmt = str(job.option("fmt") or "jpeg")
    if fmt not in limits.formats:
        fmt = limits.formats[0]
    return ConversionRequest(
        platform=job.platform,
        user_id=job.user_id,
        chat_id=job.chat_id,
        image=image,
        input_key=None if image is not None else job.source.get("input_key"),
        style=job.option("style"),
        faces=job.option("faces"),
        side_by_side=bool(job.option("side_by_side")),
        fmt=fmt,
        max_side=limits.max_side,
        max_bytes=limits.max_bytes,
        is_admin=job.admin,
        keep_input=bool(job.option("keep_input", True)),
        on_progress=on_progress,
        request_id=job.request_id,
    )


def clip_request(
    job: Job,
    data: bytes,
    limits: OutletLimits,
    on_frames: FramesCallback | None = None,
    *,
    makes_stickers: bool,
) -> ClipRequest:
    """The clip service's request for this job, its bit rate fitted to the outlet; a sticker
    only where this machine can encode one (`ClipService.makes_stickers`)."""
    return ClipRequest(
        job.platform,
        job.user_id,
        data,
        chat_id=job.chat_id,
        style=job.option("style"),
        faces=job.option("faces"),
        max_output_bytes=limits.clip_max_bytes,
        is_admin=job.admin,
        sticker=bool(job.option("sticker")) and makes_stickers,
        on_frames=on_frames,
        request_id=job.request_id,
    )
