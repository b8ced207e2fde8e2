"""Render the README's example strips: photo | whole-image style | face2paint (when faces).

    python docs/examples.py            # writes docs/images/example_*.jpg from ../shared photos

The strips are small JPEG previews of our own outputs next to a thumbnail of the input.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import cv2
import numpy as np

from core.engine import Engine, EngineConfig
from core.imageio import decode
from models.pairs import shared_dir

PHOTOS = [
    ("multi_face_group6_frontal.jpg", "hayao"),
    ("face_single_lowlight.jpg", "hayao"),
    ("multi_face_three_men_vintage.jpg", "shinkai"),
    ("multi_face_three_men_vintage.jpg", "paprika"),
    ("street_railroad_crossing.jpg", "hayao"),
    ("landscape_autumn_lake_fuji.jpg", "shinkai"),
]
HEIGHT = 360
CROP_WIDTH, CROP_HEIGHT = 960, 260  # 100% crops: what a strip at HEIGHT px hides


def tile(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (round(w * HEIGHT / h), HEIGHT), interpolation=cv2.INTER_AREA)


def face_crop(photo: np.ndarray, plain: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """photo / style / face2paint at 100%, stacked: a window over the faces (where face2paint
    changed the output), so the strokes show as a person sees them when zooming in."""
    height, width = plain.shape[:2]
    if photo.shape[:2] != plain.shape[:2]:
        photo = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
    changed = np.abs(drawn.astype(np.int16) - plain.astype(np.int16)).max(axis=2) > 12
    rows, cols = np.nonzero(changed)
    cy = int(np.median(rows)) if rows.size else height // 2
    cx = int((cols.min() + cols.max()) // 2) if cols.size else width // 2
    w, h = min(CROP_WIDTH, width), min(CROP_HEIGHT, height)
    x0 = int(np.clip(cx - w // 2, 0, width - w))
    y0 = int(np.clip(cy - h // 2, 0, height - h))
    gap = np.full((4, w, 3), 255, np.uint8)
    window = (slice(y0, y0 + h), slice(x0, x0 + w))
    return np.concatenate([photo[window], gap, plain[window], gap, drawn[window]], axis=0)


def main() -> None:
    engine = Engine(config=EngineConfig(workers=1))
    out_dir = HERE / "images"
    out_dir.mkdir(exist_ok=True)
    seen: set[str] = set()
    for name, style in PHOTOS:
        stem = Path(name).stem
        data = (shared_dir() / "data" / "photos" / name).read_bytes()
        photo = decode(data)
        plain = decode(engine.convert_sync(data, style=style, faces=False).image.data).rgb
        faces = engine.convert_sync(data, style=style, faces=True)
        panels = [photo.rgb, plain] + ([decode(faces.image.data).rgb] if faces.faces_found else [])
        gap = np.full((HEIGHT, 6, 3), 255, np.uint8)
        pieces: list[np.ndarray] = []
        for panel in panels:
            pieces += [tile(panel), gap]
        strip = np.concatenate(pieces[:-1], axis=1)
        # A photo shown in a second style gets the style in its name.
        target = out_dir / (
            f"example_{stem}_{style}.jpg" if stem in seen else f"example_{stem}.jpg"
        )
        seen.add(stem)
        cv2.imwrite(
            str(target), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
        )
        print(f"{target.relative_to(ROOT)}: {style}, {faces.faces_found} faces")
        if faces.faces_found:
            crop = face_crop(photo.rgb, plain, panels[2])
            crop_target = target.with_name(target.stem + "_100.jpg")
            cv2.imwrite(
                str(crop_target),
                cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90],
            )
            print(f"{crop_target.relative_to(ROOT)}: 100% crop")


if __name__ == "__main__":
    main()
