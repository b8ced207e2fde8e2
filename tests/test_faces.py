"""Face detection (core.faces) and face2paint blending (core.face2paint).

Detection tests use the shared test photos (skipped without ../shared); blending tests use
synthetic images so they run everywhere.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import face2paint as fp
from core.faces import Face, FaceDetector

EXPECTED_FACES = {
    "multi_face_group6_frontal.jpg": 6,
    "multi_face_three_men_vintage.jpg": 3,
    "face_single_lowlight.jpg": 1,
    "portrait_fullbody_sitting.jpg": 1,
    "landscape_autumn_lake_fuji.jpg": 0,
    "city_tokyo_tower.jpg": 0,
    "street_shopfront.jpg": 0,
    "street_railroad_crossing.jpg": 0,
}
FRONTAL = [name for name, n in EXPECTED_FACES.items() if n]


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def load_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return np.ascontiguousarray(bgr[:, :, ::-1])


def make_face(x: int, y: int, w: int, h: int) -> Face:
    cx, cy = x + w / 2, y + h / 2
    marks = ((cx - w / 5, cy - h / 8), (cx + w / 5, cy - h / 8), (cx, cy), (cx - w / 6, cy + h / 4))
    return Face(x, y, w, h, 0.99, (*marks, (cx + w / 6, cy + h / 4)))


# ---------------------------------------------------------------------------- detection


@pytest.mark.parametrize(("name", "count"), EXPECTED_FACES.items())
def test_face_counts_on_shared_photos(
    photos_dir: Path, detector: FaceDetector, name: str, count: int
) -> None:
    faces = detector.detect(load_rgb(photos_dir / name))
    assert len(faces) == count, [(f.x, f.y, f.w, f.h, round(f.score, 3)) for f in faces]


@pytest.mark.parametrize("name", FRONTAL)
def test_boxes_and_landmarks_are_consistent(
    photos_dir: Path, detector: FaceDetector, name: str
) -> None:
    rgb = load_rgb(photos_dir / name)
    height, width = rgb.shape[:2]
    faces = detector.detect(rgb)
    assert [f.area for f in faces] == sorted((f.area for f in faces), reverse=True)
    for f in faces:
        assert isinstance(f.x, int) and isinstance(f.w, int)
        assert f.x >= 0 and f.y >= 0 and f.x + f.w <= width and f.y + f.h <= height
        assert min(f.w, f.h) >= detector.min_face
        assert detector.score_threshold <= f.score <= 1.0
        assert len(f.landmarks) == 5
        for lx, ly in f.landmarks:
            assert f.x <= lx <= f.x + f.w and f.y <= ly <= f.y + f.h
        (lex, ley), (rex, rey) = f.landmarks[0], f.landmarks[1]
        assert lex < rex  # eyes in image order: left one first
        mouth_y = (f.landmarks[3][1] + f.landmarks[4][1]) / 2
        assert max(ley, rey) < f.landmarks[2][1] < mouth_y  # eyes above nose above mouth


def test_detection_on_upscaled_copy_maps_back(photos_dir: Path, detector: FaceDetector) -> None:
    rgb = load_rgb(photos_dir / "multi_face_group6_frontal.jpg")
    up = cv2.resize(rgb, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    small, big = detector.detect(rgb), detector.detect(up)
    assert len(small) == len(big) == 6
    for f in small:
        cx, cy = f.center
        g = min(big, key=lambda b: (b.center[0] - 2 * cx) ** 2 + (b.center[1] - 2 * cy) ** 2)
        assert abs(g.center[0] - 2 * cx) < 0.1 * f.w and abs(g.center[1] - 2 * cy) < 0.1 * f.h
        assert g.w / f.w == pytest.approx(2.0, rel=0.08)
        assert g.h / f.h == pytest.approx(2.0, rel=0.08)
        for (px, py), (qx, qy) in zip(f.landmarks, g.landmarks, strict=True):
            assert abs(qx - 2 * px) < 0.1 * f.w and abs(qy - 2 * py) < 0.1 * f.h


def test_tiny_faces_skipped_per_min_face(photos_dir: Path, detector: FaceDetector) -> None:
    rgb = load_rgb(photos_dir / "multi_face_group6_frontal.jpg")
    tiny = cv2.resize(rgb, None, fx=0.2, fy=0.2, interpolation=cv2.INTER_AREA)  # faces ~20-28 px
    everything = FaceDetector(min_face=1).detect(tiny)
    assert len(everything) >= 4
    assert max(min(f.w, f.h) for f in everything) < detector.min_face + 2
    assert detector.detect(tiny) == []
    kept = FaceDetector(min_face=24).detect(tiny)
    assert 0 < len(kept) < len(everything)
    assert set(kept) <= set(everything)
    assert all(min(f.w, f.h) >= 24 for f in kept)


def test_max_faces_keeps_the_largest(photos_dir: Path, detector: FaceDetector) -> None:
    rgb = load_rgb(photos_dir / "multi_face_group6_frontal.jpg")
    two = FaceDetector(max_faces=2).detect(rgb)
    assert two == detector.detect(rgb)[:2]


def test_threads_setting_respected() -> None:
    default = FaceDetector().session_options
    assert (default.intra_op_num_threads, default.inter_op_num_threads) == (1, 1)
    two = FaceDetector(threads=2).session_options
    assert (two.intra_op_num_threads, two.inter_op_num_threads) == (2, 1)
    with pytest.raises(ValueError):
        FaceDetector(threads=0)


def test_detect_is_thread_safe(photos_dir: Path, detector: FaceDetector) -> None:
    images = [load_rgb(photos_dir / n) for n in FRONTAL]
    expected = [detector.detect(im) for im in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(detector.detect, images * 3))
    assert got == expected * 3


def test_input_validation(detector: FaceDetector) -> None:
    assert detector.detect(np.zeros((64, 48), np.uint8)) == []  # grey is accepted
    assert detector.detect(np.full((5, 7, 3), 128, np.uint8)) == []
    with pytest.raises(ValueError):
        detector.detect(np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(ValueError):
        detector.detect(np.zeros((64, 64, 3), np.float32))


# ---------------------------------------------------------------------------- face2paint


def synthetic_pair(height: int = 360, width: int = 520) -> tuple[np.ndarray, np.ndarray]:
    """A textured 'photo' and a differently graded 'scene stylization' of it."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 200 / width, yy * 200 / height, (xx + yy) * 100 / (width + height)], 2)
    photo = np.clip(base + rng.normal(0, 12, base.shape) + 30, 0, 255).astype(np.uint8)
    scene = np.clip(photo.astype(np.int16) * [1, 1, 0] + [0, 10, 90], 0, 255).astype(np.uint8)
    return photo, scene


