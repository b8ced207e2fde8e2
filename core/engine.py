"""The one inference engine of a process: every front end converts through it.

Models are loaded once. Work is admitted through an `asyncio.Semaphore` (one slot per worker)
and runs in a thread pool, so the event loop only awaits. ONNX Runtime and OpenCV release the
GIL, so worker threads really run in parallel.

A job that finds other slots free borrows them and splits its inference into that many tiles
run side by side (faces too), so one person on an idle bot gets every core; under load no
slot is free and each job runs on its own core, which is what throughput wants.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image

from core import formats
from core.errors import UnknownStyle
from core.imageio import (
    DecodedImage,
    EncodedImage,
    decode,
    encode,
    encode_to_fit,
    pixel_digest,
    resize_max_side,
)
from core.registry import Registry, StyleSpec
from core.session import RGB, StyleSession, thumbnail
from core.tiling import CONTEXT, OVERLAP, MapFn, plan_tile, stylize_tiled, tile_length

if TYPE_CHECKING:
    from core.faces import FaceDetector

log = logging.getLogger("animebot.engine")

# Bump when the pipeline changes what it produces for the same model files (cache keys use it).
# p2: tile grid planned per photo. Whether a photo was split across idle cores changes its
# pixels by well under one level on average (seams are cross-faded), so that is not keyed.
# p3: side-by-side results fit max_side as a whole (they were up to twice as wide).
PIPELINE_VERSION = "p3"

ImageInput = bytes | bytearray | memoryview | Path | Image.Image | np.ndarray | DecodedImage


@dataclass(frozen=True)
class EngineConfig:
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    threads_per_job: int = 1
    max_side: int = 4096  # larger inputs are downscaled to this long side first
    min_infer_side: int = 256  # smaller inputs are upscaled for the network, then back
    # Activations cost ~300 bytes per pixel and ONNX Runtime's arena keeps its high-water mark:
    # photos up to `whole_max_pixels` (1280x960, every Telegram photo) run in one pass, larger
    # ones in tiles of at most `tile_max_pixels`, context included, shaped by `plan_tile` to
    # compute few pixels twice. The budget trades time for memory (`bench/engine.py
    # --tile-max-pixels N`: infer time per MP of a 1920x1280 / 4000x2666 photo against a
    # single pass; 12 MP peak RSS): 1.25 MP tiles 1.25x / 1.33x, 802 MB; 0.6 MP tiles 1.40x /
    # 1.48x, 515 MB. The fixed 640 px squares used before took 1.9x as long as 0.6 MP
    # planned tiles on the 1920x1280 photo.
    whole_max_pixels: int = 1_250_000
    tile_max_pixels: int = 600_000
    # Pixels under inference at once in the whole engine, every job together: what the ONNX
    # Runtime arena grows to (~230 bytes per pixel). A job plans its passes at most this
    # divided by the slots busy when it starts (2 workers: a 1280x960 photo is one pass alone,
    # two 960x656 tiles beside another job), and each pass waits until its pixels fit, so the
    # bound holds whatever the timing. 0: `infer_pixels_per_worker` per worker, and at least a
    # whole 1.25 MP pass (1.5 MP on 2 workers, ~0.35 GB of arena).
    infer_max_pixels: int = 0
    infer_pixels_per_worker: int = 750_000
    # photos at least this large are split across the slots a job could borrow
    split_min_pixels: int = 250_000
    max_pixels: int = 40_000_000
    max_bytes: int = 50 * 1024 * 1024
    min_side: int = 16
    face_size: int = 512
    jpeg_quality: int = 92
    # After a burst (no conversion for this long), the ONNX Runtime arenas and the C heap give
    # their free memory back to the system; 0 turns that off.
    idle_release_s: float = 5.0

    @property
    def infer_budget(self) -> int:
        if self.infer_max_pixels > 0:
            return self.infer_max_pixels
        return max(self.whole_max_pixels, self.infer_pixels_per_worker * self.workers)

    @property
    def decoders(self) -> int:
        """Photos decoded at once outside the worker slots (to identify them for the cache and
        the fair queue): a 12 MP decode peaks at ~116 MB, so this stage is kept narrow."""
        return max(1, self.workers // 2)

    @property
    def spin(self) -> bool:
        """Busy-wait between operators only when each job has threads to keep and every job's
        threads fit the cores: then nothing else needs the cycles a spinning thread burns."""
        cores = os.cpu_count() or 1
        return self.threads_per_job > 1 and self.workers * self.threads_per_job <= cores


@dataclass(frozen=True)
class Timings:
    decode_ms: float = 0.0
    detect_ms: float = 0.0
    infer_ms: float = 0.0
    blend_ms: float = 0.0
    encode_ms: float = 0.0
    total_ms: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 1) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Identified:
    """What the cache needs to know about an upload: its pixel digest and size. `decoded` is
    the pixels themselves only when the caller asked to keep them (see `Engine.identify`)."""

    digest: str
    width: int
    height: int
    decoded: DecodedImage | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Conversion:
    image: EncodedImage
    style: str
    model_version: str
    faces_found: int
    timings: Timings
    notes: tuple[str, ...]
    input_width: int
    input_height: int


class _Clock:
    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.marks[name] = self.marks.get(name, 0.0) + (now - self._t) * 1000
        self._t = now


def side_by_side_limit(height: int, width: int, limit: int) -> int:
    """The long side to scale a photo to (as `resize_max_side` does) so that the photo and its
    result side by side, 2*width x height, fit `limit`."""
    long = max(height, width)
    side = min(long, long * limit // max(height, 2 * width))
    while side > 1:  # resize_max_side rounds: step down until the rounded pair fits
        scale = side / long
        if side == long or max(round(height * scale), 2 * round(width * scale)) <= limit:
            break
        side -= 1
    return max(1, side)


class Engine:
    def __init__(
        self, registry: Registry | None = None, config: EngineConfig | None = None
    ) -> None:
        self.registry = registry or Registry.default()
        self.config = config or EngineConfig()
        tune_malloc()
        self._pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="animebot-engine")
        # Decoding and hashing get their own threads: a newcomer's photo must be decoded (and so
        # take its place in the service's fair queue) while conversions occupy every worker.
        # Few of them: every photo in this stage is whole in memory at once.
        self._decoders = ThreadPoolExecutor(
            self.config.decoders, thread_name_prefix="animebot-decode"
        )
        # Tiles and faces of one job run here, side by side, when it holds more than one slot.
        self._helpers = ThreadPoolExecutor(self.config.workers, thread_name_prefix="animebot-tile")
        self._slots: asyncio.Semaphore | None = None
        self._sessions: dict[str, StyleSession] = {}
        self._detector: FaceDetector | None = None
        self._lock = threading.Lock()
        self._infer = PixelBudget(self.config.infer_budget)
        self.active = 0
        self._held = 0  # worker slots held by running jobs, borrowed ones included
        self._started = 0  # conversions begun so far: tells the idle release a burst went on
        self._idle_timer: asyncio.TimerHandle | None = None
        self._releasing: asyncio.Future[None] | None = None
        self.releases = 0  # memory releases done (for tests and diagnostics)

    # -- models -------------------------------------------------------------------------------

    def session(self, spec: StyleSpec) -> StyleSession:
        with self._lock:
            if spec.name not in self._sessions:
                self._sessions[spec.name] = StyleSession(
                    spec, self.config.threads_per_job, self.config.spin
                )
            return self._sessions[spec.name]

    def detector(self) -> FaceDetector:
        with self._lock:
            if self._detector is None:
                from core.faces import FaceDetector

                self._detector = FaceDetector(threads=self.config.threads_per_job)
            return self._detector

    def warm_up(self) -> None:
        """Load every model and the face detector now, so the first user does not wait."""
        tiny = np.full((64, 64, 3), 128, np.uint8)
        for spec in self.registry.all():
            self.session(spec).run(tiny)
        self.detector().detect(np.full((256, 256, 3), 128, np.uint8))

    def resolve(self, style: str | None) -> StyleSpec:
        spec = self.registry.get(style or self.registry.default_style())
        if spec.kind != "scene":
            raise UnknownStyle(spec.name, self.registry.names())
        return spec

    def model_version(self, style: str | None, faces: bool) -> str:
        """Everything that determines the output for given pixels and options (for cache keys)."""
        spec = self.resolve(style)
        face = self.registry.face_model_for(spec) if faces else None
        tuning = ""  # face2paint settings a face model names, when not the defaults
        if face is not None and (face.color_match != 0.5 or face.exposure_floor):
            tuning = f"~c{face.color_match:g}e{face.exposure_floor:g}"
        return f"{PIPELINE_VERSION}:{spec.name}@{spec.version}" + (
            f"+{face.name}@{face.version}{tuning}" if face else ""
        )

    # -- async API ------------------------------------------------------------------------------

    def _semaphore(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.config.workers)
        return self._slots

    async def run_in_pool(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def run_light(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Short image work (decoding, hashing) that must not queue behind conversions."""
        return await asyncio.get_running_loop().run_in_executor(self._decoders, fn, *args)

    async def decode(self, data: ImageInput) -> DecodedImage:
        if isinstance(data, DecodedImage):
            return data
        result: DecodedImage = await self.run_light(self._decode, data)
        return result

    async def identify(self, data: ImageInput, *, keep_max_pixels: int = 0) -> Identified:
        """Decode and hash in one step of the narrow decode stage; the pixels are dropped there
        unless the photo has at most `keep_max_pixels` (a caller about to convert it at once)."""
        found: Identified = await self.run_light(self._identify, data, keep_max_pixels)
        return found

    def _identify(self, data: ImageInput, keep_max_pixels: int) -> Identified:
        decoded = self._decode(data)
        keep = decoded.width * decoded.height <= keep_max_pixels
        return Identified(
            pixel_digest(decoded), decoded.width, decoded.height, decoded if keep else None
        )

    async def convert(
        self,
        image: ImageInput,
        *,
        style: str | None = None,
        faces: bool = True,
        side_by_side: bool = False,
        fmt: str = "png",
        max_side: int | None = None,
        max_bytes: int | None = None,
    ) -> Conversion:
        slots = self._semaphore()
        async with slots:
            extra = await self._borrow_idle_slots(slots, image)
            self._held += 1 + extra
            pass_pixels = self.config.infer_budget // self._held
            self.active += 1
            self._started += 1
            try:
                result: Conversion = await self.run_in_pool(
                    lambda: self.convert_sync(
                        image,
                        style=style,
                        faces=faces,
                        side_by_side=side_by_side,
                        fmt=fmt,
                        max_side=max_side,
                        max_bytes=max_bytes,
                        parts=1 + extra,
                        pass_pixels=pass_pixels,
                    )
                )
                return result
            finally:
                self.active -= 1
                self._held -= 1 + extra
                for _ in range(extra):
                    slots.release()
                if self.active == 0:
                    self._schedule_release()

    async def run_job(self, fn: Callable[[MapFn[Any, Any]], Any]) -> Any:
        """Work other than a photo (a batch of a clip's frames) in a worker slot, admitted
        and counted like a conversion, with every slot nobody waits for borrowed: `fn` gets
        a `map` that runs that many calls side by side. Cancelling the caller frees the
        slots at once; `fn` should watch for that itself (`core.video.ClipJob.cancel`)."""
        slots = self._semaphore()
        async with slots:
            extra = 0
            while extra < self.config.workers - 1 and not slots.locked():
                await slots.acquire()  # free: returns at once
                extra += 1
            self._held += 1 + extra
            self.active += 1
            self._started += 1
            try:
                return await self.run_in_pool(fn, self._map_fn(1 + extra))
            finally:
                self.active -= 1
                self._held -= 1 + extra
                for _ in range(extra):
                    slots.release()
                if self.active == 0:
                    self._schedule_release()

    async def _borrow_idle_slots(self, slots: asyncio.Semaphore, image: ImageInput) -> int:
        """Take every slot nobody is waiting for, unless the photo is known to be too small to
        split. Never waits: acquiring an unlocked asyncio.Semaphore returns at once."""
        if _known_pixels(image) < self.config.split_min_pixels:
            return 0
        taken = 0
        while taken < self.config.workers - 1 and not slots.locked():
            await slots.acquire()
            taken += 1
        return taken

    # -- memory ---------------------------------------------------------------------------------

    def _schedule_release(self) -> None:
        delay = self.config.idle_release_s
        if delay <= 0:
            return
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        started = self._started
        loop = asyncio.get_running_loop()
        self._idle_timer = loop.call_later(delay, self._release_if_idle, started)

    def _release_if_idle(self, started: int) -> None:
        self._idle_timer = None
        if self.active or self._started != started or self._releasing is not None:
            return  # a conversion ran since: the burst is not over
        loop = asyncio.get_running_loop()
        self._releasing = loop.run_in_executor(self._decoders, self.release_memory)
        self._releasing.add_done_callback(self._released)

    def _released(self, done: asyncio.Future[None]) -> None:
        self._releasing = None
        if not done.cancelled() and done.exception() is not None:
            log.warning("giving memory back failed", exc_info=done.exception())

    def release_memory(self) -> None:
        """Give free memory back to the system: the ONNX Runtime arenas' unused chunks, then
        the C heap's free pages (glibc `malloc_trim`). Safe while conversions run (they keep
        what they use), but meant for the end of a burst: the next photo re-grows the arena."""
        with self._lock:
            sessions = list(self._sessions.values())
            detector = self._detector
        for session in sessions:
            session.release_memory()
        if detector is not None:
            detector.release_memory()
        _malloc_trim()
        self.releases += 1

    async def close(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._releasing is not None:
            await asyncio.wait([self._releasing])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._pool.shutdown)
        await loop.run_in_executor(None, self._decoders.shutdown)
        await loop.run_in_executor(None, self._helpers.shutdown)

    # -- the pipeline (runs in a worker thread) -------------------------------------------------

    def _decode(self, data: ImageInput) -> DecodedImage:
        if isinstance(data, DecodedImage):
            return data
        c = self.config
        return decode(data, max_pixels=c.max_pixels, max_bytes=c.max_bytes, min_side=c.min_side)

    def convert_sync(
        self,
        image: ImageInput,
        *,
        style: str | None = None,
        faces: bool = True,
        side_by_side: bool = False,
        fmt: str = "png",
        max_side: int | None = None,
        max_bytes: int | None = None,
        parts: int | None = None,
        pass_pixels: int | None = None,
    ) -> Conversion:
        """The whole pipeline on the calling thread. `parts`: how many cores this job may use
        (tiles and faces side by side); default every worker, for callers that convert one
        photo at a time (`core.convert`). `pass_pixels`: the most pixels one inference pass
        of this job should take (default: its share of the engine's budget). `max_bytes`: the
        reply target's size limit; the pixels are encoded to fit it here, once (note
        "recompressed"), so no front end decodes and re-encodes a result."""
        parts = self.config.workers if parts is None else max(1, min(parts, self.config.workers))
        if pass_pixels is None:
            pass_pixels = self.config.infer_budget // parts
        clock = _Clock()
        spec = self.resolve(style)
        decoded = self._decode(image)
        clock.lap("decode")
        notes = list(decoded.notes)
        rgb, alpha = decoded.rgb, decoded.alpha
        input_width, input_height = decoded.width, decoded.height
        del decoded  # decoded here from bytes, the full-size pixels go once downscaled
        limit = min(max_side or self.config.max_side, self.config.max_side)
        if side_by_side:  # the cap is on what comes back: the photo and its result together
            limit = side_by_side_limit(rgb.shape[0], rgb.shape[1], limit)
        if max(rgb.shape[:2]) > limit:
            rgb = resize_max_side(rgb, limit)
            alpha = None if alpha is None else resize_max_side(alpha, limit)
            notes.append("downscaled")
        face_spec = self.registry.face_model_for(spec) if faces else None
        found: list[Any] = []
        if face_spec is not None:
            detector = self.detector()
            with self._infer.hold(_detect_pixels(rgb, detector.detect_max_side)):
                found = detector.detect(rgb)
            clock.lap("detect")
        styled = self._stylize(self.session(spec), rgb, parts, pass_pixels)
        clock.lap("infer")
        if found and face_spec is not None:
            from core.face2paint import face2paint, lift_exposure

            face_session = self.session(face_spec)
            spans: list[tuple[float, float]] = []  # appended from helper threads

            floor = face_spec.exposure_floor

            def stylize_face(crop: RGB) -> RGB:
                t = time.perf_counter()
                with self._infer.hold(crop.shape[0] * crop.shape[1]):
                    out = face_session.run(lift_exposure(crop, floor))
                spans.append((t, time.perf_counter()))
                return out

            styled = face2paint(
                rgb,
                styled,
                found,
                stylize_face,
                face_size=self.config.face_size,
                color_match=face_spec.color_match,
                map_fn=self._map_fn(parts),
                in_place=True,  # `styled` is this job's own: no second full-size copy
            )
            clock.lap("blend")
            # wall time from the first face's start to the last one's end: faces may overlap
            infer_ms = (max(e for _, e in spans) - min(b for b, _ in spans)) * 1000 if spans else 0
            clock.marks["infer"] += infer_ms
            clock.marks["blend"] -= infer_ms
        if side_by_side:
            styled = np.concatenate([rgb, styled], axis=1)
            alpha = None if alpha is None else np.concatenate([alpha, alpha], axis=1)
        del rgb  # the photo is not needed to encode (the encoder makes its own copy)
        encoded = encode(styled, alpha, fmt=fmt, quality=self.config.jpeg_quality)
        if max_bytes is not None and len(encoded.data) > max_bytes:
            fitted = encode_to_fit(styled, alpha, max_bytes)
            if fitted is not None:
                encoded = fitted
                notes.append("recompressed")
        clock.lap("encode")
        m = clock.marks
        timings = Timings(
            decode_ms=m.get("decode", 0.0),
            detect_ms=m.get("detect", 0.0),
            infer_ms=m.get("infer", 0.0),
            blend_ms=m.get("blend", 0.0),
            encode_ms=m.get("encode", 0.0),
        )
        timings = replace(timings, total_ms=sum(m.values()))
        return Conversion(
            image=encoded,
            style=spec.name,
            model_version=self.model_version(spec.name, face_spec is not None),
            faces_found=len(found),
            timings=timings,
            notes=tuple(notes),
            input_width=input_width,
            input_height=input_height,
        )

    def _map_fn(self, parts: int) -> MapFn[Any, Any]:
        """A lazy `map` that runs up to `parts` calls at once on the helper threads."""
        if parts <= 1:
            return map

        def parallel(fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
            todo = list(items)
            for i in range(0, len(todo), parts):
                yield from self._helpers.map(fn, todo[i : i + parts])

        return parallel

    def stylize(self, spec: StyleSpec, rgb: RGB, *, thumb: Any = None) -> RGB:
        """One frame of a clip through a scene model on the calling (worker) thread, graded by
        `thumb` (`core.session.thumbnail` of the frame the clip's colour is taken from) so
        every frame of a clip gets the same grade; no face pass, no encoding."""
        return self._stylize(self.session(spec), rgb, 1, None, thumb)

    def _stylize(
        self,
        session: StyleSession,
        rgb: RGB,
        parts: int = 1,
        pass_pixels: int | None = None,
        thumb: Any = None,
    ) -> RGB:
        h, w = rgb.shape[:2]
        c = self.config
        most = c.infer_budget if pass_pixels is None else pass_pixels
        small = c.min_infer_side
        if max(h, w) < small:
            s = small / max(h, w)
            size = (round(w * s), round(h * s))
            up = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
            styled = cv2.resize(self._run(session, up, thumb), (w, h), interpolation=cv2.INTER_AREA)
            return np.asarray(styled, dtype=np.uint8)
        # On many cores, a photo cut into slivers would be mostly context: keep tiles at least
        # four overlaps long, and tiles of a large photo at least a third of the usual budget.
        parts = min(parts, max(1, max(h, w) // (4 * OVERLAP)))
        if h * w < c.split_min_pixels:
            parts = 1
        if h * w <= min(c.whole_max_pixels, most) and parts == 1:
            return self._run(session, rgb, thumb)
        if thumb is None and session.wants_thumb:
            thumb = thumbnail(rgb)
        m = session.spec.multiple
        tile: tuple[int, int] | None = None
        if h * w <= c.whole_max_pixels and parts > 1:  # `parts` tiles across the long side
            long_h = h > w
            cut = tile_length(h if long_h else w, parts, OVERLAP, m)
            tile = (cut, w) if long_h else (h, cut)
            if _seen_pixels(h, w, tile) > most:
                tile = None
        if tile is None:  # parts tiles at once should not need more memory than one tile did
            budget = max(c.tile_max_pixels // parts, c.tile_max_pixels // 3)
            tile = plan_tile(h, w, min(budget, most), multiple=m)
        run = partial(self._run, session, thumb=thumb)
        return stylize_tiled(run, rgb, tile=tile, map_fn=self._map_fn(parts))

    def _run(self, session: StyleSession, rgb: RGB, thumb: Any = None) -> RGB:
        """One inference pass, once its pixels fit the engine's budget."""
        with self._infer.hold(rgb.shape[0] * rgb.shape[1]):
            return session.run(rgb, thumb)


class PixelBudget:
    """A weighted semaphore for threads: pixels under inference at once. A pass larger than
    the whole budget runs alone. Holders never wait for anything else, so it cannot deadlock."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.used = 0
        self.peak = 0  # the most pixels ever held at once (for tests and diagnostics)
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        need = max(1, min(pixels, self.capacity))
        with self._cond:
            self._cond.wait_for(lambda: self.used + need <= self.capacity)
            self.used += need
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= need
                self._cond.notify_all()


def _seen_pixels(h: int, w: int, tile: tuple[int, int]) -> int:
    """Pixels of one tile as the network sees it, context included."""
    return min(h, tile[0] + 2 * CONTEXT) * min(w, tile[1] + 2 * CONTEXT)


def _detect_pixels(rgb: RGB, detect_max_side: int) -> int:
    h, w = int(rgb.shape[0]), int(rgb.shape[1])
    scale = min(1.0, detect_max_side / max(h, w))
    return round(h * scale) * round(w * scale)


def _known_pixels(image: ImageInput) -> int:
    """The pixel count of `image` when it is cheap to tell (decoded pixels, or the header of
    a JPEG, PNG, GIF or WebP upload); otherwise a count large enough to split."""
    if isinstance(image, DecodedImage):
        return image.width * image.height
    if isinstance(image, np.ndarray) and image.ndim >= 2:
        return int(image.shape[0] * image.shape[1])
    if isinstance(image, bytes):
        kind = formats.sniff(image)
        size = formats.header_size(image, kind) if kind else None
        if size is not None:
            return size[0] * size[1]
    return 1 << 62


class _Glibc:
    """The C library's heap controls, where it is glibc (Linux); otherwise nothing."""

    M_MMAP_THRESHOLD = -3
    lib: Any = None
    tuned = False

    @classmethod
    def load(cls) -> Any:
        if cls.lib is None and hasattr(os, "sched_getaffinity"):  # Linux
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                lib.malloc_trim, lib.mallopt  # noqa: B018 - glibc has both
            except (OSError, AttributeError):
                return None
            cls.lib = lib
        return cls.lib


# Blocks at least this large get their own mapping, returned to the system when freed.
MMAP_THRESHOLD_BYTES = 1024 * 1024


def tune_malloc() -> None:
    """Fix glibc's mmap threshold (once per process). By default it rises with every large
    block freed, up to 32 MB, after which a photo's arrays (4-30 MB each) come from the
    per-thread heaps, stay there when freed, and fragment them: under the web bench 165 MB
    of 226 MB of heap was free but held. A fixed threshold keeps every large array in its own
    mapping (2 workers, 16 uploads of 1280 px photos at once: heap 55 MB, 6-11 MB free)."""
    lib = _Glibc.load()
    if lib is not None and not _Glibc.tuned:
        lib.mallopt(_Glibc.M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        _Glibc.tuned = True


def _malloc_trim() -> None:
    """Return the C heap's free pages (every thread's arena) to the system, on glibc."""
    lib = _Glibc.load()
    if lib is not None:
        lib.malloc_trim(0)
