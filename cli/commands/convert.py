"""`animebot convert`: photos in, anime pictures out, one line per file.

A thin loop over `Engine.convert_sync`: one engine and its models are loaded once, each input
is converted and written next to itself (or to `-o`), and a file that fails gets one clear line
while the others go on. Exit code 0 when every file converted, 1 when any failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cli.clips import VIDEO_SUFFIXES, convert_clip, is_clip
from cli.common import (
    error_text,
    kib,
    note_text,
    positive_int,
    registry_from,
    write_atomic,
)
from core.errors import ModelFileError

if TYPE_CHECKING:
    from cli.common import Subparsers
    from core.engine import Conversion, Engine
    from core.registry import StyleSpec

# Files a directory expands to (by suffix; the decoder still checks the bytes).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
    | {".heic", ".heif", ".avif"}
)
FORMATS = ("png", "jpeg", "webp")
# The CLI keeps the input's size (tiling bounds memory); only --max-size scales down.
# The engine's pixel cap (40 MP) still applies.
NO_SIDE_LIMIT = 1 << 16


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "convert",
        help="convert photos, clips and animated GIFs to an anime style",
        description="Convert photos, clips and animated GIFs to an anime style. Each result is "
        "named after its input (photo.jpg -> photo_hayao.png, clip.mov -> clip_hayao.mp4) and "
        "written next to it, or to OUTDIR.",
    )
    p.add_argument(
        "inputs",
        nargs="+",
        type=Path,
        metavar="INPUT",
        help="image files, or directories (the images directly inside them; earlier results "
        "named *_<style>.* are skipped)",
    )
    p.add_argument("-o", "--output-dir", type=Path, metavar="OUTDIR", help="where results go")
    p.add_argument("-s", "--style", help="style name (see 'animebot styles')")
    p.add_argument(
        "--max-size",
        type=positive_int,
        metavar="N",
        help="scale down so the longer side is at most N px (default: keep the input size)",
    )
    p.add_argument(
        "--faces",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="find faces and paint them with the face model (default: on)",
    )
    p.add_argument(
        "--side-by-side", action="store_true", help="put the original to the left of the result"
    )
    p.add_argument(
        "--format",
        dest="fmt",
        choices=FORMATS,
        default="png",
        help="output format (default png; inputs with transparency give png or webp)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="CPU threads for the network (default: all cores)",
    )
    p.set_defaults(handler=run)


@dataclass(frozen=True)
class Job:
    source: Path
    problem: str | None = None  # set when there is nothing to convert (e.g. an empty folder)


def run(args: argparse.Namespace) -> int:
    from core.engine import Engine, EngineConfig

    registry = registry_from(args)
    engine = Engine(
        registry,
        EngineConfig(workers=1, threads_per_job=args.threads, max_side=NO_SIDE_LIMIT),
    )
    spec = engine.resolve(args.style)
    face = registry.face_model_for(spec) if args.faces else None
    _load(engine, spec, face)
    if args.faces and face is None:
        print("note: no face style installed; faces are painted by the scene style")
    for model in (spec, face):
        if model is not None and model.gate_note:
            print(f"note: {model.name}: {model.gate_note}")
    taken: set[Path] = set()
    done = failed = 0
    for job in expand(args.inputs, skip_styles=registry.names()):
        if job.problem is None:
            ok = _convert_one(engine, spec, job.source, args, faces=face is not None, taken=taken)
        else:
            print(f"{job.source}: {job.problem}", file=sys.stderr)
            ok = False
        done, failed = done + ok, failed + (not ok)
    if done + failed > 1:
        print(f"{done} converted, {failed} failed")
    return 0 if failed == 0 else 1


def _load(engine: Engine, spec: StyleSpec, face: StyleSpec | None) -> None:
    """Load the models before the first file, so a broken model is one error, not N."""
    for model in (spec, face):
        if model is None:
            continue
        try:
            engine.session(model)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelFileError(
                f"{model.model_file} could not be loaded: ONNX Runtime cannot read it (a damaged "
                "file, or not an ONNX model); reinstall the style or run with --verbose"
            ) from exc
    if face is not None:
        engine.detector()


def _convert_one(
    engine: Engine,
    spec: StyleSpec,
    source: Path,
    args: argparse.Namespace,
    *,
    faces: bool,
    taken: set[Path],
) -> bool:
    start = time.perf_counter()
    if is_clip(source):
        try:
            dest = unique(output_path(source, args.output_dir, spec.name, "mp4"), taken)
            print(convert_clip(engine, spec, source, dest, args))
        except Exception as exc:
            if args.verbose:
                traceback.print_exception(exc, file=sys.stderr)
            print(f"{source}: failed: {error_text(exc)}", file=sys.stderr)
            return False
        return True
    try:
        result = engine.convert_sync(
            source,
            style=spec.name,
            faces=faces,
            side_by_side=args.side_by_side,
            fmt=args.fmt,
            max_side=args.max_size,
        )
        dest = unique(output_path(source, args.output_dir, spec.name, result.image.ext), taken)
        write_atomic(dest, result.image.data)
    except Exception as exc:  # one bad file must not stop the others
        if args.verbose:
            traceback.print_exception(exc, file=sys.stderr)
        print(f"{source}: failed: {error_text(exc)}", file=sys.stderr)
        return False
    print(describe(source, dest, result, faces=faces, seconds=time.perf_counter() - start))
    return True


def describe(source: Path, dest: Path, result: Conversion, *, faces: bool, seconds: float) -> str:
    image = result.image
    found = f"{result.faces_found} face{'s' * (result.faces_found != 1)}" if faces else "faces off"
    line = (
        f"{source} -> {dest}  {image.width}x{image.height}  {kib(len(image.data))}  "
        f"{found}  {seconds:.2f} s"
    )
    notes = [text for note in result.notes if (text := note_text(note))]
    return f"{line}  ({'; '.join(notes)})" if notes else line


def output_path(source: Path, output_dir: Path | None, style: str, ext: str) -> Path:
    return (output_dir or source.parent) / f"{source.stem}_{style}.{ext}"


def unique(path: Path, taken: set[Path]) -> Path:
    """photo.jpg and photo.png in one run must not overwrite each other's result."""
    candidate, n = path, 1
    while candidate in taken:
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    taken.add(candidate)
    return candidate


def expand(inputs: Sequence[Path], *, skip_styles: Iterable[str] = ()) -> list[Job]:
    """Files stay as given (a missing one fails when converted); a directory becomes the images
    directly inside it, in name order, without hidden files or earlier results."""
    endings = tuple(f"_{name}" for name in skip_styles)
    jobs: list[Job] = []
    for path in inputs:
        if not path.is_dir():
            jobs.append(Job(path))
            continue
        images = sorted(
            p
            for p in path.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
            and not p.name.startswith(".")
            and not (endings and p.stem.endswith(endings))
            and p.is_file()
        )
        jobs.extend(Job(p) for p in images)
        if not images:
            jobs.append(Job(path, "no images found in this folder"))
    return jobs
