"""Export a trained generator to ONNX fp32 and static-QDQ INT8, gate the INT8 file on quality,
and write the style folder the serving engine reads (models/weights/<style>/).

    python -m models.export --run runs/hayao --style hayao --kind scene --title "Hayao"

INT8 uses ONNX Runtime's static quantization (QDQ, per-channel int8 weights, uint8 activations)
calibrated on real photos: the style's training photos at several scales. (PyTorch's
quantize_dynamic does not quantize Conv2d at all, so it is not used.) The gate: INT8 output
against fp32 output on the validation photos must reach `--gate-db` PSNR; otherwise the style
serves fp32 and model.json says why.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from torch import nn

from core.session import THUMB_INPUT, THUMB_SIDE, takes_thumb, thumbnail
from models import WEIGHTS_DIR
from models.metrics import psnr
from models.pairs import Pair, load_pairs, teacher_of
from models.train import STYLE_SOURCES, read_rgb

GATE_DB = 35.0
OPSET = 17


def export_fp32(model: nn.Module, path: Path, sample_side: int = 256) -> None:
    model.eval()
    sample = torch.zeros(1, 3, sample_side, sample_side)
    config = getattr(model, "config", None)
    two_inputs = bool(getattr(config, "overview", 0))
    args = (sample, torch.zeros(1, 3, THUMB_SIDE, THUMB_SIDE)) if two_inputs else (sample,)
    with torch.no_grad():
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=["input", THUMB_INPUT] if two_inputs else ["input"],
            output_names=["output"],
            dynamic_axes={"input": {2: "height", 3: "width"}, "output": {2: "height", 3: "width"}},
            opset_version=OPSET,
            dynamo=False,
        )


def to_input(rgb: np.ndarray, multiple: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        rgb = cv2.copyMakeBorder(rgb, 0, ph, 0, pw, cv2.BORDER_REFLECT_101)
    x = rgb.astype(np.float32) / 127.5 - 1.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def from_output(y: np.ndarray, h: int, w: int) -> np.ndarray:
    out = ((np.clip(y[0], -1, 1) + 1) * 127.5).round().astype(np.uint8)
    return np.ascontiguousarray(out.transpose(1, 2, 0)[:h, :w])


def feeds(session: ort.InferenceSession, rgb: np.ndarray, multiple: int) -> dict[str, np.ndarray]:
    """The model's inputs for a photo: the photo, and its thumbnail where the model takes one."""
    out = {"input": to_input(rgb, multiple)}
    if takes_thumb(session):
        out[THUMB_INPUT] = thumbnail(rgb)
    return out


