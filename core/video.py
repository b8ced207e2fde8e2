"""Clips in and out: probe, decode to evenly stepped RGB frames, encode H.264 MP4 (or GIF, or a
Telegram video sticker: WebM VP9).

Pure media, no model: the service feeds each frame through the engine between `ClipReader`
and `ClipWriter`, so a clip streams decode -> stylize -> encode and only a frame or two is in
memory at once. PyAV (FFmpeg inside its wheel) reads MP4/MOV/WebM/MKV and writes the result;
Pillow reads animated GIF and WebP (this FFmpeg build cannot decode animated WebP, and Pillow
applies GIF frame disposal exactly).

Output frames are at a constant rate: the input's average rate capped at `max_fps`, each tick
showing the last input frame at or before it, so a variable-rate clip keeps its timing and a
60 fps clip drops every other frame. The audio track is copied packet by packet (no
re-encode) when MP4 can carry its codec. Rotation (the display matrix) is applied to the
pixels; no metadata of the input reaches the output.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any, Final

import av
import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageSequence

from core.errors import (
    AnimeBotError,
    DamagedVideo,
    EmptyInput,
    ImageTooLarge,
    InputError,
    NotAVideo,
)

U8 = npt.NDArray[np.uint8]
Source = bytes | Path

# Audio codecs MP4 can carry as they are; others (e.g. Vorbis from WebM) are dropped with a note.
MP4_AUDIO = frozenset({"aac", "mp3", "opus", "alac", "flac", "ac3", "eac3"})
# Pillow handles these: animated images (FFmpeg cannot decode animated WebP).
_PIL_MAGIC = (b"GIF87a", b"GIF89a")
# A bit rate this high needs no cap: CRF alone stays far below it at 720p.
_UNCAPPED_KBPS = 20_000
# A GIF frame delay under this is shown by browsers as 100 ms; do the same.
_GIF_MIN_DELAY_MS = 20


@dataclass(frozen=True)
class ClipLimits:
    max_seconds: float = 15.0  # longer clips: the first max_seconds are converted (a note)
    max_frames: int = 450  # output frames at most (cuts the duration further if needed)
    max_side: int = 720  # longer sides are scaled down (a note)
    max_bytes: int = 20 * 1024 * 1024  # larger uploads are refused before reading them
    max_fps: float = 30.0  # higher rates drop frames evenly


@dataclass(frozen=True)
class ClipInfo:
    """What the header and a packet scan (no decoding) tell about an upload."""

    kind: str  # "mp4", "webm", "gif", "webp", ...
    width: int  # as displayed (rotation applied)
    height: int
    rotation: int  # degrees counter-clockwise to apply to the stored pixels (0/90/180/270)
    fps: float  # average input rate over the part that will be read
    duration_s: float  # of the whole input as far as the header or scan tells
    audio_codec: str | None
    animated: bool  # an image format (GIF/WebP) rather than a video container


@dataclass(frozen=True)
class ClipPlan:
    """What the output will be: every number the reader, writer and cost need."""

    info: ClipInfo
    fps: Fraction
    frames: int
    width: int  # even (yuv420p)
    height: int
    seconds: float  # of input read and output written
    keep_audio: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def pixels(self) -> int:
        """Frames x pixels: what the clip costs to stylize."""
        return self.frames * self.width * self.height


@dataclass(frozen=True)
class EncodedClip:
    data: bytes
    mime: str
    ext: str
    width: int
    height: int
    frames: int
    fps: float
    seconds: float
    has_audio: bool


def _container_magic(data: bytes) -> bool:
    """MP4/MOV (`ftyp` box) or Matroska/WebM (EBML header)."""
    return data[4:8] == b"ftyp" or data[:4] == b"\x1a\x45\xdf\xa3"


def looks_like_clip(data: bytes) -> bool:
    """Whether an upload is a video container or an animated GIF/WebP (cheap sniff)."""
    head = data[:64]
    if _container_magic(head):
        return True
    if head.startswith(_PIL_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return _animated_image(data)
    return False


def _animated_image(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return bool(getattr(im, "is_animated", False))
    except Exception:
        return False


def _read(source: Source, max_bytes: int) -> bytes:
    data = source.read_bytes() if isinstance(source, Path) else bytes(source)
    if not data:
        raise EmptyInput("empty upload")
    if len(data) > max_bytes:
        raise ImageTooLarge("clip upload too large", limit=max_bytes)
    return data


def _is_pil(data: bytes) -> bool:
    return data[:6] in _PIL_MAGIC or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


# -- probing -----------------------------------------------------------------------------------


def plan(source: Source, limits: ClipLimits) -> ClipPlan:
    """Read the header and scan packets up to the limit (never decoding a frame) and decide
    the output. Raises a typed InputError for anything unreadable."""
    data = _read(source, limits.max_bytes)
    info = _probe_pil(data, limits) if _is_pil(data) else _probe_av(data, limits)
    notes: list[str] = []
    seconds = info.duration_s
    if seconds > limits.max_seconds + 1e-6:
        seconds = limits.max_seconds
        notes.append("cut")
    fps = _rate(info.fps, limits.max_fps)
    if info.fps > limits.max_fps + 0.01:
        notes.append("fps_capped")
    frames = max(1, round(seconds * fps))
    if frames > limits.max_frames:
        frames = limits.max_frames
        seconds = float(frames / fps)
        if "cut" not in notes:
            notes.append("cut")
    seconds = float(frames / fps)
    width, height = _fit(info.width, info.height, limits.max_side)
    if max(info.width, info.height) > limits.max_side:
        notes.append("downscaled")
    keep_audio = info.audio_codec in MP4_AUDIO
    if info.audio_codec is not None and not keep_audio:
        notes.append("audio_dropped")
    return ClipPlan(info, fps, frames, width, height, seconds, keep_audio, tuple(notes))


def _rate(fps: float, cap: float) -> Fraction:
    """The output rate: the input's, capped, as a small fraction (29.97 stays 30000/1001)."""
    rate = min(fps, cap) if fps > 0 else min(25.0, cap)
    return Fraction(rate).limit_denominator(1001)


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Scale to fit `max_side`, keep the aspect, round to even sides (yuv420p)."""
    scale = min(1.0, max_side / max(width, height))
    w = max(2, round(width * scale / 2) * 2)
    h = max(2, round(height * scale / 2) * 2)
    return w, h


def _probe_pil(data: bytes, limits: ClipLimits) -> ClipInfo:
    try:
        with Image.open(io.BytesIO(data)) as im:
            kind = (im.format or "gif").lower()
            width, height = im.size
            if width * height > 40_000_000:
                raise ImageTooLarge("animation too large", pixels=width * height)
            total_ms, count = 0, 0
            for frame in ImageSequence.Iterator(im):
                frame.load()  # WebP sets a frame's duration when it is loaded
                total_ms += _delay_ms(frame)
                count += 1
                if total_ms / 1000 > limits.max_seconds:
                    break
    except InputError:
        raise
    except Exception as exc:
        raise DamagedVideo(f"animation unreadable: {type(exc).__name__}") from None
    seconds = total_ms / 1000
    fps = count / seconds if seconds > 0 else 10.0
    return ClipInfo(kind, width, height, 0, fps, seconds, None, animated=True)


def _delay_ms(frame: Image.Image) -> int:
    delay = int(frame.info.get("duration", 100) or 0)
    return 100 if delay < _GIF_MIN_DELAY_MS else delay


def _open_av(data: bytes) -> Any:
    try:
        return av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except av.error.InvalidDataError:
        if _container_magic(data):  # a video's header, then nothing readable
            raise DamagedVideo("video container unreadable") from None
        raise NotAVideo("not a video container") from None
    except av.error.FFmpegError as exc:
        raise DamagedVideo(f"container unreadable: {type(exc).__name__}") from None


def _probe_av(data: bytes, limits: ClipLimits) -> ClipInfo:
    with _open_av(data) as container:
        if not container.streams.video:
            raise NotAVideo("no video stream")
        video = container.streams.video[0]
        ctx = video.codec_context
        if not ctx.width or not ctx.height:
            raise DamagedVideo("video stream without a size")
        audio = container.streams.audio[0] if container.streams.audio else None
        header_s = container.duration / av.time_base if container.duration else 0.0
        count, first, last = _scan_video(container, video, limits.max_seconds)
        kind = container.format.name.split(",")[0]
        audio_codec = audio.codec_context.name if audio is not None else None
    if count == 0:
        raise DamagedVideo("no video packets")
    rotation = _first_rotation(data)
    span = max(0.0, last - first)
    fps = (count - 1) / span if count > 1 and span > 0 else float(video.average_rate or 25)
    duration = max(header_s, span + 1 / max(fps, 1e-3))
    width, height = (ctx.height, ctx.width) if rotation in (90, 270) else (ctx.width, ctx.height)
    if width * height > 40_000_000:
        raise ImageTooLarge("video frames too large", pixels=width * height)
    return ClipInfo(kind, width, height, rotation, fps, duration, audio_codec, animated=False)


def _first_rotation(data: bytes) -> int:
    """Counter-clockwise degrees the display matrix asks for (a multiple of 90), read from the
    first decoded frame, where FFmpeg exposes it. Decodes one frame only."""
    with _open_av(data) as container:
        try:
            frame = next(container.decode(container.streams.video[0]), None)
        except av.error.FFmpegError:
            raise DamagedVideo("first frame undecodable") from None
    if frame is None:
        raise DamagedVideo("no frame decodable")
    return round(float(getattr(frame, "rotation", 0) or 0) / 90) % 4 * 90


def _scan_video(container: Any, video: Any, max_seconds: float) -> tuple[int, float, float]:
    """Count video packets up to `max_seconds` past the first (demux only: cheap, and a
    ten-minute clip is never read past the limit). Returns count, first and last time."""
    count, first, last = 0, math.inf, -math.inf
    tb = float(video.time_base)
    try:
        for packet in container.demux(video):
            if packet.pts is None:
                continue
            t = packet.pts * tb
            if count and t - first > max_seconds + 1.0:
                break
            count += 1
            first, last = min(first, t), max(last, t)
    except av.error.FFmpegError:
        pass  # a damaged tail: what was read so far counts
    return count, (first if count else 0.0), (last if count else 0.0)


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipFrame:
    index: int
    rgb: U8  # plan.height x plan.width x 3
    repeat: bool  # the same input frame as the previous output frame


AudioSink = Callable[[Any], None]


class ClipReader:
    """The planned output frames, decoded on demand. `on_audio` receives the audio packets
    that fall inside the plan (MP4 inputs with a codec MP4 carries), already shifted so the
    clip starts at 0, interleaved with the frames as the input stores them."""

    def __init__(self, source: Source, clip: ClipPlan, on_audio: AudioSink | None = None) -> None:
        self.plan = clip
        self._data = _read(source, 1 << 62)
        self._on_audio = on_audio if clip.keep_audio else None
        self.decoded = 0  # input frames decoded (for tests: a long clip stops early)

    def frames(self) -> Generator[ClipFrame, None, None]:
        timed = self._pil_frames() if self.plan.info.animated else self._av_frames()
        yield from _step(timed, self.plan)

    def _pil_frames(self) -> Iterator[tuple[float, Callable[[], U8]]]:
        t = 0.0
        try:
            with Image.open(io.BytesIO(self._data)) as im:
                for frame in ImageSequence.Iterator(im):
                    rgb = np.asarray(frame.convert("RGB"))
                    self.decoded += 1
                    yield t, partial(_resize, rgb, self.plan.width, self.plan.height)
                    t += _delay_ms(frame) / 1000
                    if t > self.plan.seconds:
                        return
        except Exception as exc:
            if self.decoded == 0:
                raise DamagedVideo(f"animation unreadable: {type(exc).__name__}") from None

    def _av_frames(self) -> Iterator[tuple[float, Callable[[], U8]]]:
        with _open_av(self._data) as container:
            video = container.streams.video[0]
            video.thread_type = "AUTO"
            audio = container.streams.audio[0] if self._on_audio else None
            start = _start_time(container)
            streams = [video] if audio is None else [video, audio]
            try:
                for packet in container.demux(streams):
                    if packet.stream.type == "audio":
                        self._audio(packet, start)
                        continue
                    for frame in packet.decode():
                        self.decoded += 1
                        t = (frame.time or 0.0) - start
                        yield t, partial_frame(frame, self.plan)
                        if t > self.plan.seconds:
                            return
            except av.error.FFmpegError as exc:
                if self.decoded == 0:
                    raise DamagedVideo(f"video undecodable: {type(exc).__name__}") from None
                # a damaged tail: the frames before it stand; the last one is held to the end

    def _audio(self, packet: Any, start: float) -> None:
        if packet.pts is None or self._on_audio is None:
            return
        tb = packet.time_base
        shift = round(start / tb)
        t = (packet.pts - shift) * tb
        if t < 0 or t >= self.plan.seconds:
            return
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        self._on_audio(packet)


def _start_time(container: Any) -> float:
    return container.start_time / av.time_base if container.start_time else 0.0


def partial_frame(frame: Any, clip: ClipPlan) -> Callable[[], U8]:
    """Convert a decoded frame to the plan's RGB only if it is shown (dropped frames never are)."""

    def convert() -> U8:
        turns = clip.info.rotation // 90
        w, h = (clip.height, clip.width) if turns % 2 else (clip.width, clip.height)
        rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
        if turns:
            rgb = np.ascontiguousarray(np.rot90(rgb, turns))
        return np.asarray(rgb, dtype=np.uint8)

    return convert


