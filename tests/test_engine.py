"""The shared engine: tiling, size policy, options, concurrency, and no torch when serving."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.engine import PIPELINE_VERSION, Engine, EngineConfig, PixelBudget
from core.imageio import decode, encode
from core.registry import Registry
from core.session import StyleSession
from core.tiling import (
    CONTEXT,
    OVERLAP,
    plan_tile,
    ramp_weights,
    spans,
    stylize_tiled,
    window,
)
from models import WEIGHTS_DIR
from models.pairs import PROJECT_ROOT


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(Registry([WEIGHTS_DIR]), EngineConfig(workers=2))


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (h + w)], axis=-1)
    return np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(100, 100, 16), (1000, 256, 32), (2829, 640, 32)]
)
def test_tile_weights_cover_every_pixel_exactly_once(length: int, tile: int, overlap: int) -> None:
    intervals = spans(length, tile, overlap)
    total = np.zeros(length)
    for (a, b), w in zip(intervals, ramp_weights(intervals), strict=True):
        assert b - a <= tile and a >= 0 and b <= length
        total[a:b] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def computed_pixels(length: int, tile: int) -> list[int]:
    """Length of each tile along one axis with the context the tiler runs it with."""
    return [b - a for a, b in (window(*s, length, CONTEXT) for s in spans(length, tile, OVERLAP))]


@pytest.mark.parametrize(
    ("h", "w", "budget", "most"),
    [
        (1920, 1280, 600_000, 1.45),  # the engine's budget; fixed 640 px tiles: 2.45x
        (3000, 4000, 600_000, 1.5),
        (1920, 1280, 1_250_000, 1.2),
        (600, 900, 100_000, 2.8),  # small tiles: context is a large share of each
    ],
)
def test_planned_tiles_fit_the_budget_and_compute_little_twice(
    h: int, w: int, budget: int, most: float
) -> None:
    th, tw = plan_tile(h, w, budget)
    tall, wide = computed_pixels(h, th), computed_pixels(w, tw)
    assert max(tall) * max(wide) <= budget  # every tile, context included
    assert th % 8 == 0 and tw % 8 == 0
    assert sum(tall) * sum(wide) <= most * h * w
    square = int(budget**0.5) - 2 * CONTEXT  # the fixed square grid of the same budget
    assert sum(tall) * sum(wide) < sum(computed_pixels(h, square)) * sum(computed_pixels(w, square))


def test_a_budget_below_the_smallest_tile_gets_the_smallest_tile() -> None:
    assert plan_tile(1000, 50, 100) == (4 * OVERLAP, 50)


def test_tiling_an_identity_is_lossless() -> None:
    img = photo(700, 1100)
    out = stylize_tiled(lambda x: x, img, tile=256, overlap=32, context=16)
    np.testing.assert_array_equal(out, img)
    out = stylize_tiled(lambda x: x, img, tile=plan_tile(700, 1100, 200_000))
    np.testing.assert_array_equal(out, img)


def test_tiled_result_matches_the_whole_image_pass(engine: Engine) -> None:
    """With enough context around each tile, and the whole photo's thumbnail for models that
    grade by it, the engine's tiles blend into what one pass would give."""
    tiling = Engine(
        engine.registry, EngineConfig(workers=1, whole_max_pixels=100_000, tile_max_pixels=100_000)
    )
    session = tiling.session(tiling.resolve("hayao"))
    img = photo(600, 900, seed=3)
    whole = session.run(img).astype(np.int16)
    tiled = tiling._stylize(session, img).astype(np.int16)
    diff = np.abs(whole - tiled)
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 8


def test_convert_keeps_size_alpha_and_reports_timings(engine: Engine) -> None:
    rgba = np.dstack([photo(300, 400), np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (300, 1))])
    result = engine.convert_sync(encode(rgba[..., :3], rgba[..., 3], fmt="png").data, faces=False)
    out = decode(result.image.data)
    assert (out.width, out.height) == (400, 300) and out.alpha is not None
    np.testing.assert_array_equal(out.alpha, rgba[..., 3])
    assert result.timings.total_ms >= result.timings.infer_ms > 0
    assert result.model_version.startswith(f"{PIPELINE_VERSION}:hayao@")


