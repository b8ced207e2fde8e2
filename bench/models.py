"""Network latency of every installed style against the AnimeGANv2 architecture, in one run.

    python bench/models.py [--quick] [--models-dir DIR] [--runs N]

For each style (registry): parameters, served file size, and the latency of one ONNX Runtime
call (the engine's own session options) on a 512x512 and a 1024x1024 input with 1 and 2
intra-op threads: median and p95 after warm-up. With 2 threads, the threads spin between
operators, as the engine's do when its jobs x threads fit the cores. The baseline, measured
the same way in the same run: the published AnimeGANv2 generator with random weights exported
to ONNX fp32 in a temp dir (needs torch; skipped with a note otherwise). Ratios are AnimeGANv2
ms / style ms, so 5.0 means the style is five times faster. Latency does not depend on the
weights' values.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, bench/ comes first on sys.path, where bench/models.py and bench/service.py
# would shadow the project's packages: look in the project root instead.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import numpy as np

from core.registry import Registry
from core.session import THUMB_INPUT, make_session, takes_thumb, thumbnail

SIZES = (512, 1024)
THREADS = (1, 2)


@dataclass(frozen=True)
class Stat:
    median_ms: float
    p95_ms: float

    def __str__(self) -> str:
        return f"{self.median_ms:7.1f} ({self.p95_ms:7.1f})"


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    precision: str
    parameters: int
    size_kb: float
    stats: dict[tuple[int, int], Stat]  # (side, threads) -> latency


def measure(fn: Callable[[], object], runs: int, warmup: int) -> Stat:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return Stat(float(np.median(times)), float(np.percentile(times, 95)))


def latency(model_file: Path, runs: int, warmup: int) -> dict[tuple[int, int], Stat]:
    rng = np.random.default_rng(0)
    stats = {}
    for threads in THREADS:
        # One job on an idle machine: threads spin between operators, as the engine's do
        # when its jobs x threads fit the cores (EngineConfig.spin).
        session = make_session(str(model_file), threads, spin=threads > 1)
        inputs = session.get_inputs()
        for side in SIZES:
            x = rng.uniform(-1, 1, (1, 3, side, side)).astype(np.float32)
            feed = {inputs[0].name: x}
            if takes_thumb(session):  # the whole-photo thumbnail input
                feed[THUMB_INPUT] = thumbnail(
                    ((x[0].transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
                )
            stats[(side, threads)] = measure(lambda s=session, f=feed: s.run(None, f), runs, warmup)
    return stats


def baseline(runs: int, warmup: int) -> Row | None:
    try:
        import torch

        from models.animeganv2 import Generator
        from models.export import export_fp32
    except ImportError:
        print("torch not installed: AnimeGANv2 baseline skipped (pip install -e '.[train]')")
        return None
    import warnings

    torch.manual_seed(0)
    model = Generator().eval()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes from torch.onnx
        path = Path(tmp) / "animeganv2.fp32.onnx"
        export_fp32(model, path)
        return Row(
            "AnimeGANv2 (random)",
            "baseline",
            "fp32",
            sum(p.numel() for p in model.parameters()),
            path.stat().st_size / 1024,
            latency(path, runs, warmup),
        )


def table(rows: Sequence[Row], base: Row | None) -> str:
    keys = [(side, threads) for side in SIZES for threads in THREADS]
    head = ["style", "kind", "prec", "params", "size KB"]
    head += [f"{s}px/{t}t ms med (p95)" for s, t in keys]
    if base:
        head += [f"x{s}/{t}t" for s, t in keys]
    body = []
    for row in [*rows, *([base] if base else [])]:
        cells = [row.name, row.kind, row.precision, f"{row.parameters:,}", f"{row.size_kb:,.0f}"]
        cells += [str(row.stats[k]) for k in keys]
        if base:
            cells += [f"{base.stats[k].median_ms / row.stats[k].median_ms:.1f}" for k in keys]
        body.append(cells)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *body]
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 runs, 1 warm-up (a smoke test)")
    ap.add_argument("--runs", type=int, default=None, help="timed runs per case (default 10)")
    ap.add_argument("--models-dir", type=Path, action="append", help="styles from DIR only")
    args = ap.parse_args(argv)
    runs = args.runs or (3 if args.quick else 10)
    warmup = 1 if args.quick else 3
    registry = Registry(args.models_dir) if args.models_dir else Registry.default()
    load = os.getloadavg()[0]
    print(
        f"# {os.cpu_count()} CPUs, load average {load:.2f}; {runs} runs after {warmup} warm-up; "
        "2 threads spin between operators"
        + ("  (QUICK: too few runs for real figures)" if args.quick else "")
    )
    rows = []
    for spec in registry.all():
        rows.append(
            Row(
                spec.name,
                spec.kind,
                spec.precision,
                spec.parameters,
                spec.size_bytes / 1024,
                latency(spec.model_file, runs, warmup),
            )
        )
    if not rows:
        print(f"no styles installed in {', '.join(map(str, registry.dirs))}")
    base = baseline(runs, warmup)
    print(table(rows, base))
    if base:
        print("xS/T = AnimeGANv2 ms / style ms at S px with T intra-op threads (higher: faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