def run_onnx(session: ort.InferenceSession, rgb: np.ndarray, multiple: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    (y,) = session.run(None, feeds(session, rgb, multiple))
    return from_output(y, h, w)


def fit(rgb: np.ndarray, max_side: int) -> np.ndarray:
    s = max_side / max(rgb.shape[:2])
    if s >= 1:
        return rgb
    size = (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


class PhotoCalibration(CalibrationDataReader):  # type: ignore[misc]
    """Real photos at the sizes the engine serves: whole photos scaled to 512 and 768 px and
    full-resolution 384 px crops, so activation ranges cover both context and detail."""

    def __init__(
        self, photos: Sequence[np.ndarray], multiple: int, seed: int = 0, thumbs: bool = False
    ) -> None:
        rng = np.random.default_rng(seed)
        batches: list[dict[str, np.ndarray]] = []
        for rgb in photos:
            extra = {THUMB_INPUT: thumbnail(rgb)} if thumbs else {}
            for side in (512, 768):
                batches.append({"input": to_input(fit(rgb, side), multiple), **extra})
            h, w = rgb.shape[:2]
            c = min(384, h, w)
            y0, x0 = int(rng.integers(h - c + 1)), int(rng.integers(w - c + 1))
            crop = to_input(rgb[y0 : y0 + c, x0 : x0 + c], multiple)  # a tile: the whole thumb
            batches.append({"input": crop, **extra})
        self._it: Iterator[dict[str, np.ndarray]] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantize_int8(fp32: Path, int8: Path, photos: Sequence[np.ndarray], multiple: int) -> None:
    """MinMax calibration: measured 51 dB against fp32 on the hayao validation photos, and the
    histogram methods (Percentile, Entropy) keep every activation of every calibration image in
    memory (over 20 GB here)."""
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(int8),
            PhotoCalibration(photos, multiple, thumbs=takes_thumb(session(fp32, threads=1))),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=float_nodes(pre),
        )


def float_nodes(path: Path) -> list[str]:
    """Nodes left in float: the overview branch (a 64x64 input: nothing to save), the
    top-level glue (feature scale and shift, residual add, output gain and offset, clamp) and
    the stem. Measured on the hayao validation photos with the overview model, INT8 against
    fp32: everything quantized 38.4 dB (and 0.015 SSIM lost against the teacher); overview
    branch float 38.7 dB; overview and stem float 50.4 dB. The stem's output is the skip that
    goes straight to the full-resolution decoder, so its 8-bit steps show in the image; it is
    one 3x3 conv from 3 to 16 channels, cheap in float. The head, a 3x3 conv from 16 to 3
    channels, is float for speed: in ONNX Runtime's profile of a 512 px pass on an AVX2 machine
    it took 24 ms as QLinearConv (3 output channels use the INT8 kernels badly) and 10 ms in
    float."""
    graph = onnx.load(str(path)).graph
    in_float = ("/overview/", "/stem/", "/head/")
    return [n.name for n in graph.node if n.name.startswith(in_float) or n.name.count("/") == 1]


def session(path: Path, threads: int = 2) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def gate(fp32: Path, int8: Path, photos: Sequence[np.ndarray], multiple: int) -> float:
    """Mean PSNR of INT8 output against fp32 output."""
    a, b = session(fp32), session(int8)
    return float(
        np.mean([psnr(run_onnx(b, p, multiple), run_onnx(a, p, multiple)) for p in photos])
    )


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class ExportResult:
    folder: Path
    serve: str
    gate_psnr: float


def export_style(
    model: nn.Module,
    *,
    style: str,
    folder: Path,
    calibration: Sequence[np.ndarray],
    validation: Sequence[np.ndarray],
    multiple: int,
    info: dict[str, object],
    gate_db: float = GATE_DB,
) -> ExportResult:
    """Write <style>.fp32.onnx, <style>.int8.onnx (when it passes the gate) and model.json."""
    folder.mkdir(parents=True, exist_ok=True)
    fp32, int8 = folder / f"{style}.fp32.onnx", folder / f"{style}.int8.onnx"
    export_fp32(model, fp32)
    candidate = folder / f".{style}.int8.tmp.onnx"
    quantize_int8(fp32, candidate, calibration, multiple)
    score = gate(fp32, candidate, validation, multiple)
    passed = score >= gate_db
    int8.unlink(missing_ok=True)
    if passed:
        candidate.replace(int8)
    else:
        candidate.unlink()
    serve = "int8" if passed else "fp32"
    files = {"fp32": fp32.name, **({"int8": int8.name} if passed else {})}
    served = folder / files[serve]
    meta = {
        **info,
        "name": style,
        "multiple": multiple,
        "input": "RGB NCHW float32 in [-1, 1]; output the same",
        "files": files,
        "sizes": {k: (folder / v).stat().st_size for k, v in files.items()},
        "serve": serve,
        "gate": {
            "int8_vs_fp32_psnr_db": round(score, 2),
            "threshold_db": gate_db,
            "passed": passed,
            "calibration": "MinMax",
        },
        "version": file_digest(served)[:16],
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    return ExportResult(folder, serve, score)


def _photos(pairs: Sequence[Pair], max_side: int) -> list[np.ndarray]:
    return [fit(read_rgb(p.photo), max_side) for p in pairs]


def main(argv: list[str] | None = None) -> None:
    from models.student import Student, StudentConfig, count_parameters

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--run", type=Path, required=True, help="training run folder with best.pt")
    ap.add_argument(
        "--checkpoint",
        default="best.pt",
        help="which checkpoint of the run (an adversarial run's stepNNNNN.pt chosen by look)",
    )
    ap.add_argument(
        "--selected-by",
        default="best validation PSNR",
        help="how the checkpoint was chosen, for the model card",
    )
    ap.add_argument("--style", required=True, help="style name to publish")
    ap.add_argument("--kind", choices=["scene", "face"], default="scene")
    ap.add_argument("--title", default=None)
    ap.add_argument(
        "--face-style", default=None, help="face model face2paint uses with this scene style"
    )
    ap.add_argument(
        "--color-match",
        type=float,
        default=None,
        help="face models: how far face2paint pulls their faces' colour to the scene's (0..1)",
    )
    ap.add_argument(
        "--exposure-floor",
        type=float,
        default=None,
        help="face models: lift faces darker than this mean luminance (0-255) before they run",
    )
    ap.add_argument("--out", type=Path, default=None, help="default models/weights/<style>")
    ap.add_argument("--gate-db", type=float, default=GATE_DB)
    a = ap.parse_args(argv)
    state = torch.load(a.run / a.checkpoint, weights_only=False)
    config = StudentConfig.from_dict(state["config"])
    model = Student(config)
    model.load_state_dict(state["model"])
    folder_name, _ = STYLE_SOURCES[state["style"]]
    by_id = {p.id: p for p in load_pairs(folder_name)}
    train = [by_id[i] for i in state["split"]["train"]]
    val = [by_id[i] for i in state["split"]["val"]]
    info: dict[str, object] = {
        "title": a.title or a.style.replace("_", " ").title(),
        "kind": a.kind,
        "architecture": "student",
        "config": config.to_dict(),
        "parameters": count_parameters(model),
        "trained_from": state["style"],
        "training_step": state["step"],
        "validation": state["scores"],
        "split": state["split"],
        "selected_by": a.selected_by,
        "teacher": teacher_of(folder_name),
        "licence": f"Trained on {teacher_of(folder_name)} outputs: non-commercial use only "
        "(see CARD.md).",
    }
    if a.face_style:
        info["face_style"] = a.face_style
    if a.color_match is not None:
        info["color_match"] = a.color_match
    if a.exposure_floor is not None:
        info["exposure_floor"] = a.exposure_floor
    result = export_style(
        model,
        style=a.style,
        folder=a.out or WEIGHTS_DIR / a.style,
        calibration=_photos(train, 1024),
        validation=_photos(val, 1280),
        multiple=model.multiple,
        info=info,
        gate_db=a.gate_db,
    )
    gate_note = f"INT8 vs fp32 {result.gate_psnr:.2f} dB"
    print(f"{a.style}: serving {result.serve} ({gate_note}) in {result.folder}")


if __name__ == "__main__":
    main()
