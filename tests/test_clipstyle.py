"""core.clipstyle: one colour grade for every frame of a clip, and face boxes that neither
jitter nor blink when the detector does."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from core.clipstyle import ClipStylizer, FaceTracks
from core.engine import Engine, EngineConfig
from core.faces import Face
from core.session import thumbnail


def face(x: int, y: int, side: int = 60) -> Face:
    points = tuple((float(x + side * a), float(y + side * b)) for a, b in [(0.3, 0.4)] * 5)
    return Face(x, y, side, side, 0.99, points)


def test_tracks_hold_a_face_through_a_missed_detection_and_smooth_its_box() -> None:
    answers = [[face(100, 50)], [], [face(110, 50)], [], [], []]
    calls: list[int] = []

    def detect(rgb: Any) -> list[Face]:
        calls.append(1)
        return answers[len(calls) - 1]

    tracks = FaceTracks(detect, every=2, smooth=0.5, keep=1)
    frame = np.zeros((8, 8, 3), np.uint8)
    boxes = [tracks.faces(frame) for _ in range(12)]
    assert len(calls) == 6  # every other frame
    assert [len(b) for b in boxes] == [1] * 8 + [0] * 4  # one miss is bridged, two are not
    assert boxes[4][0].x == 105  # halfway to the new detection: no jump
    assert boxes[4][0].landmarks[0][0] == pytest.approx(105 + 18)  # landmarks follow the box


def test_a_new_face_far_from_a_track_starts_its_own() -> None:
    answers = [[face(10, 10)], [face(10, 10), face(300, 10)]]
    tracks = FaceTracks(lambda rgb: answers.pop(0), every=1)
    frame = np.zeros((8, 8, 3), np.uint8)
    tracks.faces(frame)
    assert sorted(f.x for f in tracks.faces(frame)) == [10, 300]


class RecordingEngine(Engine):
    """The real engine, noting the grade (thumb) each frame was stylized with."""

    thumbs: list[np.ndarray]

    def stylize(self, spec: Any, rgb: Any, *, thumb: Any = None) -> Any:
        self.thumbs.append(np.array(thumb))
        return super().stylize(spec, rgb, thumb=thumb)


def test_every_frame_of_a_clip_gets_the_first_frames_grade() -> None:
    engine = RecordingEngine(config=EngineConfig(workers=1))
    engine.thumbs = []
    spec = engine.resolve("hayao")
    assert engine.session(spec).wants_thumb  # the style grades by an overview thumbnail
    rng = np.random.default_rng(0)
    first = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
    darker = (first // 2).astype(np.uint8)
    stylize = ClipStylizer(engine, "hayao", faces=False)
    stylize.batch([first, darker])
    stylize.batch([darker])
    assert len(engine.thumbs) == 3
    for thumb in engine.thumbs:
        np.testing.assert_array_equal(thumb, thumbnail(first))


class ShapeEngine(Engine):
    """The real engine, noting the size of every image it stylizes."""

    shapes: list[tuple[int, int]]

    def stylize(self, spec: Any, rgb: Any, *, thumb: Any = None) -> Any:
        self.shapes.append(rgb.shape[:2])
        return super().stylize(spec, rgb, thumb=thumb)


def test_frames_too_large_to_run_two_at_once_run_in_strips() -> None:
    """Two whole 96x640 frames exceed a 100,000 pixel budget: each frame is stylized in the
    fewest strips of which two, context included, hold no more pixels than one frame (4
    strips of at most 96x280 here), and the seams do not show (the same pixels as whole
    frames, within a level). When two whole frames fit, or frames run one at a time, they
    stay whole."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)
    frames = [np.ascontiguousarray(np.tile(base, (1, 5, 1))[:, i : i + 640]) for i in (0, 8)]
    tight = ShapeEngine(config=EngineConfig(workers=2, infer_max_pixels=100_000))
    tight.shapes = []
    roomy = ShapeEngine(config=EngineConfig(workers=2, infer_max_pixels=200_000))
    roomy.shapes = []
    with ThreadPoolExecutor(2) as pool:
        strips = ClipStylizer(tight, "hayao", faces=False).batch(frames, pool.map)
        whole = ClipStylizer(roomy, "hayao", faces=False).batch(frames, pool.map)
    assert len(tight.shapes) == 8  # four strips a frame
    assert all(h == 96 and 2 * h * w <= 96 * 640 for h, w in tight.shapes)
    assert roomy.shapes == [(96, 640)] * 2
    tight.shapes = []  # one frame at a time (no slot to borrow): a whole frame fits
    ClipStylizer(tight, "hayao", faces=False).batch(frames, map)
    assert tight.shapes == [(96, 640)] * 2
    for a, b in zip(strips, whole, strict=True):
        assert a.shape == b.shape == (96, 640, 3)
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 1.0
