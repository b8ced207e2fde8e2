"""The aligned photo/anime pairs in ../shared/data/pairs, and a leak-free train/validation split.

Pairs that show the same scene must not straddle the split, or validation measures memory.
Two pairs are put in one group when they were cut from the same source photo (the manifest's
`src_photo` for the Portrait_Inference pairs) or when their photos look alike (correlation of
32x32 grey thumbnails above 0.6, which catches the same street shot twice). Whole groups are then
drawn for validation with a fixed seed until at least `val_fraction` of the pairs are held out.
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """`../shared` beside the project root, or `$ANIMEBOT_SHARED`."""
    return Path(os.environ.get("ANIMEBOT_SHARED", PROJECT_ROOT.parent / "shared"))


def pairs_dir() -> Path:
    return shared_dir() / "data" / "pairs"


def teacher_of(folder: str) -> str:
    """The network whose outputs a pair folder holds: AnimeGANv2 for `v2_*`, else v3."""
    return "AnimeGANv2" if folder.startswith("v2_") else "AnimeGANv3"


@dataclass(frozen=True)
class Pair:
    style: str
    id: str
    photo: Path
    anime: Path
    source: str


def load_pairs(style: str) -> list[Pair]:
    root = pairs_dir()
    out = []
    with (root / "manifest.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["style"] != style:
                continue
            folder = root / style
            out.append(
                Pair(
                    style=style,
                    id=row["id"],
                    photo=folder / f"{row['id']}_photo.jpg",
                    anime=folder / f"{row['id']}_anime.jpg",
                    source=row["src_photo"],
                )
            )
    if not out:
        raise FileNotFoundError(f"no pairs for style {style!r} under {root}")
    return out


def _thumbnail(path: Path) -> np.ndarray:
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise FileNotFoundError(path)
    t = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    return np.asarray((t - t.mean()) / (t.std() + 1e-6))


def scene_groups(pairs: list[Pair], threshold: float = 0.6) -> list[list[Pair]]:
    parent = list(range(len(pairs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    thumbs = [_thumbnail(p.photo) for p in pairs]
    for i in range(len(pairs)):
        for j in range(i + 1, len(pairs)):
            same_source = (
                "Portrait_Inference" in pairs[i].source and pairs[i].source == pairs[j].source
            )
            if same_source or float(thumbs[i] @ thumbs[j]) / thumbs[i].size > threshold:
                union(i, j)
    groups: dict[int, list[Pair]] = {}
    for i, p in enumerate(pairs):
        groups.setdefault(find(i), []).append(p)
    return sorted(groups.values(), key=lambda g: g[0].id)


def split_pairs(
    pairs: list[Pair], val_fraction: float = 0.15, seed: int = 0, prefer_val: tuple[str, ...] = ()
) -> tuple[list[Pair], list[Pair]]:
    """Group-aware split. Groups holding a source named in `prefer_val` go to validation first
    (used to keep the shared test photos unseen by the face model)."""
    groups = scene_groups(pairs)
    rng = random.Random(seed)
    rng.shuffle(groups)
    groups.sort(key=lambda g: not any(s in p.source for p in g for s in prefer_val))
    need = max(1, int(np.ceil(val_fraction * len(pairs))))
    val: list[Pair] = []
    train: list[Pair] = []
    for g in groups:
        (val if len(val) < need else train).extend(g)
    if not train:
        raise ValueError("validation took every pair; lower val_fraction")
    return sorted(train, key=lambda p: p.id), sorted(val, key=lambda p: p.id)