def invert(crop: np.ndarray) -> np.ndarray:
    return 255 - crop


def expected_face_output(photo: np.ndarray, face: Face, margin: float, size: int) -> np.ndarray:
    """What the face model's output looks like once resized back onto the square."""
    box = fp.crop_box(face, margin=margin)
    crop = fp.square_crop(photo, box)
    up = cv2.INTER_CUBIC if box.side < size else cv2.INTER_AREA
    styled = invert(cv2.resize(crop, (size, size), interpolation=up))
    down = cv2.INTER_AREA if box.side < size else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(styled, (box.side, box.side), interpolation=down))


def square_mask(shape: tuple[int, ...], faces: list[Face], margin: float) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    for f in faces:
        b = fp.crop_box(f, margin=margin)
        mask[max(0, b.y0) : max(0, b.y0 + b.side), max(0, b.x0) : max(0, b.x0 + b.side)] = True
    return mask


def test_output_shape_dtype_and_far_pixels_untouched() -> None:
    photo, scene = synthetic_pair()
    face = make_face(220, 110, 80, 100)
    scene_before = scene.copy()
    out = fp.face2paint(photo, scene, [face], invert)
    assert out.shape == scene.shape and out.dtype == np.uint8
    assert np.array_equal(scene, scene_before)  # inputs are not modified
    outside = ~square_mask(scene.shape, [face], margin=2.0)
    assert np.array_equal(out[outside], scene[outside])
    assert not np.array_equal(out, scene)


def test_alpha_zero_region_equals_scene_exactly() -> None:
    photo, scene = synthetic_pair()
    face = make_face(220, 110, 80, 100)
    out = fp.face2paint(photo, scene, [face], invert)
    box = fp.crop_box(face, margin=2.0)
    alpha, _ = fp.blend_weights(box, feather=0.45)
    sq_out, sq_scene = fp.square_crop(out, box), fp.square_crop(scene, box)
    zero = alpha == 0
    assert zero.mean() > 0.2  # the square's corners and rim
    assert np.array_equal(sq_out[zero], sq_scene[zero])


