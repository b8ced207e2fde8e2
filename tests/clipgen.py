"""Test clips made from the shared photos with PyAV: a slow pan across a photo (so frames
differ the way a real camera move does), optionally with an audio tone, a display-matrix
rotation, a variable frame rate, or as an animated GIF/WebP. Also used by bench/video.py."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image


def pan_frames(photo: Path, width: int, height: int, count: int) -> Iterator[np.ndarray]:
    """`count` crops of `photo` (scaled to cover 1.25x the frame) moving left to right, made
    one at a time (a long clip is never whole in memory)."""
    with Image.open(photo) as im:
        rgb = im.convert("RGB")
    scale = 1.25 * max(width / rgb.width, height / rgb.height)
    size = (max(width + 2, round(rgb.width * scale)), max(height, round(rgb.height * scale)))
    arr = np.asarray(rgb.resize(size))
    spare_x, spare_y = arr.shape[1] - width, arr.shape[0] - height
    for i in range(count):
        f = i / max(1, count - 1)
        x, y = round(spare_x * f), round(spare_y * 0.5)
        yield np.ascontiguousarray(arr[y : y + height, x : x + width])


def make_mp4(
    path: Path,
    photo: Path,
    *,
    seconds: float = 2.0,
    fps: int = 30,
    width: int = 320,
    height: int = 240,
    audio: bool = False,
    rotation: int = 0,
    vfr: bool = False,
    container: str = "mp4",
) -> Path:
    """An H.264 (or VP9 for WebM) clip. `vfr`: frame gaps alternate 1 and 3 ticks of 1/(2 fps)
    (the average rate stays `fps`); `rotation`: the display matrix (degrees counter-clockwise)."""
    count = max(1, round(seconds * fps))
    frames = pan_frames(photo, width, height, count)
    codec = "libvpx-vp9" if container == "webm" else "libx264"
    with av.open(str(path), "w", format=container) as out:
        tick = Fraction(1, 2 * fps)
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = tick
        if rotation:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = out.add_stream("libopus" if container == "webm" else "aac", rate=48000)
        pts = 0
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = pts, tick
            pts += (1 if i % 2 == 0 else 3) if vfr else 2
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            _tone(out, sound, seconds)
    return path


def _tone(out: av.container.OutputContainer, sound: av.AudioStream, seconds: float) -> None:
    rate = 48000
    size = sound.codec_context.frame_size or 1024
    total = int(rate * seconds)
    for start in range(0, total, size):
        n = min(size, total - start)
        t = (np.arange(start, start + n) / rate).astype(np.float32)
        samples = (0.2 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        for packet in sound.encode(frame):
            out.mux(packet)
    for packet in sound.encode(None):
        out.mux(packet)


def make_animation(
    photo: Path, *, fmt: str = "GIF", frames: int = 12, delay_ms: int = 80, side: int = 200
) -> bytes:
    """An animated GIF or WebP (one frame: a still "animation")."""
    images = [Image.fromarray(a) for a in pan_frames(photo, side, side * 3 // 4, frames)]
    buf = io.BytesIO()
    images[0].save(buf, fmt, save_all=True, append_images=images[1:], duration=delay_ms, loop=0)
    return buf.getvalue()


def probe_output(data: bytes) -> dict[str, object]:
    """What a player sees: container, codec, size, frame count, duration, audio, rotation."""
    with av.open(io.BytesIO(data)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(v))
        info: dict[str, object] = {
            "format": c.format.name,
            "codec": v.codec_context.name,
            "pix_fmt": v.codec_context.pix_fmt,
            "width": v.codec_context.width,
            "height": v.codec_context.height,
            "frames": len(frames),
            "duration_s": float(c.duration / av.time_base) if c.duration else 0.0,
            "audio": c.streams.audio[0].codec_context.name if c.streams.audio else None,
            "rotation": float(getattr(frames[0], "rotation", 0) or 0) if frames else 0.0,
            "metadata": dict(c.metadata),
        }
    return info


def decode_rgb(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
