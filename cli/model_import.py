"""Import a published AnimeGANv2 PyTorch checkpoint as a style: verify, export, install.

Nothing in the file is trusted before it is checked: it is loaded with
`torch.load(weights_only=True)` (plain tensors only, no arbitrary unpickling), its keys and
shapes must be exactly those of the published generator (`models.published`), a file that claims
a published name must have that file's git blob SHA-1, and the exported ONNX model must agree
with PyTorch before it is installed. The style is built in a staging folder and renamed into the
user models directory only when complete, so a failure leaves nothing half-written.

torch is imported here lazily, inside `import_checkpoint`: the serving path never loads it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cli.common import user_models_dir
from cli.errors import ChecksumMismatch, CliError, MissingExtra
from core.errors import InputError, ModelFileError
from core.registry import StyleSpec, load_spec, verify
from models.published import (
    ARCHITECTURE,
    FileDigests,
    PublishedWeights,
    by_git_sha1,
    file_digests,
    layout,
    published,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MULTIPLE = 4  # two stride-2 stages; the engine pads to a multiple of 4
CALIBRATION_LIMIT = 16  # photos; more adds minutes and little range
CALIBRATION_SIDE = 1024  # export.PhotoCalibration then feeds 512 and 768 px versions + crops
VALIDATION_SIDE = 768
WRAPPER_KEYS = ("state_dict", "model")
STAGING = ".staging"
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
TORCH_HINT = "models add needs PyTorch: install the training extras: pip install -e '.[train]'"
INPUT_NOTE = "RGB NCHW float32 in [-1, 1]; output the same"


@dataclass(frozen=True)
class ImportOptions:
    name: str
    title: str | None = None
    face: bool = False
    calibration: Path | None = None  # None: ../shared/data/photos when it exists
    force: bool = False
    url: str | None = None  # where the file came from, for model.json


@dataclass(frozen=True)
class Provenance:
    published: PublishedWeights | None
    note: str

    @property
    def verified(self) -> bool:
        return self.published is not None


@dataclass(frozen=True)
class Imported:
    spec: StyleSpec
    provenance: Provenance
    gate_psnr: float | None
    calibration_photos: int
    int8_skipped: str | None
    warnings: tuple[str, ...]


# --------------------------------------------------------------------------- checks (no torch)


def check_name(name: str, *, builtin: set[str]) -> None:
    if not NAME.fullmatch(name):
        raise CliError(
            f"style name {name!r} must be lower-case letters, digits and '_', starting with a "
            "letter (at most 40 characters)"
        )
    if name in builtin:
        raise CliError(f"a built-in style is called {name!r}; choose another --name")


def builtin_names(weights_dir: Path) -> set[str]:
    """Folder names and model.json names under models/weights (tolerant of half exports)."""
    names: set[str] = set()
    if not weights_dir.is_dir():
        return names
    for folder in weights_dir.iterdir():
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        names.add(folder.name)
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            names.add(str(json.loads((folder / "model.json").read_text())["name"]))
    return names


def check_provenance(path: Path, name: str, digests: FileDigests) -> Provenance:
    """A published name must come with the published bytes; any other name is accepted with its
    provenance marked unchecked (unless the bytes happen to be a published file)."""
    claimed = published(name) or published(path.stem)
    if claimed is not None:
        if digests.git_blob_sha1 != claimed.git_blob_sha1:
            raise ChecksumMismatch(
                f"{path} is not the published {claimed.name} checkpoint (git blob SHA-1 "
                f"{digests.git_blob_sha1}, published {claimed.git_blob_sha1}); refusing it"
            )
        return Provenance(claimed, f"git blob SHA-1 matches the published {claimed.name}")
    same = by_git_sha1(digests.git_blob_sha1)
    if same is not None:
        return Provenance(same, f"git blob SHA-1 matches the published {same.name}")
    return Provenance(
        None,
        f"unchecked: {path.name} is not a published AnimeGANv2 file; only its parameter names "
        "and shapes were verified",
    )


def kind_for(name: str, *, face: bool) -> str:
    return "face" if face or name.startswith(("face_paint", "celeba")) else "scene"


def licence_for(source: PublishedWeights | None) -> str:
    code = "Code: MIT (bryandlee/animegan2-pytorch)."
    if source is None:
        return f"{code} Weights: unknown origin; check the terms of wherever the file came from."
    if source.name == "paprika":
        return f"{code} Weights: AnimeGANv2 terms, non-commercial use only."
    return f"{code} Weights: {source.license_note}."


def check_layout(state: Mapping[str, Any], where: Path) -> None:
    """Exactly the published keys and shapes, floating-point, finite."""
    torch = _torch()

    expected = layout()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    problems: list[str] = []
    if missing:
        problems.append(f"{len(missing)} missing ({_few(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_few(unexpected)})")
    wrong = []
    for key, shape in expected.items():
        value = state.get(key)
        if value is None:
            continue
        if not isinstance(value, torch.Tensor):
            wrong.append(f"{key} is not a tensor")
        elif tuple(value.shape) != shape:
            wrong.append(f"{key} {tuple(value.shape)} != {shape}")
        elif not value.is_floating_point():
            wrong.append(f"{key} is {value.dtype}, not floating point")
        elif not bool(torch.isfinite(value).all()):
            wrong.append(f"{key} holds NaN or infinity")
    if wrong:
        problems.append(f"{len(wrong)} wrong tensors ({_few(wrong)})")
    if problems:
        raise ModelFileError(
            f"{where} is not a published AnimeGANv2 generator checkpoint: " + "; ".join(problems)
        )


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f", … {len(items) - n} more" if len(items) > n else "")


# --------------------------------------------------------------------------- torch part


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingExtra(TORCH_HINT) from exc
    return torch


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Plain tensors only: `weights_only=True` refuses pickled code and arbitrary objects.
    Accepts a bare state dict, one wrapped in {"state_dict": ...} or {"model": ...}, and the
    "module." prefix DataParallel adds."""
    torch = _torch()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle and zip errors, refused globals: all mean "not for us"
        if "weights_only" in str(exc) or "Weights only" in str(exc):
            why = "it holds pickled Python objects besides tensors, which are never loaded"
        else:
            why = "not a file torch.save wrote, or a damaged one"
        raise ModelFileError(
            f"{path} is not a PyTorch checkpoint of plain tensors ({why}); only weights are "
            "accepted"
        ) from exc
    for key in WRAPPER_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
        raise ModelFileError(f"{path} does not hold a state dict (name → tensor)")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def build_generator(state: Mapping[str, Any]) -> nn.Module:
    from models.animeganv2 import Generator

    model = Generator()
    model.load_state_dict(state, strict=True)
    model.eval()
    return model