def _resize(rgb: U8, width: int, height: int) -> U8:
    if rgb.shape[1] == width and rgb.shape[0] == height:
        return np.ascontiguousarray(rgb)
    return np.asarray(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA), np.uint8)


def _step(
    timed: Iterator[tuple[float, Callable[[], U8]]], clip: ClipPlan
) -> Generator[ClipFrame, None, None]:
    """Constant-rate output: tick k (at k / fps) shows the last input frame at or before it
    (the first frame for ticks before it). A frame that no tick shows is never converted."""
    period = 1 / float(clip.fps)
    tick = 0
    current: Callable[[], U8] | None = None
    shown: U8 | None = None
    shown_of: Callable[[], U8] | None = None

    def emit() -> ClipFrame:
        nonlocal shown, shown_of, tick
        assert current is not None
        repeat = shown_of is current
        if not repeat:
            shown, shown_of = current(), current
        assert shown is not None
        out = ClipFrame(tick, shown, repeat)
        tick += 1
        return out

    for t, convert in timed:
        if current is not None:
            while tick < clip.frames and tick * period < t - 1e-6:
                yield emit()
        current = convert
        if tick >= clip.frames:
            return
    if current is None:
        raise DamagedVideo("no frame could be decoded")
    while tick < clip.frames:
        yield emit()


