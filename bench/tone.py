"""Can a style's per-photo tone be predicted from the photo? (Most of its texture distance.)

    python bench/tone.py [--style hayao shinkai]

`bench/look.py`'s texture distance is mostly per-photo tone (its "tone-free" column): after
the best per-channel gain and offset against the teacher, an oracle no model has, it falls to
about 0.4x. Before spending a training run on tone, this asks whether that correction is
learnable from the training pairs at all. On the served model's outputs (JPEG round trip,
like look.py) it fits each training photo's oracle gain and offset, then scores on the
validation photos:

- served: the model as it is;
- fixed: the mean training correction applied to every photo (a constant grade the model
  missed);
- ridge (lambda): the correction predicted from the photo's and the output's per-channel mean
  and standard deviation, ridge regression on the training photos (global statistics are all
  a whole-photo branch can see; what they cannot predict, no tone head will);
- oracle: each validation photo's own best correction (the bound).

Rows print the texture distance (mean and per photo) and PSNR. Needs torch and ../shared.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT), str(HERE)] + [
    p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)
]

import numpy as np
import torch
from look import RGB, TextureMeter, images_of, jpeg_roundtrip, onnx_stylizer

from models import WEIGHTS_DIR
from models.metrics import psnr

Coefficients = tuple[np.ndarray, np.ndarray]  # per-channel gain, offset


def oracle(out: RGB, teacher: RGB) -> Coefficients:
    o = out.reshape(-1, 3).astype(np.float64)
    t = teacher.reshape(-1, 3).astype(np.float64)
    gain, offset = np.empty(3), np.empty(3)
    for c in range(3):
        design = np.stack([o[:, c], np.ones(len(o))], axis=1)
        (gain[c], offset[c]), *_ = np.linalg.lstsq(design, t[:, c], rcond=None)
    return gain, offset


def features(photo: RGB, out: RGB) -> np.ndarray:
    p = photo.reshape(-1, 3) / 255.0
    o = out.reshape(-1, 3) / 255.0
    return np.concatenate([[1.0], p.mean(0), p.std(0), o.mean(0), o.std(0)])


def corrected(out: RGB, gain: np.ndarray, offset: np.ndarray) -> RGB:
    return np.clip(out.astype(np.float64) * gain + offset, 0, 255).round().astype(np.uint8)


def run(style: str) -> None:
    folder = WEIGHTS_DIR / style
    meta = json.loads((folder / "model.json").read_text())
    train = images_of(style, meta["split"]["train"])
    val = images_of(style, meta["split"]["val"])
    stylize, _ = onnx_stylizer(folder)
    meter = TextureMeter()

    x, y = [], []
    for photo, teacher in train:
        out = jpeg_roundtrip(stylize(photo))
        gain, offset = oracle(out, teacher)
        x.append(features(photo, out))
        y.append(np.concatenate([gain, offset]))
    xs, ys = np.array(x), np.array(y)
    mean = ys.mean(0)

    outs = [jpeg_roundtrip(stylize(photo)) for photo, _ in val]
    grams = [meter.grams(teacher) for _, teacher in val]
    print(f"## {style}: {len(train)} training / {len(val)} validation photos")
    print(
        f"training oracle gain {np.round(mean[:3], 3)} (sd {np.round(ys[:, :3].std(0), 3)}), "
        f"offset {np.round(mean[3:], 1)} (sd {np.round(ys[:, 3:].std(0), 1)})"
    )

    def row(name: str, images: Sequence[RGB]) -> None:
        dist = [meter.distance(img, g) for img, g in zip(images, grams, strict=True)]
        gain = np.mean([psnr(img, t) for img, (_, t) in zip(images, val, strict=True)])
        print(f"| {name} | {np.mean(dist):.4f} | {np.round(dist, 3).tolist()} | {gain:.2f} |")

    print("| correction | texture | per photo | PSNR dB |\n|---|---|---|---|")
    row("served", outs)
    row("fixed (training mean)", [corrected(o, mean[:3], mean[3:]) for o in outs])
    for lam in (0.1, 1.0, 10.0):
        w = np.linalg.solve(xs.T @ xs + lam * np.eye(xs.shape[1]), xs.T @ (ys - mean))
        predicted = [mean + features(p, o) @ w for o, (p, _) in zip(outs, val, strict=True)]
        row(
            f"ridge {lam:g}",
            [corrected(o, c[:3], c[3:]) for o, c in zip(outs, predicted, strict=True)],
        )
    oracles = [oracle(o, t) for o, (_, t) in zip(outs, val, strict=True)]
    row("oracle (bound)", [corrected(o, g, b) for o, (g, b) in zip(outs, oracles, strict=True)])
    for pid, (gain, offset) in zip(meta["split"]["val"], oracles, strict=True):
        print(
            f"{pid}: oracle gain {np.round(gain, 3).tolist()} offset {np.round(offset, 1).tolist()}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", nargs="+", default=["hayao", "shinkai"])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for style in args.style:
        run(style)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