@pytest.mark.parametrize("face_size", [512, 128])  # crop upscaled / downscaled for the model
def test_face_centre_is_the_face_stylization(face_size: int) -> None:
    photo, scene = synthetic_pair()
    face = make_face(220, 110, 80, 100)
    out = fp.face2paint(photo, scene, [face], invert, face_size=face_size, color_match=0.0)
    box = fp.crop_box(face, margin=2.0)
    want = expected_face_output(photo, face, 2.0, face_size)
    got = fp.square_crop(out, box)
    c, r = box.side // 2, face.w // 6  # well inside the colour-keeping core
    diff = np.abs(
        got[c - r : c + r, c - r : c + r].astype(int) - want[c - r : c + r, c - r : c + r]
    )
    assert diff.max() <= 2


def test_color_match_pulls_face_colour_to_scene() -> None:
    photo, scene = synthetic_pair()
    face = make_face(200, 100, 120, 140)

    def warm(crop: np.ndarray) -> np.ndarray:
        return np.clip(crop.astype(np.int16) + np.array([60, 0, -40]), 0, 255).astype(np.uint8)

    cx, cy = (int(v) for v in face.center)
    patch = np.s_[cy - 20 : cy + 20, cx - 20 : cx + 20]

    def offset(color_match: float) -> float:
        out = fp.face2paint(photo, scene, [face], warm, color_match=color_match)
        return float(np.abs(out[patch].mean((0, 1)) - scene[patch].mean((0, 1))).max())

    full, half, none = offset(1.0), offset(0.5), offset(0.0)
    assert full < 6 < none
    assert full < half < none
    # in the ring (alpha > 0, outside the face) colours always follow the scene
    out = fp.face2paint(photo, scene, [face], warm, color_match=0.0)
    box = fp.crop_box(face, margin=2.0)
    alpha, core = fp.blend_weights(box, feather=0.45)
    ring = (alpha > 0.3) & (core == 0)
    ring_out = fp.square_crop(out, box)[ring].mean(0)
    ring_scene = fp.square_crop(scene, box)[ring].mean(0)
    assert np.abs(ring_out - ring_scene).max() < 6


def test_blend_weight_is_smooth_and_inside_the_crop() -> None:
    for face in (make_face(100, 100, 80, 100), make_face(50, 60, 40, 64), make_face(0, 0, 30, 30)):
        for feather in (0.2, 0.45, 0.8):
            box = fp.crop_box(face, margin=2.0)
            alpha, core = fp.blend_weights(box, feather=feather)
            assert alpha.shape == (box.side, box.side) and alpha.dtype == np.float32
            assert alpha.min() >= 0.0 and alpha.max() <= 1.0
            rim = max(1, int(0.045 * box.side))  # alpha is 0 beyond 90% of the half side
            for edge in (alpha[:rim], alpha[-rim:], alpha[:, :rim], alpha[:, -rim:]):
                assert edge.max() == 0.0  # the crop's border never shows
            c = box.side // 2
            assert alpha[c, c] == 1.0 and core[c, c] == 1.0
            ring_px = 0.9 * feather * box.side / 2 * min(face.w, face.h) / max(face.w, face.h)
            bound = 1.5 / ring_px * 1.15  # smoothstep's steepest slope, plus discretisation
            steepest = max(
                np.abs(np.diff(alpha, axis=0)).max(), np.abs(np.diff(alpha, axis=1)).max()
            )
            assert steepest <= bound


def white(crop: np.ndarray) -> np.ndarray:
    return np.full_like(crop, 255)


def test_output_has_no_step_edges_for_flat_inputs() -> None:
    """White face model over a black scene: the result must ramp, never jump."""
    photo = np.full((300, 300, 3), 128, np.uint8)
    scene = np.zeros_like(photo)
    face = make_face(100, 90, 100, 120)
    out = fp.face2paint(photo, scene, [face], white, color_match=0.0)
    assert out[150, 150].min() == 255
    grey = out.astype(int).mean(2)
    steepest = max(np.abs(np.diff(grey, axis=0)).max(), np.abs(np.diff(grey, axis=1)).max())
    ramp_px = (fp._CORE_OUT - fp._CORE_IN) * min(face.w, face.h) / 2  # face colour -> scene
    assert steepest <= 255 * 1.5 / ramp_px * 1.25
    # a pure colour difference is absorbed entirely when colours are fully matched
    matched = fp.face2paint(photo, scene, [face], white, color_match=1.0)
    assert np.abs(matched.astype(int)).max() <= 2