# -- writing -----------------------------------------------------------------------------------


class ClipWriter:
    """H.264 in MP4 (`yuv420p`, `+faststart`, no metadata), written to a private temporary
    file (faststart rewrites the file, which needs a real file) and returned as bytes.

    `max_bytes`: the platform's upload limit; the video bit rate is capped (VBV) so the whole
    file fits with a margin. `audio_template`: the input's audio stream, copied as it is."""

    def __init__(self, clip: ClipPlan, *, max_bytes: int = 0, crf: int = 23) -> None:
        self.plan = clip
        self._dir = tempfile.TemporaryDirectory(prefix="animebot-clip-")
        self._path = Path(self._dir.name) / "out.mp4"
        self._out = av.open(
            str(self._path),
            mode="w",
            format="mp4",
            options={"movflags": "+faststart"},
            container_options={"fflags": "+bitexact"},
        )
        self._out.metadata.clear()
        stream = self._out.add_stream("libx264", rate=clip.fps)
        stream.width, stream.height = clip.width, clip.height
        stream.pix_fmt = "yuv420p"
        # One x264 thread: encoding runs beside inference on a thread of its own (ClipJob), and
        # x264's frame threads would each hold frames in flight (tens of MB at 480p).
        options: dict[str, str] = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        kbps = video_kbps(max_bytes, clip.seconds)
        if kbps:
            options.update(maxrate=f"{kbps}k", bufsize=f"{kbps}k")
        stream.options = dict(options)
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        self._video = stream
        self._audio: Any = None
        self.frames = 0
        self.has_audio = False

    def add_audio(self, source: Source) -> None:
        """Open an audio stream copied from the input's first audio stream."""
        with _open_av(_read(source, 1 << 62)) as container:
            audio = container.streams.audio[0]
            self._audio = self._out.add_stream_from_template(audio)
            self._audio.metadata.clear()

    def mux_audio(self, packet: Any) -> None:
        if self._audio is None:
            return
        packet.stream = self._audio
        self._out.mux(packet)
        self.has_audio = True

    def write(self, rgb: U8) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = self.frames
        frame.time_base = 1 / self.plan.fps
        for packet in self._video.encode(frame):
            self._out.mux(packet)
        self.frames += 1

    def finish(self) -> EncodedClip:
        try:
            for packet in self._video.encode(None):
                self._out.mux(packet)
            self._out.close()
            data = self._path.read_bytes()
        finally:
            self.abort()
        return EncodedClip(
            data,
            "video/mp4",
            "mp4",
            self.plan.width,
            self.plan.height,
            self.frames,
            float(self.plan.fps),
            self.frames / float(self.plan.fps),
            self.has_audio,
        )

    def abort(self) -> None:
        """Drop the output (cancellation, failure); safe to call twice."""
        with contextlib.suppress(AnimeBotError, av.error.FFmpegError, ValueError):
            self._out.close()
        self._dir.cleanup()


