"""Small preview images of each whole-image style, so people can choose a style by looking.

    python -m models.preview [--style paprika ...] [--photo PATH]

Each style folder gets `preview.jpg`: one street photo (no identifiable people; also a README
example) converted exactly as a person would get it (`core.convert`, faces on), then scaled to
PREVIEW_WIDTH px. The web page's style picker, the bots' style lists and `animebot styles`
show these files. The photo comes from ../shared and is never committed; only its stylized
previews are, like the README examples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from core.api import convert
from core.registry import Registry
from models.pairs import shared_dir

PREVIEW_WIDTH = 320
PREVIEW_NAME = "preview.jpg"


def default_photo() -> Path:
    return shared_dir() / "data" / "photos" / "street_railroad_crossing.jpg"


def render(photo_rgb: np.ndarray, style: str) -> np.ndarray:
    out = convert(photo_rgb, style)
    h, w = out.shape[:2]
    size = (PREVIEW_WIDTH, round(h * PREVIEW_WIDTH / w))
    return np.asarray(cv2.resize(out, size, interpolation=cv2.INTER_AREA))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--style", nargs="*", help="styles (default: every installed scene style)")
    ap.add_argument("--photo", type=Path, default=None)
    a = ap.parse_args(argv)
    photo_path = a.photo or default_photo()
    bgr = cv2.imread(str(photo_path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {photo_path} (../shared is needed)")
    photo = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    registry = Registry.default()
    for spec in registry.scene_styles():
        if a.style and spec.name not in a.style:
            continue
        path = spec.folder / PREVIEW_NAME
        image = cv2.cvtColor(render(photo, spec.name), cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(f"{spec.name}: {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