def test_size_policy_small_upscaled_large_capped_and_side_by_side(engine: Engine) -> None:
    tiny = engine.convert_sync(photo(40, 60), faces=False)
    assert (tiny.image.width, tiny.image.height) == (60, 40)
    capped = engine.convert_sync(photo(500, 1000), faces=False, max_side=400)
    assert (capped.image.width, capped.image.height) == (400, 200) and "downscaled" in capped.notes
    both = engine.convert_sync(photo(100, 150), faces=False, side_by_side=True)
    assert (both.image.width, both.image.height) == (300, 100)
    # max_side caps the whole result: a wide photo side by side is scaled to fit as a pair
    for h, w, cap in ((100, 400, 301), (120, 400, 400), (400, 150, 250), (90, 90, 179)):
        pair = engine.convert_sync(photo(h, w), faces=False, side_by_side=True, max_side=cap)
        assert max(pair.image.width, pair.image.height) <= cap, (h, w, cap)
        assert pair.image.width % 2 == 0 and "downscaled" in pair.notes


def test_model_version_depends_on_style_and_faces(engine: Engine) -> None:
    versions = {engine.model_version(s, f) for s in ("hayao", "shinkai") for f in (True, False)}
    assert len(versions) == 4


class PartsSpy:
    """Wraps `engine.convert_sync`: records each job's `parts` and the cores in use at once."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.parts, self.peak = engine, list[int](), 0
        self._busy, self._lock, self._original = 0, threading.Lock(), engine.convert_sync

    def __call__(self, *args: object, **kwargs: object) -> object:
        parts = int(kwargs["parts"])  # type: ignore[call-overload]
        with self._lock:
            self.parts.append(parts)
            self._busy += parts
            self.peak = max(self.peak, self._busy)
        try:
            return self._original(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            with self._lock:
                self._busy -= parts

    def __enter__(self) -> PartsSpy:
        self.engine.convert_sync = self  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self.engine.convert_sync


async def test_concurrent_jobs_never_use_more_cores_than_workers(engine: Engine) -> None:
    with PartsSpy(engine) as spy:
        sizes = [(64, 64), (600, 800), (300, 400), (600, 800), (64, 64), (500, 500)]
        results = await asyncio.gather(
            *(engine.convert(photo(*hw, i)) for i, hw in enumerate(sizes))
        )
    assert len(results) == 6 and spy.peak <= engine.config.workers


async def test_a_job_alone_borrows_the_idle_slots(engine: Engine) -> None:
    with PartsSpy(engine) as spy:
        await engine.convert(photo(600, 800), faces=False)
    assert spy.parts == [engine.config.workers]


async def test_no_slot_is_borrowed_while_another_job_holds_one(engine: Engine) -> None:
    slots = engine._semaphore()
    await slots.acquire()  # another job at work
    try:
        with PartsSpy(engine) as spy:
            await engine.convert(photo(600, 800), faces=False)
    finally:
        slots.release()
    assert spy.parts == [1]


async def test_a_photo_too_small_to_split_borrows_nothing(engine: Engine) -> None:
    small = await engine.decode(photo(200, 300))
    with PartsSpy(engine) as spy:
        await engine.convert(small, faces=False)
    assert spy.parts == [1]


@pytest.mark.parametrize(("h", "w"), [(600, 900), (900, 600)])
def test_a_split_photo_runs_in_tiles_side_by_side_and_matches_one_pass(
    engine: Engine, h: int, w: int
) -> None:
    session = engine.session(engine.resolve("hayao"))
    img = photo(h, w, seed=5)
    shapes: list[tuple[int, ...]] = []
    threads: set[str] = set()
    original = session.run

    def run(rgb: np.ndarray, thumb: np.ndarray | None = None) -> np.ndarray:
        shapes.append(rgb.shape[:2])
        threads.add(threading.current_thread().name)
        return original(rgb, thumb)

    session.run = run  # type: ignore[method-assign]
    try:
        split = engine._stylize(session, img, parts=2).astype(np.int16)
    finally:
        del session.run
    long_axis = 0 if h > w else 1
    assert len(shapes) == 2 and all(
        s[long_axis] < max(h, w) for s in shapes
    )  # the long side is cut
    assert all(s[1 - long_axis] == min(h, w) for s in shapes)  # the short side stays whole
    assert all(name.startswith("animebot-tile") for name in threads)
    diff = np.abs(session.run(img).astype(np.int16) - split)
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 8


def test_many_cores_do_not_cut_a_photo_into_slivers(engine: Engine) -> None:
    session = engine.session(engine.resolve("shinkai"))
    widths: list[int] = []
    original = session.run

    def run(rgb: np.ndarray, thumb: np.ndarray | None = None) -> np.ndarray:
        widths.append(rgb.shape[1])
        return original(rgb, thumb)

    session.run = run  # type: ignore[method-assign]
    try:
        engine._stylize(session, photo(500, 700), parts=16)
    finally:
        del session.run
    assert 1 < len(widths) <= 700 // (4 * OVERLAP)
    assert min(widths) >= 4 * OVERLAP


def test_face_time_is_wall_time_when_faces_run_side_by_side(
    engine: Engine, photos_dir: Path
) -> None:
    group = (photos_dir / "multi_face_group6_frontal.jpg").read_bytes()
    result = engine.convert_sync(group, parts=2)
    t = result.timings
    assert result.faces_found >= 4
    assert t.blend_ms >= 0 and t.infer_ms > 0
    assert t.total_ms == pytest.approx(
        t.decode_ms + t.detect_ms + t.infer_ms + t.blend_ms + t.encode_ms
    )


SERVING_MODULES = [
    "cli.main",
    "cli.commands.convert",
    "service.runtime",
    "bot.telegram.app",
    "bot.discord.client",
    "web.app",
]


def test_the_serving_path_never_imports_torch(tmp_path: Path, photos_dir: Path) -> None:
    src = photos_dir / "face_single_lowlight.jpg"
    code = f"""