def video_kbps(max_bytes: int, seconds: float, audio_kbps: int = 192) -> int:
    """The video bit rate that fits `max_bytes` for `seconds`, with 10% for the container and
    room for the audio; 0 when there is no limit."""
    if max_bytes <= 0 or seconds <= 0:
        return 0
    total = max_bytes * 8 * 0.9 / seconds / 1000 - audio_kbps
    return 0 if total >= _UNCAPPED_KBPS else max(100, int(total))


def frame_difference(a: U8, b: U8) -> float:
    """Mean absolute difference of two frames (flicker is the output's over the input's).
    OpenCV's L1 norm: the same number as NumPy's int16 round trip, several times faster."""
    return float(cv2.norm(a, b, cv2.NORM_L1)) / a.size


FrameFn = Callable[[U8], U8]
# Frames in order -> their results in order (a caller may run them side by side).
BatchFn = Callable[[list[U8]], list[U8]]


def per_frame(convert: FrameFn) -> BatchFn:
    """A batch function that converts one frame after another on the calling thread."""
    return lambda frames: [convert(rgb) for rgb in frames]


# One encoder thread for every clip of the process: its tasks run in the order submitted, so
# each clip's frames and audio stay in order, and its heap is reused clip after clip (a thread
# per clip left each one's freed x264 buffers in a heap of its own: +70 MB peak in
# bench/video.py). Encoding takes a fifth of a frame's inference, so one keeps up with several
# clips at once.
_ENCODER = ThreadPoolExecutor(1, thread_name_prefix="animebot-encode")


