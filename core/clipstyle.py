"""Stylize the frames of one clip so they look like one piece, not a slideshow of photos.

Two things would flicker if each frame were a photo of its own:
- the colour grade: students with an overview branch grade by a 64x64 thumbnail of the whole
  image (the ONNX input `thumb`); a frame's own thumbnail shifts as things move, so every
  frame here gets one thumbnail, the clip's (`grade_from`), fed to that same input;
- faces: a detector run on every frame finds a face in one frame and misses it in the next,
  and its box jitters, so face2paint would pop in and out. `FaceTracks` detects every
  `every` frames, matches detections to tracks by overlap, smooths boxes exponentially, and
  keeps a track through `keep` missed detections.

Runs on a worker thread, one frame after another (the state carries across frames).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from core.faces import Face
from core.session import RGB, thumbnail
from core.tiling import CONTEXT, OVERLAP, stylize_tiled, tile_length

if TYPE_CHECKING:
    from core.engine import Engine


@dataclass
class _Track:
    box: np.ndarray  # x, y, w, h (float, smoothed)
    landmarks: np.ndarray  # 5 x 2, relative to the box's top-left corner
    score: float
    missed: int = 0

    def face(self) -> Face:
        x, y, w, h = (float(v) for v in self.box)
        points = tuple((float(px + x), float(py + y)) for px, py in self.landmarks)
        return Face(round(x), round(y), round(w), round(h), self.score, points)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


class FaceTracks:
    """Face boxes for every frame from a detection every `every` frames."""

    def __init__(self, detect: Any, *, every: int = 5, smooth: float = 0.5, keep: int = 1) -> None:
        self._detect = detect
        self.every = max(1, every)
        self.smooth = smooth  # weight of the new detection in the smoothed box
        self.keep = keep  # missed detections a track survives
        self._tracks: list[_Track] = []
        self._frame = 0
        self.detections = 0

    def faces(self, rgb: RGB) -> list[Face]:
        if self._frame % self.every == 0:
            self._update(self._detect(rgb))
            self.detections += 1
        self._frame += 1
        return [t.face() for t in self._tracks]

    def _update(self, found: list[Face]) -> None:
        boxes = [np.array([f.x, f.y, f.w, f.h], np.float64) for f in found]
        taken: set[int] = set()
        for track in self._tracks:
            best, best_iou = -1, 0.3
            for i, box in enumerate(boxes):
                overlap = _iou(track.box, box)
                if i not in taken and overlap > best_iou:
                    best, best_iou = i, overlap
            if best < 0:
                track.missed += 1
                continue
            taken.add(best)
            face = found[best]
            track.box = (1 - self.smooth) * track.box + self.smooth * boxes[best]
            track.landmarks = _relative(face)
            track.score, track.missed = face.score, 0
        self._tracks = [t for t in self._tracks if t.missed <= self.keep]
        for i, face in enumerate(found):
            if i not in taken:
                self._tracks.append(_Track(boxes[i], _relative(face), face.score))


def _relative(face: Face) -> np.ndarray:
    return np.array([(px - face.x, py - face.y) for px, py in face.landmarks], np.float64)


class ClipStylizer:
    """Every frame of one clip through the engine with one colour grade and tracked faces.
    Call it from a worker thread, frames in order."""

    def __init__(
        self,
        engine: Engine,
        style: str | None,
        *,
        faces: bool = True,
        face_every: int = 5,
    ) -> None:
        self._engine = engine
        self.spec = engine.resolve(style)
        self._face_spec = engine.registry.face_model_for(self.spec) if faces else None
        self._thumb: Any = None
        self._tracks: FaceTracks | None = None
        if self._face_spec is not None:
            detector = engine.detector()
            self._tracks = FaceTracks(detector.detect, every=face_every)
        self.faces_seen = 0  # the most faces in one frame

    def grade_from(self, rgb: RGB) -> None:
        """Take the clip's colour grade from this frame (or a blend of frames); the first
        frame stylized sets it when nobody did."""
        self._thumb = thumbnail(rgb)

    def __call__(self, rgb: RGB) -> RGB:
        return self.batch([rgb])[0]

    def batch(self, frames: list[RGB], map_fn: Callable[..., Iterable[Any]] = map) -> list[RGB]:
        """Frames in order: faces are tracked one frame after another (the tracks carry
        across frames), then the frames are stylized through `map_fn` (side by side when it
        is an executor's map: frames are independent once the grade and boxes are fixed).

        Frames too large for two to be under inference at once (the engine's pixel budget:
        1280x720 on 2 workers) would run one at a time, one core idle: side by side, each is
        stylized in strips instead (`strips`), one strip after another."""
        if not frames:
            return []
        if self._thumb is None:
            self.grade_from(frames[0])
        boxes = [self._tracks.faces(rgb) if self._tracks is not None else [] for rgb in frames]
        for found in boxes:
            self.faces_seen = max(self.faces_seen, len(found))
        # one frame at a time (`map`: no slot to borrow), a whole frame fits the budget
        render = partial(self._render, split=map_fn is not map)
        return list(map_fn(render, list(zip(frames, boxes, strict=True))))

    def strips(self, rgb: RGB) -> tuple[int, int] | None:
        """None when two whole frames fit the engine's inference budget; otherwise the tile
        (height, width) of the fewest strips across the long side of which two, context
        included, hold no more pixels than one whole frame: so frames side by side need no
        more memory than one frame at a time did (2 x 0.39 MP at 1280x720, 3 strips)."""
        h, w = rgb.shape[:2]
        budget = self._engine.config.infer_budget
        if 2 * h * w <= budget:
            return None
        m = self.spec.multiple
        for n in range(2, 9):
            tile = (
                (h, tile_length(w, n, OVERLAP, m)) if w >= h else (tile_length(h, n, OVERLAP, m), w)
            )
            seen = min(h, tile[0] + 2 * CONTEXT) * min(w, tile[1] + 2 * CONTEXT)
            if 2 * seen <= min(h * w, budget):
                return tile
        return None

    def _render(self, job: tuple[RGB, list[Face]], split: bool = False) -> RGB:
        rgb, found = job
        tile = self.strips(rgb) if split else None
        if tile is None:
            styled = self._engine.stylize(self.spec, rgb, thumb=self._thumb)
        else:  # seams cross-faded, at the same place in every frame
            run = partial(self._engine.stylize, self.spec, thumb=self._thumb)
            styled = stylize_tiled(run, rgb, tile=tile)
        if not found or self._face_spec is None:
            return styled
        from core.face2paint import face2paint

        face_session = self._engine.session(self._face_spec)
        return face2paint(
            rgb,
            styled,
            found,
            face_session.run,
            face_size=self._engine.config.face_size,
            in_place=True,
        )
