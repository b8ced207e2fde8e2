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