def test_no_faces_returns_stylized_unchanged() -> None:
    photo, scene = synthetic_pair()
    calls: list[np.ndarray] = []
    out = fp.face2paint(photo, scene, [], lambda c: calls.append(c) or c)
    assert out is scene and not calls


def test_faces_at_the_border() -> None:
    photo, scene = synthetic_pair(200, 260)
    faces = [make_face(0, 0, 60, 70), make_face(200, 140, 60, 60)]  # top-left and bottom-right
    seen: list[tuple[int, ...]] = []

    def model(crop: np.ndarray) -> np.ndarray:
        seen.append(crop.shape)
        return invert(crop)

    out = fp.face2paint(photo, scene, faces, model, face_size=256, color_match=0.0)
    assert seen == [(256, 256, 3)] * 2
    assert out.shape == scene.shape
    for face in faces:
        box = fp.crop_box(face, margin=2.0)
        want = expected_face_output(photo, face, 2.0, 256)
        got = fp.square_crop(out, box)
        c, r = box.side // 2, face.w // 6
        diff = np.abs(
            got[c - r : c + r, c - r : c + r].astype(int) - want[c - r : c + r, c - r : c + r]
        )
        assert diff.max() <= 2
    outside = ~square_mask(scene.shape, faces, margin=2.0)
    assert np.array_equal(out[outside], scene[outside])


def test_square_crop_reflects_beyond_the_image() -> None:
    img = np.arange(30 * 20 * 3, dtype=np.uint32).reshape(30, 20, 3).astype(np.uint8)
    face = make_face(2, 3, 16, 24)
    box = fp.crop_box(face, margin=3.0)  # 72 px: wider than the image on every side
    crop = fp.square_crop(img, box)
    assert crop.shape == (box.side, box.side, 3)
    assert np.array_equal(crop[-box.y0 : -box.y0 + 30, -box.x0 : -box.x0 + 20], img)
    out = fp.face2paint(img, img.copy(), [face], invert, face_size=64)
    assert out.shape == img.shape


def test_overlapping_faces_smaller_on_top() -> None:
    photo, scene = synthetic_pair()
    big, small = make_face(150, 80, 140, 160), make_face(260, 150, 70, 80)
    crops = fp.face_crops(photo, [small, big], face_size=256)
    assert [b.face for b, _ in crops] == [big, small]  # largest first
    out = fp.face2paint(photo, scene, [small, big], invert, face_size=256, color_match=0.0)
    box = fp.crop_box(small, margin=2.0)
    want = expected_face_output(photo, small, 2.0, 256)
    got = fp.square_crop(out, box)
    c, r = box.side // 2, small.w // 6
    diff = np.abs(
        got[c - r : c + r, c - r : c + r].astype(int) - want[c - r : c + r, c - r : c + r]
    )
    assert diff.max() <= 2
    outside = ~square_mask(scene.shape, [big, small], margin=2.0)
    assert np.array_equal(out[outside], scene[outside])


def test_tiny_faces_skipped_by_face2paint() -> None:
    photo, scene = synthetic_pair()
    calls: list[np.ndarray] = []
    out = fp.face2paint(photo, scene, [make_face(10, 10, 5, 6)], lambda c: calls.append(c) or c)
    assert out is scene and not calls


def test_face_model_output_checked_and_resized() -> None:
    photo, scene = synthetic_pair()
    face = make_face(220, 110, 80, 100)
    out = fp.face2paint(photo, scene, [face], lambda c: cv2.resize(c, (200, 200)))
    assert out.shape == scene.shape
    with pytest.raises(ValueError):
        fp.face2paint(photo, scene, [face], lambda c: c.astype(np.float32))
    with pytest.raises(ValueError):
        fp.face2paint(photo, scene[:-1], [face], invert)


def test_smooth_skin_changes_only_the_model_input() -> None:
    photo, _ = synthetic_pair()
    face = make_face(220, 110, 80, 100)
    (_, plain), (_, smooth) = (
        fp.face_crops(photo, [face], smooth_skin=False)[0],
        fp.face_crops(photo, [face], smooth_skin=True)[0],
    )
    assert plain.shape == smooth.shape == (512, 512, 3)
    assert plain.std() > smooth.std() - 0.5  # noise reduced, not amplified
    assert not np.array_equal(plain, smooth)