class ClipJob:
    """One clip streaming through decode -> `convert` -> encode, a few frames per `step`, so
    a caller can give the worker back between steps (the fair queue) and stop at any step.

    Encoding runs on the encoder thread, one chunk behind: while the workers stylize
    chunk n+1, chunk n is encoded (and the audio muxed, in order, on that same thread), so
    the cores are not idle while x264 works. At most one chunk waits to be encoded. A frame
    identical to the one before it (GIFs and screen recordings hold frames) reuses its
    result instead of being stylized again.

    Also measures flicker: the mean absolute frame-to-frame difference of the output over the
    input's (on the frames as converted; 1 means the style adds no flicker of its own)."""

    def __init__(self, source: Source, clip: ClipPlan, *, max_bytes: int = 0) -> None:
        self.plan = clip
        self._writer = ClipWriter(clip, max_bytes=max_bytes)
        self._encoder = _ENCODER
        self._encoding: Future[None] | None = None  # the chunk being encoded
        try:
            if clip.keep_audio:
                self._writer.add_audio(source)
            # not a method of the job: the reader would hold the job, a reference cycle that
            # kept each finished clip's frames and x264 context (117 MB at 720p) until the
            # garbage collector happened to run
            on_audio = partial(_submit_audio, self._encoder, self._writer)
            self._reader = ClipReader(source, clip, on_audio=on_audio)
            self._frames = self._reader.frames()
        except BaseException:
            self._writer.abort()
            raise
        self.done = 0
        self.reused = 0  # frames identical to the one before: not stylized again
        self._lock = threading.Lock()
        self._stepping = False
        self._cancelled = False
        self._aborted = False
        self._last_in: U8 | None = None  # of the last frame stylized (the step thread's)
        self._last_out: U8 | None = None
        self._diff_last: tuple[U8, U8] | None = None  # the encoder thread's (input, output)
        self._diff_in = 0.0
        self._diff_out = 0.0

    @property
    def total(self) -> int:
        return self.plan.frames

    @property
    def finished(self) -> bool:
        return self.done >= self.plan.frames

    @property
    def decoded(self) -> int:
        return self._reader.decoded

    @property
    def flicker(self) -> float:
        return self._diff_out / self._diff_in if self._diff_in > 0 else 1.0

    def cancel(self) -> None:
        """Stop from any thread: a step under way ends after its current frame and drops the
        output itself; otherwise it is dropped now. Idempotent."""
        with self._lock:
            self._cancelled = True
            stepping = self._stepping
        if not stepping:
            self.abort()

    def step(self, convert: BatchFn, frames: int = 1) -> int:
        """Convert (as one batch) and hand to the encoder up to `frames` more frames; returns
        how many are done in all. Cancellation takes effect between batches."""
        with self._lock:
            if self._cancelled:
                return self.done
            self._stepping = True
        try:
            self._step(convert, frames)
        finally:
            with self._lock:
                self._stepping = False
                cancelled = self._cancelled
            if cancelled:
                self.abort()
        return self.done

    def _step(self, convert: BatchFn, frames: int) -> None:
        batch: list[ClipFrame] = []
        for _ in range(frames):
            frame = next(self._frames, None)
            if frame is None:
                break
            batch.append(frame)
        if not batch:
            self.done = self.plan.frames  # the reader pads to the plan; nothing is left
            return
        # a repeat shows the frame before it again (never the clip's first frame); so does a
        # frame whose pixels equal the one before it
        fresh: list[ClipFrame] = []
        previous = self._last_in
        again: list[bool] = []
        for frame in batch:
            same = frame.repeat or (previous is not None and np.array_equal(frame.rgb, previous))
            again.append(same)
            if not same:
                fresh.append(frame)
                previous = frame.rgb
            elif not frame.repeat:
                self.reused += 1
        outputs = iter(convert([f.rgb for f in fresh]))
        chunk: list[tuple[U8 | None, U8]] = []  # (input when stylized, output) in order
        for frame, same in zip(batch, again, strict=True):
            if same:
                out = self._last_out
                assert out is not None
                chunk.append((None, out))
            else:
                out = next(outputs)
                chunk.append((frame.rgb, out))
                self._last_in = frame.rgb
            self._last_out = out
        self._wait_encoder()  # at most one chunk waits to be encoded
        self._encoding = self._encoder.submit(self._encode, chunk)
        self.done += len(batch)

    def _encode(self, chunk: list[tuple[U8 | None, U8]]) -> None:
        """On the encoder thread: flicker sums and the frames into the writer, in order."""
        for rgb, out in chunk:
            if rgb is not None:
                if self._diff_last is not None:
                    last_in, last_out = self._diff_last
                    self._diff_in += frame_difference(rgb, last_in)
                    self._diff_out += frame_difference(out, last_out)
                self._diff_last = (rgb, out)
            self._writer.write(out)

    def _wait_encoder(self) -> None:
        if self._encoding is not None:
            self._encoding.result()  # an encoder failure fails the step that follows
            self._encoding = None

    def finish(self) -> EncodedClip:
        """Encode what remains and return the clip (call once `finished`)."""
        self._frames.close()
        self._wait_encoder()
        try:
            return self._encoder.submit(self._writer.finish).result()
        finally:
            self._last_in = self._last_out = self._diff_last = None

    def abort(self) -> None:
        """Drop the output. Never waits: what is queued for the encoder is cancelled, and the
        writer is closed on the encoder thread after the chunk it may be on."""
        if self._aborted:
            return
        self._aborted = True
        self._frames.close()
        if self._encoding is not None:
            self._encoding.cancel()
        self._encoder.submit(self._drop)
        self._last_in = self._last_out = None

    def _drop(self) -> None:
        """On the encoder thread, after the chunk it may be on: the output and the frames."""
        self._writer.abort()
        self._diff_last = None


