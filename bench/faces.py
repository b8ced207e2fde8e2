"""The face model where face2paint uses it: on face crops, against the teacher.

    python bench/faces.py [--style face_kpop]

For each held-out portrait pair, every detected face is cut out as face2paint cuts it (a square
twice the face box, resized to 512 px) from the photo and from the teacher's image; the served
ONNX face model is scored against the teacher's crop, next to the identity baseline (the photo
crop itself).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import cv2
import numpy as np

from core.face2paint import crop_box, square_crop
from core.faces import FaceDetector
from models import WEIGHTS_DIR
from models.export import run_onnx, session
from models.metrics import psnr, ssim
from models.pairs import load_pairs
from models.train import STYLE_SOURCES, read_rgb

SIZE = 512


def resized(img: np.ndarray) -> np.ndarray:
    interp = cv2.INTER_AREA if img.shape[0] > SIZE else cv2.INTER_CUBIC
    return cv2.resize(img, (SIZE, SIZE), interpolation=interp)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--style", default="face_kpop")
    style = ap.parse_args().style
    meta = json.loads((WEIGHTS_DIR / style / "model.json").read_text())
    model = session(WEIGHTS_DIR / style / meta["files"][meta["serve"]], threads=2)
    detector = FaceDetector()
    pairs = {p.id: p for p in load_pairs(STYLE_SOURCES[meta["trained_from"]][0])}
    for split in ("val", "train"):
        scores = []
        for pid in meta["split"][split]:
            photo, teacher = read_rgb(pairs[pid].photo), read_rgb(pairs[pid].anime)
            for face in detector.detect(photo):
                box = crop_box(face, margin=2.0)
                a, t = resized(square_crop(photo, box)), resized(square_crop(teacher, box))
                out = run_onnx(model, a, int(meta["multiple"]))
                scores.append((psnr(out, t), ssim(out, t), psnr(a, t), ssim(a, t)))
        m = np.mean(scores, axis=0)
        print(
            f"{style} {split}: {len(scores)} faces  model {m[0]:.2f} dB SSIM {m[1]:.3f}  "
            f"identity {m[2]:.2f} dB SSIM {m[3]:.3f}  gain {m[0] - m[2]:+.2f} dB {m[1] - m[3]:+.3f}"
        )


if __name__ == "__main__":
    main()