def check_export(model: nn.Module, onnx_file: Path, *, tolerance: float = 2e-3) -> float:
    """The exported fp32 graph must compute what PyTorch computes (odd size, dynamic axes)."""
    torch = _torch()
    import onnxruntime as ort

    x = torch.rand(1, 3, 68, 92) * 2 - 1
    with torch.no_grad():
        want = model(x).numpy()
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    diff = float(np.abs(got - want).max())
    if not diff <= tolerance:
        raise ModelFileError(f"exported ONNX differs from PyTorch by {diff:.4f} (> {tolerance})")
    return diff


# --------------------------------------------------------------------------- photos


def default_calibration_dir() -> Path | None:
    from models.pairs import shared_dir

    folder = shared_dir() / "data" / "photos"
    return folder if folder.is_dir() else None


def calibration_photos(folder: Path | None) -> tuple[list[np.ndarray], str | None]:
    """Up to CALIBRATION_LIMIT decodable photos from `folder`, or why there are none."""
    from core.imageio import decode

    if folder is None:
        return [], "no calibration photos (pass --calibration DIR)"
    if not folder.is_dir():
        raise CliError(f"calibration folder not found: {folder}")
    photos: list[np.ndarray] = []
    for path in sorted(folder.iterdir()):
        if len(photos) >= CALIBRATION_LIMIT:
            break
        if path.suffix.lower() not in PHOTO_SUFFIXES or not path.is_file():
            continue
        try:
            photos.append(decode(path).rgb)
        except (InputError, OSError):
            continue  # calibration is best effort; unreadable files are just not used
    if not photos:
        return [], f"no usable photos in {folder}"
    return photos, None