def _submit_audio(encoder: ThreadPoolExecutor, writer: ClipWriter, packet: Any) -> None:
    """Audio packets are muxed on the encoder thread, in order with the video."""
    encoder.submit(writer.mux_audio, packet)


def transcode(
    source: Source, clip: ClipPlan, convert: FrameFn, *, max_bytes: int = 0
) -> EncodedClip:
    """The whole clip on the calling thread (tests, scripts)."""
    job = ClipJob(source, clip, max_bytes=max_bytes)
    try:
        while not job.finished:
            job.step(per_frame(convert), 16)
    except BaseException:
        job.abort()
        raise
    return job.finish()


def to_gif(mp4: bytes, max_bytes: int = 0) -> bytes | None:
    """An MP4 made here, again as a looping GIF (where a platform plays GIFs inline and
    videos only on a click); None when the GIF would not fit `max_bytes` (GIFs are several
    times larger). One palette for the whole clip, from its first frame, and no dithering:
    a palette or dither pattern of its own per frame would flicker."""
    with tempfile.TemporaryDirectory(prefix="animebot-gif-") as folder:
        path = Path(folder) / "out.gif"
        with _open_av(mp4) as source, av.open(str(path), mode="w", format="gif") as out:
            video = source.streams.video[0]
            rate = video.average_rate or Fraction(10)
            stream = out.add_stream("gif", rate=rate)
            stream.width = video.codec_context.width
            stream.height = video.codec_context.height
            stream.pix_fmt = "pal8"
            stream.options = {"loop": "0"}
            palette: Image.Image | None = None
            argb: npt.NDArray[np.uint8] | None = None
            written = 0
            for index, frame in enumerate(source.decode(video)):
                image = frame.to_image()
                if palette is None:
                    palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
                    argb = _argb(palette)
                indices = np.asarray(image.quantize(palette=palette, dither=Image.Dither.NONE))
                pair: Any = (indices, argb)  # pal8 takes (indices, ARGB palette)
                gif_frame = av.VideoFrame.from_ndarray(pair, format="pal8")
                gif_frame.pts, gif_frame.time_base = index, 1 / rate
                for packet in stream.encode(gif_frame):
                    out.mux(packet)
                    written += packet.size
                if max_bytes and written > max_bytes:
                    return None
            for packet in stream.encode(None):
                out.mux(packet)
        data = path.read_bytes()
    return None if max_bytes and len(data) > max_bytes else data


