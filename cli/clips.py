"""`animebot convert clip.mp4`: a clip or animated GIF/WebP through the engine on this thread,
frame by frame (decode -> stylize -> encode), with a tqdm bar; an MP4 comes out."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from cli.common import kib, write_atomic

if TYPE_CHECKING:
    from core.engine import Engine
    from core.registry import StyleSpec

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv"})
# The CLI is not bound by the bots' limits, except the frame size (time grows with it).
DEFAULT_MAX_SIDE = 720
NOTES = {
    "cut": "cut to the length limit",
    "downscaled": "scaled down",
    "fps_capped": "frame rate capped",
    "audio_dropped": "audio dropped: MP4 cannot carry its codec",
}


def is_clip(source: Path) -> bool:
    """A video file by its name, or a GIF/WebP that is animated (read from its bytes)."""
    suffix = source.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return True
    if suffix in {".gif", ".webp"} and source.is_file():
        from core.video import looks_like_clip

        with source.open("rb") as f:
            return looks_like_clip(f.read())
    return False


def convert_clip(
    engine: Engine, spec: StyleSpec, source: Path, dest: Path, args: argparse.Namespace
) -> str:
    """Convert `source` into `dest` (an .mp4); returns the line to print."""
    from core.clipstyle import ClipStylizer
    from core.video import ClipJob, ClipLimits, plan

    start = time.perf_counter()
    limits = ClipLimits(
        max_seconds=24 * 3600,
        max_frames=1 << 30,
        max_side=args.max_size or DEFAULT_MAX_SIDE,
        max_bytes=1 << 40,
    )
    clip = plan(source, limits)
    stylize = ClipStylizer(engine, spec.name, faces=args.faces)
    job = ClipJob(source, clip)
    try:
        with tqdm(
            total=clip.frames, unit="frame", desc=source.name, file=sys.stderr, leave=False
        ) as bar:
            while not job.finished:
                before = job.done
                job.step(stylize.batch, 4)
                bar.update(job.done - before)
            # tqdm draws at most every 0.1 s; the last frames can land inside that window, so
            # the bar is drawn once more at 100% before it goes.
            bar.refresh()
        encoded = job.finish()
    except BaseException:
        job.abort()
        raise
    write_atomic(dest, encoded.data)
    notes = [NOTES[n] for n in clip.notes if n in NOTES]
    line = (
        f"{source} -> {dest}  {encoded.width}x{encoded.height}  {encoded.frames} frames "
        f"{encoded.fps:.3g} fps {encoded.seconds:.2f} s{'  audio' if encoded.has_audio else ''}  "
        f"{kib(len(encoded.data))}  flicker {job.flicker:.2f}  {time.perf_counter() - start:.2f} s"
    )
    return f"{line}  ({'; '.join(notes)})" if notes else line
