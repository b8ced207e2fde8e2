"""End-to-end engine figures against the targets, with their baselines measured in the same run.

    python bench/engine.py [--quick] [--models-dir DIR] [--style NAME] [--runs N] [--format F]
                           [--tile-max-pixels N]

1. Latency of `Engine.convert_sync` on encoded photo bytes (decode → faces → stylize → blend →
   encode; JPEG out as the bots and the web page send it, `--format png` as the CLI writes it),
   as a job that finds every core idle (split across all of them, as on a quiet bot) and, for
   the 1280 px photos, as a job on one core (a busy bot: every other slot taken):
   a 1280 px scene photo without faces, a one-face portrait with its long side at 1280 px and
   the 6-face group photo; median and p95 with the per-stage breakdown. Baseline: the I/O
   floor of the same photo (decode + encode, no network). Then the scene photo at 1920 px
   (2.5 MP) and 4000 px (12 MP), which the engine stylizes in tiles: their inference time per
   megapixel against the 1280 px photo's single pass shows what tiling costs.
2. Throughput at 512 px with 1, 2 and 4 concurrent jobs (`await Engine.convert`, one intra-op
   thread per job, as the service runs it).
3. Peak RSS of a fresh child process converting a 4 MP and a 12 MP photo (the scene photo
   cropped to 4:3 and upscaled), next to the baseline of a child that only imports and loads
   the engine. Each child is started by its own probe process, whose RUSAGE_CHILDREN then
   holds that one child's ru_maxrss and nothing else.

Photos come from ../shared/data/photos ($ANIMEBOT_SHARED).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, bench/ comes first on sys.path, where bench/models.py and bench/service.py
# would shadow the project's packages: look in the project root instead.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import cv2
import numpy as np

from core.engine import Engine, EngineConfig
from core.imageio import decode, encode
from core.registry import Registry
from models.pairs import shared_dir

PHOTOS = shared_dir() / "data" / "photos"
SCENE = "street_railroad_crossing.jpg"
FACE = "face_single_lowlight.jpg"
GROUP = "multi_face_group6_frontal.jpg"
STAGES = ("decode_ms", "detect_ms", "infer_ms", "blend_ms", "encode_ms")
RSS_SIZES = {"4MP": (2309, 1732), "12MP": (4000, 3000)}
LARGE_SIDES = (1920, 4000)  # tiled: above EngineConfig.whole_max_pixels
TARGETS = {
    "no_faces_ms": 400.0,
    "one_face_ms": 600.0,
    "ips_2_jobs": 8.0,
    "rss_12mp_mb": 600.0,
}


# --------------------------------------------------------------------------- helpers


def jpeg_bytes(rgb: np.ndarray, quality: int = 92) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return buf.tobytes()


def long_side(rgb: np.ndarray, side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = side / max(h, w)
    size = (round(w * s), round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=interp))


def stats(values: Sequence[float]) -> tuple[float, float]:
    return float(np.median(values)), float(np.percentile(values, 95))


def registry_from(args: argparse.Namespace) -> Registry:
    return Registry(args.models_dir) if args.models_dir else Registry.default()


def models_args(args: argparse.Namespace) -> list[str]:
    out = []
    for d in args.models_dir or []:
        out += ["--models-dir", str(d)]
    if args.style:
        out += ["--style", args.style]
    if args.tile_max_pixels:
        out += ["--tile-max-pixels", str(args.tile_max_pixels)]
    return out


def engine_config(args: argparse.Namespace, workers: int = 1) -> EngineConfig:
    if args.tile_max_pixels:
        return EngineConfig(
            workers=workers, threads_per_job=1, tile_max_pixels=args.tile_max_pixels
        )
    return EngineConfig(workers=workers, threads_per_job=1)


# --------------------------------------------------------------------------- 1. latency


@dataclass(frozen=True)
class Latency:
    label: str
    cores: int
    size: str
    faces: int
    median_ms: float
    p95_ms: float
    stages: dict[str, float]
    io_floor_ms: float


def latency(
    engine: Engine, style: str, label: str, data: bytes, runs: int, fmt: str, cores: Sequence[int]
) -> list[Latency]:
    """One row per core count; the counts take turns run by run, so a drift in this VM's speed
    falls on all of them alike."""
    for n in cores:
        engine.convert_sync(data, style=style, fmt=fmt, parts=n)  # warm-up: sessions, detector
    totals: dict[int, list[float]] = {n: [] for n in cores}
    per_stage: dict[int, dict[str, list[float]]] = {n: {k: [] for k in STAGES} for n in cores}
    faces, size = 0, ""
    for i in range(runs):
        for n in cores if i % 2 == 0 else list(reversed(cores)):
            start = time.perf_counter()
            result = engine.convert_sync(data, style=style, fmt=fmt, parts=n)
            totals[n].append((time.perf_counter() - start) * 1000)
            for k in STAGES:
                per_stage[n][k].append(getattr(result.timings, k))
            faces, size = result.faces_found, f"{result.input_width}x{result.input_height}"
    floor = []
    for _ in range(runs):
        start = time.perf_counter()
        img = decode(data)
        encode(img.rgb, img.alpha, fmt=fmt)
        floor.append((time.perf_counter() - start) * 1000)
    rows = []
    for n in cores:
        med, p95 = stats(totals[n])
        stages = {k: float(np.median(v)) for k, v in per_stage[n].items()}
        rows.append(Latency(label, n, size, faces, med, p95, stages, float(np.median(floor))))
    return rows


# --------------------------------------------------------------------------- 2. throughput


async def _throughput(registry: Registry, style: str, data: bytes, jobs: int, n: int) -> float:
    engine = Engine(registry, EngineConfig(workers=jobs, threads_per_job=1))
    try:
        await asyncio.gather(*(engine.convert(data, style=style) for _ in range(jobs)))  # warm
        start = time.perf_counter()
        await asyncio.gather(*(engine.convert(data, style=style) for _ in range(n)))
        return n / (time.perf_counter() - start)
    finally:
        await engine.close()


def throughput(registry: Registry, style: str, data: bytes, per_job: int) -> dict[int, float]:
    return {
        jobs: asyncio.run(_throughput(registry, style, data, jobs, per_job * jobs))
        for jobs in (1, 2, 4)
    }


# --------------------------------------------------------------------------- 3. peak RSS


def rss_child(args: argparse.Namespace) -> int:
    """Import, build the engine, load what a conversion uses; then convert `--image` if given,
    on every core (as the CLI does)."""
    registry = registry_from(args)
    engine = Engine(registry, engine_config(args, workers=os.cpu_count() or 1))
    spec = engine.resolve(args.style)
    engine.session(spec)
    face = registry.face_model_for(spec)
    if face is not None:
        engine.session(face)
        engine.detector()
    if args.image:
        engine.convert_sync(Path(args.image), style=spec.name)
    return 0


def rss_probe(args: argparse.Namespace) -> int:
    """Run one child and report its peak RSS: this process has no other children."""
    cmd = [sys.executable, __file__, "--rss-child", *models_args(args)]
    if args.image:
        cmd += ["--image", args.image]
    subprocess.run(cmd, check=True)
    print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
    return 0


def peak_rss_mb(args: argparse.Namespace, image: Path | None) -> float:
    cmd = [sys.executable, __file__, "--rss-probe", *models_args(args)]
    if image is not None:
        cmd += ["--image", str(image)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    kb = json.loads(done.stdout.strip().splitlines()[-1])["maxrss_kb"]
    return float(kb) / 1024


def rss(args: argparse.Namespace, scene: np.ndarray, tmp: Path) -> dict[str, float]:
    h, w = scene.shape[:2]
    crop = scene[:, (w - h * 4 // 3) // 2 :][:, : h * 4 // 3] if w * 3 > h * 4 else scene
    out = {"baseline (import + load)": peak_rss_mb(args, None)}
    for label, (width, height) in RSS_SIZES.items():
        big = cv2.resize(crop, (width, height), interpolation=cv2.INTER_CUBIC)
        path = tmp / f"{label}.jpg"
        path.write_bytes(jpeg_bytes(big))
        out[f"{label} ({width}x{height})"] = peak_rss_mb(args, path)
    return out


# --------------------------------------------------------------------------- report


def megapixels(size: str) -> float:
    w, h = (int(v) for v in size.split("x"))
    return w * h / 1e6


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def report(
    lat: list[Latency], ips: dict[int, float], mem: dict[str, float], fmt: str = "jpeg"
) -> None:
    print(f"\n## Latency, Engine.convert_sync on JPEG bytes → {fmt.upper()} (ms)")
    head = ["photo", "cores", "size", "faces", "median", "p95", *[s[:-3] for s in STAGES]]
    head.append("io floor")
    rows = [
        [
            x.label,
            str(x.cores),
            x.size,
            str(x.faces),
            f"{x.median_ms:.0f}",
            f"{x.p95_ms:.0f}",
            *[f"{x.stages[s]:.0f}" for s in STAGES],
            f"{x.io_floor_ms:.0f}",
        ]
        for x in lat
    ]
    print_table(head, rows)
    print("(stages are medians; io floor = decode + encode of the same photo, no network)")
    one_core = {x.label: x for x in lat if x.cores == 1}
    print("\n## A quiet bot (all cores for one job) against a busy one (one core)")
    print_table(
        ["photo", "all cores ms", "one core ms", "speed-up"],
        [
            [
                x.label,
                f"{x.median_ms:.0f}",
                f"{b.median_ms:.0f}",
                f"{b.median_ms / x.median_ms:.2f}x",
            ]
            for x in lat
            if x.cores > 1 and (b := one_core.get(x.label)) is not None
        ],
    )
    one_pass = next(x for x in lat if x.label == "scene" and x.cores == 1)
    base = one_pass.stages["infer_ms"] / megapixels(one_pass.size)
    print("\n## Inference per megapixel, tiled vs the 1280 px scene's single pass")
    rows = [
        [x.label, x.size, f"{per_mp:.0f}", f"{per_mp / base:.2f}x"]
        for x in lat
        if x.label.startswith("scene") and x.cores == 1
        for per_mp in [x.stages["infer_ms"] / megapixels(x.size)]
    ]
    print_table(["photo", "size", "infer ms/MP", "vs one pass"], rows)
    print("\n## Throughput at 512 px (one intra-op thread per job)")
    print_table(["jobs", "images/s"], [[str(j), f"{v:.1f}"] for j, v in ips.items()])
    print("\n## Peak RSS of a fresh child process")
    print_table(["child", "peak RSS MB"], [[k, f"{v:.0f}"] for k, v in mem.items()])
    by_label = {x.label: x for x in sorted(lat, key=lambda x: x.cores)}  # most cores wins
    rss_12 = next(v for k, v in mem.items() if k.startswith("12MP"))
    checks = [
        ("latency, no faces, 1280 px", by_label["scene"].median_ms, "ms", "<=", "no_faces_ms"),
        ("latency, one face, 1280 px", by_label["one face"].median_ms, "ms", "<=", "one_face_ms"),
        ("throughput 512 px, 2 jobs", ips[2], "img/s", ">=", "ips_2_jobs"),
        ("peak RSS, 12 MP", rss_12, "MB", "<=", "rss_12mp_mb"),
    ]
    print("\n## Targets")
    rows = []
    for name, value, unit, op, key in checks:
        target = TARGETS[key]
        ok = value <= target if op == "<=" else value >= target
        rows.append([name, f"{value:.1f} {unit}", f"{op} {target:g} {unit}", verdict(ok)])
    print_table(["metric", "measured", "target", ""], rows)


def print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="few runs (a smoke test, not figures)")
    ap.add_argument("--runs", type=int, default=None, help="latency runs (default 10)")
    ap.add_argument("--format", default="jpeg", choices=["jpeg", "png", "webp"], help="output")
    ap.add_argument("--models-dir", type=Path, action="append", help="styles from DIR only")
    ap.add_argument("--style", default=None, help="scene style (default: the registry default)")
    ap.add_argument(
        "--tile-max-pixels", type=int, default=None, help="tile budget (EngineConfig default)"
    )
    ap.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rss-probe", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--image", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_child:
        return rss_child(args)
    if args.rss_probe:
        return rss_probe(args)
    if not PHOTOS.is_dir():
        print(f"shared photos not found at {PHOTOS} (set ANIMEBOT_SHARED)")
        return 1
    runs = args.runs or (3 if args.quick else 10)
    registry = registry_from(args)
    cores = os.cpu_count() or 1
    engine = Engine(registry, engine_config(args, workers=cores))
    style = engine.resolve(args.style).name
    face = registry.face_model_for(engine.resolve(style))
    print(
        f"# style {style}, face model {face.name if face else 'none'}; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}; {runs} runs; "
        f"tiles of at most {engine.config.tile_max_pixels:,} px"
        + ("  (QUICK: too few runs for real figures)" if args.quick else "")
    )
    scene = decode(PHOTOS / SCENE).rgb
    photos = {
        "scene": jpeg_bytes(long_side(scene, 1280)),
        "one face": jpeg_bytes(long_side(decode(PHOTOS / FACE).rgb, 1280)),
        "6 faces": (PHOTOS / GROUP).read_bytes(),
    }
    fmt = args.format
    both = (cores, 1) if cores > 1 else (1,)
    lat: list[Latency] = []
    for label, data in photos.items():
        lat += latency(
            engine, style, label, data, runs, fmt, both if label != "6 faces" else (cores,)
        )
    large = {f"scene {side} px": jpeg_bytes(long_side(scene, side)) for side in LARGE_SIDES}
    for label, data in large.items():
        lat += latency(engine, style, label, data, max(2, runs // 3), fmt, both)
    ips = throughput(registry, style, jpeg_bytes(long_side(scene, 512)), 3 if args.quick else 12)
    with tempfile.TemporaryDirectory() as tmp:
        mem = rss(args, scene, Path(tmp))
    report(lat, ips, mem, args.format)
    return 0


if __name__ == "__main__":
    sys.exit(main())