def test_face2paint_on_a_real_photo(photos_dir: Path, detector: FaceDetector) -> None:
    rgb = load_rgb(photos_dir / "multi_face_group6_frontal.jpg")
    faces = detector.detect(rgb)
    scene = np.asarray(cv2.applyColorMap(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLORMAP_OCEAN))
    out = fp.face2paint(rgb, scene, faces, lambda c: cv2.stylization(c, sigma_s=30, sigma_r=0.3))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    outside = ~square_mask(rgb.shape, faces, margin=2.0)
    assert outside.mean() > 0.3
    assert np.array_equal(out[outside], scene[outside])
    for f in faces:
        cx, cy = (int(v) for v in f.center)
        assert not np.array_equal(out[cy, cx], scene[cy, cx])


def test_faces_stylized_side_by_side_paste_exactly_as_one_by_one() -> None:
    photo, scene = synthetic_pair()
    faces = [make_face(150, 80, 140, 160), make_face(260, 150, 70, 80), make_face(20, 200, 60, 70)]
    one_by_one = fp.face2paint(photo, scene, faces, invert, face_size=256)
    with ThreadPoolExecutor(3) as pool:
        side_by_side = fp.face2paint(photo, scene, faces, invert, face_size=256, map_fn=pool.map)
    assert np.array_equal(one_by_one, side_by_side)  # order of pasting kept (small on top)


def test_a_dark_face_is_lifted_into_the_face_models_range_without_clipping() -> None:
    rng = np.random.default_rng(3)
    dark = rng.integers(20, 110, size=(64, 64, 3)).astype(np.uint8)
    lifted = fp.lift_exposure(dark, 130.0)
    centre = cv2.cvtColor(lifted[16:48, 16:48], cv2.COLOR_RGB2GRAY).mean()
    assert centre == pytest.approx(130.0, abs=6.0)
    assert lifted.max() < 255  # a gamma curve: nothing saturates
    order = np.argsort(dark[..., 1].ravel(), kind="stable")
    assert np.all(np.diff(lifted[..., 1].ravel()[order].astype(int)) >= 0)  # order kept
    bright = rng.integers(150, 230, size=(64, 64, 3)).astype(np.uint8)
    assert fp.lift_exposure(bright, 130.0) is bright
    assert fp.lift_exposure(dark, 0.0) is dark


def test_face_models_carry_their_face2paint_settings_into_the_engine(
    monkeypatch: pytest.MonkeyPatch, photos_dir: Path, tmp_path: Path
) -> None:
    import json
    import shutil

    from core.engine import Engine, EngineConfig
    from core.registry import Registry
    from models import WEIGHTS_DIR

    registry = Registry([WEIGHTS_DIR])
    anime, kpop = registry.get("face_anime"), registry.get("face_kpop")
    assert (anime.color_match, anime.exposure_floor) == (1.0, 130.0)
    assert (kpop.color_match, kpop.exposure_floor) == (0.5, 0.0)  # the defaults
    for style in ("hayao", "shinkai", "paprika", "hayao_v2", "shinkai_v2"):
        assert registry.face_model_for(registry.get(style)) == anime  # faces drawn everywhere

    # A models folder whose hayao still pairs with face_kpop: the defaults reach the engine.
    for name in ("hayao", "face_kpop", "paprika", "face_anime"):
        shutil.copytree(WEIGHTS_DIR / name, tmp_path / name)
    meta_path = tmp_path / "hayao" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["face_style"] = "face_kpop"
    meta_path.write_text(json.dumps(meta))

    seen: dict[str, object] = {}
    original = fp.face2paint

    def spy(*args: object, **kwargs: object) -> object:
        seen.update(kwargs)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fp, "face2paint", spy)
    engine = Engine(Registry([tmp_path]), EngineConfig(workers=1))
    group = (photos_dir / "multi_face_three_men_vintage.jpg").read_bytes()
    engine.convert_sync(group, style="paprika")
    assert seen["color_match"] == 1.0
    engine.convert_sync(group, style="hayao")
    assert seen["color_match"] == 0.5
    assert "~c1e130" in engine.model_version("paprika", True)  # settings in the cache key
    assert "~" not in engine.model_version("hayao", True)