import importlib, sys
for name in {SERVING_MODULES!r}:
    importlib.import_module(name)
from cli.main import main
assert main(["convert", {str(src)!r}, "-o", {str(tmp_path)!r}, "--max-size", "320"]) == 0
leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
print("torch modules:", leaked)
sys.exit(1 if leaked else 0)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(tmp_path.glob("face_single_lowlight_*.png"))


def test_threads_spin_only_when_every_jobs_threads_fit_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert not EngineConfig(workers=4, threads_per_job=1).spin  # one thread: nothing to spin
    assert EngineConfig(workers=2, threads_per_job=2).spin
    assert EngineConfig(workers=1, threads_per_job=4).spin
    assert not EngineConfig(workers=3, threads_per_job=2).spin  # 6 threads on 4 cores


class ConcurrentPixels:
    """Pixels inside StyleSession.run at once, across threads (the most seen)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = self.most = 0
        self._lock = threading.Lock()
        real = StyleSession.run

        def run(session: StyleSession, rgb: np.ndarray, thumb: Any = None) -> np.ndarray:
            pixels = rgb.shape[0] * rgb.shape[1]
            with self._lock:
                self.now += pixels
                self.most = max(self.most, self.now)
            try:
                return real(session, rgb, thumb)
            finally:
                with self._lock:
                    self.now -= pixels

        monkeypatch.setattr(StyleSession, "run", run)


async def test_pixels_under_inference_at_once_stay_within_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four 1 MP photos on two workers: each would be one 1 MP pass, two at once; the
    engine's budget (1.25 MP) makes them tiles, and no moment has more under inference."""
    budget = 1_250_000
    engine = Engine(Registry([WEIGHTS_DIR]), EngineConfig(workers=2, infer_max_pixels=budget))
    spy = ConcurrentPixels(monkeypatch)
    photos = [photo(1000, 1000, seed) for seed in range(4)]
    results = await asyncio.gather(*(engine.convert(p, faces=False, fmt="jpeg") for p in photos))
    assert len(results) == 4 and 0 < spy.most <= budget
    await engine.close()


def test_a_pass_larger_than_the_budget_runs_alone() -> None:
    budget = PixelBudget(100)
    with budget.hold(1_000):  # clamped to the whole budget
        assert budget.used == 100
    assert budget.used == 0 and budget.peak == 100


async def test_memory_is_given_back_after_a_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(Registry([WEIGHTS_DIR]), EngineConfig(workers=2, idle_release_s=0.01))
    released = asyncio.Event()
    real_release, real_done = engine.release_memory, engine._released

    def release() -> None:
        assert engine.active == 0  # never while a conversion runs
        real_release()

    def done(future: asyncio.Future[None]) -> None:
        real_done(future)
        released.set()

    monkeypatch.setattr(engine, "release_memory", release)
    monkeypatch.setattr(engine, "_released", done)
    await asyncio.gather(*(engine.convert(photo(300, 400, s), faces=False) for s in range(3)))
    await asyncio.wait_for(released.wait(), 30)
    assert engine.releases == 1
    await engine.close()


def test_release_memory_returns_the_arena_to_the_system() -> None:
    """After a 1.5 MP pass the shared ONNX Runtime arena holds its activations (~0.3 GB);
    release_memory gives most of that back (RSS, this process)."""
    engine = Engine(Registry([WEIGHTS_DIR]), EngineConfig(workers=1))
    engine.convert_sync(photo(1200, 1250), faces=False, fmt="jpeg")
    grown = _rss_mb()
    engine.release_memory()
    assert grown - _rss_mb() > 100


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")