# --------------------------------------------------------------------------- the import


def import_checkpoint(
    checkpoint: Path,
    options: ImportOptions,
    *,
    builtin: set[str],
    models_root: Path | None = None,
    on_step: Callable[[str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    quiet: bool = True,
) -> Imported:
    """Verify `checkpoint`, export it (fp32 + gated INT8) and install it as a user style.

    `quiet` hides the exporter's and quantizer's own warnings (tracer notes, per-axis remarks):
    they are about the tools, not about this model."""
    say = on_step or (lambda text: None)
    root = models_root or user_models_dir()
    check_name(options.name, builtin=builtin)
    target = root / options.name
    if target.exists() and not options.force:
        raise CliError(
            f"a user style called {options.name!r} is already installed ({target}); use --force "
            f"to replace it, or 'animebot models remove {options.name}'"
        )
    if not checkpoint.is_file():
        raise CliError(f"checkpoint not found: {checkpoint}")
    digests = file_digests(checkpoint)
    provenance = check_provenance(checkpoint, options.name, digests)
    state = load_state_dict(checkpoint)
    check_layout(state, checkpoint)
    # Said only now that the names and shapes it mentions have really been verified.
    notes = () if provenance.verified else (f"provenance {provenance.note}",)
    for note in notes:
        (on_warning or say)(note)
    model = build_generator(state)
    parameters = sum(int(p.numel()) for p in model.parameters())
    photos, skipped = calibration_photos(
        options.calibration if options.calibration is not None else default_calibration_dir()
    )
    kind = kind_for(options.name, face=options.face)
    info: dict[str, object] = {
        "title": options.title or options.name.replace("_", " ").title(),
        "kind": kind,
        "architecture": ARCHITECTURE,
        "parameters": parameters,
        "source": {
            "file": checkpoint.name,
            "url": options.url,
            "git_blob_sha1": digests.git_blob_sha1,
            "sha256": digests.sha256,
            "bytes": digests.size,
            "published_as": provenance.published.name if provenance.published else None,
            "provenance": provenance.note,
        },
        "licence": licence_for(provenance.published),
        "imported_with": "animebot models add",
    }
    if photos:
        info["calibration_photos"] = {"count": len(photos), "max_side": CALIBRATION_SIDE}
        info["validation_photos"] = (
            f"the same {len(photos)} calibration photos at {VALIDATION_SIDE} px (imported "
            "models have no held-out set)"
        )
    staging = root / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    work = staging / f"{options.name}-{secrets.token_hex(4)}"
    try:
        with _quiet_tools(quiet):
            if photos:
                say(f"exporting ONNX fp32 and calibrating INT8 on {len(photos)} photos …")
                gate_psnr: float | None = _export_gated(model, options.name, work, photos, info)
            else:
                say(f"exporting ONNX fp32 only: {skipped}")
                _export_fp32_only(model, options.name, work, info, str(skipped))
                gate_psnr = None
        check_export(model, work / f"{options.name}.fp32.onnx")
        _smoke_test(work)
        _write_card(work, options.name, info, skipped)
        _install(work, target, staging)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        _remove_if_empty(staging)
    spec = load_spec(target)
    return Imported(spec, provenance, gate_psnr, len(photos), skipped, notes)


@contextlib.contextmanager
def _quiet_tools(quiet: bool) -> Iterator[None]:
    if not quiet:
        yield
        return
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime.quantization logs through the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.onnx tracer and constant-folding notes
            yield
    finally:
        root.setLevel(level)


def _export_gated(
    model: nn.Module, name: str, folder: Path, photos: list[np.ndarray], info: dict[str, object]
) -> float:
    from models.export import export_style, fit

    result = export_style(
        model,
        style=name,
        folder=folder,
        calibration=[fit(p, CALIBRATION_SIDE) for p in photos],
        validation=[fit(p, VALIDATION_SIDE) for p in photos],
        multiple=MULTIPLE,
        info=info,
    )
    return result.gate_psnr


def _export_fp32_only(
    model: nn.Module, name: str, folder: Path, info: dict[str, object], reason: str
) -> None:
    """What export_style writes, minus INT8: without photos there is nothing to calibrate on."""
    from models.export import export_fp32, file_digest

    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / f"{name}.fp32.onnx"
    export_fp32(model, fp32)
    meta = {
        **info,
        "name": name,
        "multiple": MULTIPLE,
        "input": INPUT_NOTE,
        "files": {"fp32": fp32.name},
        "sizes": {"fp32": fp32.stat().st_size},
        "serve": "fp32",
        "gate": {},
        "int8_skipped": reason,
        "version": file_digest(fp32)[:16],
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / "model.json").write_text(json.dumps(meta, indent=2) + "\n")


def _smoke_test(folder: Path) -> None:
    """Load it the way the engine will, and run it once."""
    from core.session import StyleSession

    spec = load_spec(folder)
    verify(spec)
    out = StyleSession(spec).run(np.full((66, 90, 3), 128, np.uint8))
    if out.shape != (66, 90, 3):
        raise ModelFileError(f"exported model returned shape {out.shape} for a 66x90 image")


def _write_card(folder: Path, name: str, info: dict[str, object], skipped: str | None) -> None:
    meta = json.loads((folder / "model.json").read_text())
    source = meta["source"]
    gate = meta.get("gate") or {}
    precision = (
        f"INT8 ({gate.get('int8_vs_fp32_psnr_db')} dB vs fp32)"
        if meta["serve"] == "int8"
        else f"fp32 ({skipped or 'INT8 below the quality gate'})"
    )
    card = f"""# {info["title"]} ({name})

Imported AnimeGANv2 generator ({meta["kind"]} style), {meta["parameters"]:,} parameters.

- Source file: {source["file"]} ({source["bytes"]:,} bytes, git blob SHA-1
  {source["git_blob_sha1"]}){f", from {source['url']}" if source.get("url") else ""}
- Provenance: {source["provenance"]}
- Serving: {precision}
- Licence: {meta["licence"]}
"""
    (folder / "CARD.md").write_text(card)


def _install(work: Path, target: Path, staging: Path) -> None:
    """Rename into place; an existing style (--force) is moved aside first, then deleted."""
    old = None
    if target.exists():
        old = staging / f"{target.name}-replaced-{secrets.token_hex(4)}"
        target.replace(old)
    try:
        work.replace(target)
    except BaseException:
        if old is not None:
            old.replace(target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


def remove_style(name: str, *, builtin: set[str], models_root: Path | None = None) -> Path:
    """Delete a user style (never a built-in one); returns the folder it was in."""
    root = models_root or user_models_dir()
    folder = find_user_style(root, name)
    if folder is None:
        if name in builtin:
            raise CliError(f"{name!r} is a built-in style; only imported styles can be removed")
        imported = sorted(n for n, _ in _user_styles(root))
        if not imported:
            raise CliError(f"no style called {name!r}: no imported styles are installed ({root})")
        raise CliError(f"no imported style called {name!r}; imported: {', '.join(imported)}")
    staging = root / STAGING
    staging.mkdir(exist_ok=True)
    doomed = staging / f"{folder.name}-removed-{secrets.token_hex(4)}"
    folder.replace(doomed)  # gone from the registry at once, even if deleting is slow
    shutil.rmtree(doomed, ignore_errors=True)
    _remove_if_empty(staging)
    return folder


def find_user_style(root: Path, name: str) -> Path | None:
    return next((folder for n, folder in _user_styles(root) if n == name), None)


def _user_styles(root: Path) -> list[tuple[str, Path]]:
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not (folder / "model.json").is_file():
            continue
        try:
            name = str(json.loads((folder / "model.json").read_text())["name"])
        except (OSError, ValueError, KeyError, TypeError):
            name = folder.name
        found.append((name, folder))
    return found