# Telegram video stickers (https://core.telegram.org/stickers#video-requirements): WebM VP9,
# one side exactly 512 px (the other at most 512), at most 3 s and 30 fps, no audio, 256 KB.
STICKER_ENCODER: Final = "libvpx-vp9"
STICKER_SIDE = 512
STICKER_SECONDS = 3.0
STICKER_FPS = 30.0
STICKER_BYTES = 256 * 1024


def can_make_stickers() -> bool:
    """Whether this PyAV wheel's FFmpeg has the VP9 encoder video stickers need."""
    return STICKER_ENCODER in av.codecs_available


def sticker_size(width: int, height: int, side: int = STICKER_SIDE) -> tuple[int, int]:
    """The longer side exactly `side` (scaled up or down), the other in proportion (even)."""
    if width >= height:
        return side, min(side, max(2, round(height * side / width / 2) * 2))
    return min(side, max(2, round(width * side / height / 2) * 2)), side


def to_sticker(mp4: bytes, max_bytes: int = STICKER_BYTES, tries: int = 4) -> EncodedClip:
    """An MP4 made here (already cut to the sticker's duration and rate) again as a Telegram
    video sticker: WebM VP9, no audio, the longer side 512 px, the bit rate chosen to fit
    `max_bytes` (encoded again at a lower rate, at most `tries` times, when it does not)."""
    with _open_av(mp4) as source:
        video = source.streams.video[0]
        rate = video.average_rate or Fraction(25)
        frames = sum(1 for _ in source.demux(video) if _.size)
    seconds = max(frames / float(rate), 1 / float(rate))
    kbps = max(50, int(max_bytes * 8 * 0.85 / seconds / 1000))
    for _ in range(tries):
        clip = _sticker_pass(mp4, kbps)
        if len(clip.data) <= max_bytes:
            return clip
        kbps = max(20, int(kbps * max_bytes / len(clip.data) * 0.85))
    raise ImageTooLarge("sticker does not fit", limit=max_bytes)


