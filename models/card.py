"""Write a style's model card (CARD.md) and sample images from what is actually served.

    python -m models.card --style hayao --run runs/hayao

Validation figures are measured here, on the held-out pairs at full resolution (long side
<= 1280), with the ONNX file the engine serves (INT8 where it passed the gate), next to the
identity baseline: the photo itself scored against the teacher on the same images.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models import WEIGHTS_DIR
from models.export import fit, run_onnx, session
from models.metrics import psnr, ssim
from models.pairs import load_pairs, teacher_of
from models.train import STYLE_SOURCES, read_rgb

SAMPLES = Path(__file__).resolve().parents[1] / "docs" / "images"


def evaluate(meta: dict[str, Any], folder: Path) -> list[dict[str, Any]]:
    served = session(folder / meta["files"][meta["serve"]], threads=2)
    by_id = {p.id: p for p in load_pairs(STYLE_SOURCES[meta["trained_from"]][0])}
    rows = []
    for pid in meta["split"]["val"]:
        pair = by_id[pid]
        photo, anime = fit(read_rgb(pair.photo), 1280), fit(read_rgb(pair.anime), 1280)
        out = run_onnx(served, photo, int(meta["multiple"]))
        rows.append(
            {
                "id": pid,
                "size": f"{photo.shape[1]}x{photo.shape[0]}",
                "psnr": psnr(out, anime),
                "ssim": ssim(out, anime),
                "id_psnr": psnr(photo, anime),
                "id_ssim": ssim(photo, anime),
                "images": (photo, out, anime),
            }
        )
    return rows


def sample_strip(
    photo: np.ndarray, ours: np.ndarray, teacher: np.ndarray, width: int = 420
) -> np.ndarray:
    h, w = photo.shape[:2]
    size = (width, round(h * width / w))
    tiles = [cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (photo, ours, teacher)]
    gap = np.full((size[1], 6, 3), 255, np.uint8)
    return np.concatenate([tiles[0], gap, tiles[1], gap, tiles[2]], axis=1)


def training_summary(run: Path) -> dict[str, object]:
    log = (run / "train.log").read_text()
    finished = re.findall(r"finished at step (\d+) after ([\d.]+) min", log)
    minutes = sum(float(m) for _, m in finished[-1:]) if finished else None
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    threads = re.findall(r" threads=(\d+) ", log)  # older logs did not say: those ran on 1
    last = records[-1] if records else {"step": 0, "minutes": 0.0}  # `--steps 0`: re-packaged
    return {
        "steps": last["step"],
        "minutes": minutes or last["minutes"],
        "threads": int(threads[-1]) if threads else 1,
    }


def detail_crop(teacher: np.ndarray, side: int = 256) -> tuple[int, int]:
    """Top-left corner of the `side` px square where the teacher drew the most edges (strokes
    and contours are what a 100% crop is for)."""
    grey = cv2.cvtColor(teacher, cv2.COLOR_RGB2GRAY).astype(np.float32)
    energy = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    summed = cv2.integral(energy)
    h, w = grey.shape
    best, where = -1.0, (0, 0)
    for y in range(0, max(1, h - side + 1), side // 4):
        for x in range(0, max(1, w - side + 1), side // 4):
            y1, x1 = y + side, x + side
            total = summed[y1, x1] - summed[y, x1] - summed[y1, x] + summed[y, x]
            if total > best:
                best, where = float(total), (y, x)
    return where


def crops_strip(panels: list[np.ndarray], corner: tuple[int, int], side: int = 256) -> np.ndarray:
    y, x = corner
    tiles = [p[y : y + side, x : x + side] for p in panels]
    gap = np.full((tiles[0].shape[0], 6, 3), 255, np.uint8)
    out = [tiles[0]]
    for tile in tiles[1:]:
        out += [gap, tile]
    return np.concatenate(out, axis=1)


def _crops(style: str, rows: list[dict[str, Any]], previous: Path) -> list[str]:
    """100% crops: photo | previous served model | this model | teacher."""
    old_meta = json.loads((previous / "model.json").read_text())
    old = session(previous / old_meta["files"][old_meta["serve"]], threads=2)
    lines = ["## 100% crops (photo | previous model | this model | teacher)\n"]
    for row in rows:
        photo, ours, teacher = row["images"]
        before = run_onnx(old, photo, int(old_meta["multiple"]))
        strip = crops_strip([photo, before, ours, teacher], detail_crop(teacher))
        name = f"{style}_crops_{row['id']}.jpg"
        cv2.imwrite(
            str(SAMPLES / name),
            cv2.cvtColor(strip, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 92],
        )
        lines.append(
            f"![{row['id']} at 100%: photo | previous | this model | teacher]"
            f"(../../../docs/images/{name})\n"
        )
    return lines


def write_card(
    style: str,
    run: Path,
    command: str,
    samples: list[str] | None = None,
    extra: str = "",
    previous: Path | None = None,
) -> Path:
    folder = WEIGHTS_DIR / style
    meta = json.loads((folder / "model.json").read_text())
    rows = evaluate(meta, folder)
    keys = ("psnr", "ssim", "id_psnr", "id_ssim")
    mean = {k: float(np.mean([float(str(r[k])) for r in rows])) for k in keys}
    meta["validation_served"] = {k: round(v, 3) for k, v in mean.items()}
    (folder / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    sections = [
        f"# {meta['title']} (`{style}`)\n",
        f"A {meta['kind']} style for animebot: a student generator distilled from "
        f"{_teacher(meta)} outputs.\n",
        _facts(meta, training_summary(run), command),
        _validation(meta, rows, mean),
        *(
            [
                "## Samples (validation photos: photo | ours | teacher)\n",
                *_samples(
                    style, shown := [r for r in rows if r["id"] in (samples or [])] or rows[:2]
                ),
                *(_crops(style, shown, previous) if previous is not None else []),
            ]
            if samples != []
            else [NO_SAMPLES]
        ),
        extra,
        licence(_teacher(meta)),
    ]
    path = folder / "CARD.md"
    path.write_text("\n".join(sections))
    return path


NO_SAMPLES = (
    "## Samples\n\nNone from the pairs: their photos show identifiable people and are not ours to "
    "redistribute. The notes below show 100% crops of the README's example photos instead.\n"
)

_DECODER = {
    0: "ReLU decoder convs (the deepest never fired in training, so the 1/4-resolution blocks "
    "add nothing to the output: see `models/student.py: Up`), ",
    1: "a linear deepest decoder conv, ",
    2: "linear decoder convs, ",
}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _facts(meta: dict[str, Any], train: dict[str, object], command: str) -> str:
    cfg, gate = meta["config"], meta["gate"]
    split = meta["split"]
    sizes = ", ".join(f"{k} {v / 1024:.0f} KB" for k, v in meta["sizes"].items())
    verdict = "passed" if gate["passed"] else "failed"
    rows = {
        "architecture": (
            f"residual U-Net student (`models/student.py`): widths {cfg['widths']}, "
            f"{_count(cfg['blocks'], 'inverted-residual block')} (expansion {cfg['expansion']}) "
            f"at 1/4 resolution, {_count(cfg.get('refine', 0), 'refinement block')} at full "
            "resolution, "
            + (
                f"{_count(cfg['half_refine'], 'refinement block')} at half resolution, "
                if cfg.get("half_refine")
                else ""
            )
            + (
                f"{cfg['context']} dilated context blocks at 1/8 resolution "
                f"(width {cfg.get('context_width', 96)}), "
                if cfg.get("context")
                else ""
            )
            + _DECODER[int(cfg.get("linear_up", 0))]
            + (
                "an overview branch (64x64 whole-photo thumbnail: feature FiLM and output colour "
                "gain/offset), "
                if cfg.get("overview")
                else ""
            )
            + "ReLU, no normalisation"
        ),
        "parameters": f"{meta['parameters']:,}",
        "files": f"{sizes}; served: **{meta['serve']}**",
        "INT8 gate": (
            f"INT8 vs fp32 on the validation photos: {gate['int8_vs_fp32_psnr_db']} dB "
            f"(threshold {gate['threshold_db']} dB, {verdict}); static QDQ, per-channel "
            f"weights, {gate['calibration']} calibration on the training photos"
        ),
        "version": f"`{meta['version']}` (sha256 prefix of the served file; in every cache key)",
        "training data": (
            f"`{STYLE_SOURCES[meta['trained_from']][0]}` pairs from `../shared/data/pairs`: "
            f"{len(split['train'])} train / {len(split['val'])} validation, split by scene "
            "group (no near-duplicate scene across the split)"
        ),
        "training": (
            f"served checkpoint: step {meta['training_step']} "
            f"({meta.get('selected_by', 'best validation PSNR')}) of a "
            f"{train['steps']}-step run, {float(str(train['minutes'])):.0f} min on "
            f"{train['threads']} CPU thread(s); "
            f"`{command}`"
        ),
    }
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows.items()) + "\n"


def _validation(meta: dict[str, Any], rows: list[dict[str, Any]], mean: dict[str, float]) -> str:
    lines = [
        f"## Validation (held-out pairs, served {meta['serve']} model, long side <= 1280 px)\n",
        "Model = our output scored against the teacher; identity = the photo itself against "
        "the teacher, on the same images.\n",
        "| pair | size | model PSNR dB | model SSIM | identity PSNR dB | identity SSIM |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['id']} | {r['size']} | {r['psnr']:.2f} | {r['ssim']:.3f} "
        f"| {r['id_psnr']:.2f} | {r['id_ssim']:.3f} |"
        for r in rows
    ]
    lines.append(
        f"| **mean** | | **{mean['psnr']:.2f}** | **{mean['ssim']:.3f}** "
        f"| {mean['id_psnr']:.2f} | {mean['id_ssim']:.3f} |\n"
    )
    lines.append(
        f"Gain over identity: **{mean['psnr'] - mean['id_psnr']:+.2f} dB PSNR**, "
        f"**{mean['ssim'] - mean['id_ssim']:+.3f} SSIM**.\n"
    )
    return "\n".join(lines)


def _samples(style: str, rows: list[dict[str, Any]]) -> list[str]:
    SAMPLES.mkdir(parents=True, exist_ok=True)
    lines = []
    for row in rows:
        photo, ours, teacher = row["images"]
        name = f"{style}_{row['id']}.jpg"
        strip = cv2.cvtColor(sample_strip(photo, ours, teacher), cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(SAMPLES / name), strip, [cv2.IMWRITE_JPEG_QUALITY, 85])
        lines.append(f"![{row['id']}: photo | ours | teacher](../../../docs/images/{name})\n")
    return lines


def _teacher(meta: dict[str, Any]) -> str:
    return str(meta.get("teacher") or teacher_of(STYLE_SOURCES[meta["trained_from"]][0]))


def licence(teacher: str) -> str:
    return f"""## Licence

The code is MIT. These weights were trained on images produced by {teacher}
(TachibanaYoshino/{teacher}), whose outputs are licensed for **non-commercial use only**;
the weights inherit that restriction. The training photos are third-party images used for
research; do not redistribute them.
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--style", required=True)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--command", default="", help="the training command, for the record")
    ap.add_argument("--notes", type=Path, help="a markdown file appended to the card")
    ap.add_argument(
        "--previous",
        type=Path,
        help="the previously served model's folder: adds 100%% crops photo | previous | new | "
        "teacher",
    )
    ap.add_argument(
        "--samples",
        nargs="+",
        metavar="ID",
        help="validation pair ids to show (default: the first two); the portrait grids show "
        "identifiable people and must not be redistributed, so pick others for face styles",
    )
    ap.add_argument(
        "--no-samples", action="store_true", help="show no pair images (identifiable people)"
    )
    a = ap.parse_args(argv)
    if a.no_samples:
        a.samples = []
    extra = a.notes.read_text() if a.notes else ""
    command = a.command or f"python -m models.train --style {a.style}"
    print(write_card(a.style, a.run, command, samples=a.samples, extra=extra, previous=a.previous))


if __name__ == "__main__":
    main()