def _sticker_pass(mp4: bytes, kbps: int) -> EncodedClip:
    with tempfile.TemporaryDirectory(prefix="animebot-sticker-") as folder:
        path = Path(folder) / "out.webm"
        with (
            _open_av(mp4) as source,
            av.open(
                str(path), mode="w", format="webm", container_options={"fflags": "+bitexact"}
            ) as out,
        ):
            out.metadata.clear()
            video = source.streams.video[0]
            rate = video.average_rate or Fraction(25)
            width, height = sticker_size(video.codec_context.width, video.codec_context.height)
            stream = out.add_stream(STICKER_ENCODER, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.bit_rate = kbps * 1000
            stream.options = {
                "deadline": "realtime",
                "cpu-used": "8",
                "maxrate": f"{kbps}k",
                "bufsize": f"{kbps}k",
                "auto-alt-ref": "0",
            }
            count = 0
            for frame in source.decode(video):
                scaled = frame.reformat(width=width, height=height, format="yuv420p")
                scaled.pts, scaled.time_base = count, 1 / rate
                for packet in stream.encode(scaled):
                    out.mux(packet)
                count += 1
            for packet in stream.encode(None):
                out.mux(packet)
        data = path.read_bytes()
    fps = float(rate)
    return EncodedClip(data, "video/webm", "webm", width, height, count, fps, count / fps, False)


def _argb(palette: Image.Image) -> npt.NDArray[np.uint8]:
    """A quantized image's palette as the 256 x 4 ARGB table PyAV's pal8 frames take."""
    rgb = np.zeros((256, 3), np.uint8)
    found = np.asarray(palette.getpalette() or [], np.uint8).reshape(-1, 3)[:256]
    rgb[: len(found)] = found
    return np.concatenate([np.full((256, 1), 255, np.uint8), rgb], axis=1)
