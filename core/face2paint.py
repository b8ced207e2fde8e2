"""face2paint: stylize each face at the face model's resolution and blend it into the scene.

A whole-image (scene) model renders small faces poorly, so each face is cropped from the
original photo as a square around the face, resized to the face model's size, stylized,
resized back and blended into the scene output.

Two things keep the patch invisible:
- the blend weight is an analytic elliptical smoothstep around the face: exactly 1 on the face,
  exactly 0 well inside the crop (so no crop edge is ever blended), with a bounded slope;
- the face output's low-frequency colour is pulled to the scene output's: the offset
  lowpass(scene - face) is estimated separately over background and face (masked low-pass,
  so neither leaks into the other) and added with weight 1 in the ring and background and
  `color_match` on the face. Without it, where the two models grade colour differently, the
  crop's background shows as a tinted glow around the head even with a soft mask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from core.faces import Face

__all__ = [
    "CropBox",
    "blend_weights",
    "crop_box",
    "face2paint",
    "face_crops",
    "lift_exposure",
    "paste_face",
    "square_crop",
]

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

# Where the blend weight reaches 0, as a fraction of the crop's half side: the outer 10% of
# the crop (>= 25 px at 512) never contributes, so neither the (possibly reflected) crop edge
# nor a generator's padding artifacts along its border can show.
_OUTER = 0.9
# Face "core" for colour keeping, in units of the detector box's inscribed ellipse:
# full face-model colour inside 0.6, scene colour (low frequencies) from 1.0 outwards.
_CORE_IN, _CORE_OUT = 0.6, 1.0
# Low-pass scale of the colour correction, as a fraction of the crop side.
_LOWPASS = 0.08
# Faces smaller than this are skipped outright (the detector's min_face is the real policy).
_MIN_SIDE = 8


@dataclass(frozen=True)
class CropBox:
    """A square in image coordinates (may extend past the borders) and the face inside it."""

    x0: int
    y0: int
    side: int
    face: Face


def crop_box(face: Face, *, margin: float) -> CropBox:
    """Square of side margin x the face box's longer side, centred on the face box."""
    side = max(_MIN_SIDE * 2, round(margin * max(face.w, face.h)))
    cx, cy = face.center
    return CropBox(round(cx - side / 2), round(cy - side / 2), side, face)


def _inside(box: CropBox, height: int, width: int) -> tuple[slice, slice, slice, slice]:
    """Slices (image rows, image cols, square rows, square cols) of the part inside the image."""
    ix0, iy0 = max(0, box.x0), max(0, box.y0)
    ix1, iy1 = min(width, box.x0 + box.side), min(height, box.y0 + box.side)
    return (
        slice(iy0, iy1),
        slice(ix0, ix1),
        slice(iy0 - box.y0, iy1 - box.y0),
        slice(ix0 - box.x0, ix1 - box.x0),
    )


def square_crop(img: U8, box: CropBox) -> U8:
    """The square of `box`, reflection-padded where it leaves the image."""
    height, width = img.shape[:2]
    rows, cols, srows, scols = _inside(box, height, width)
    region = img[rows, cols]
    top, left = srows.start, scols.start
    bottom, right = box.side - srows.stop, box.side - scols.stop
    if not (top or left or bottom or right):
        return np.ascontiguousarray(region)
    mode = cv2.BORDER_REFLECT_101 if min(region.shape[:2]) > 1 else cv2.BORDER_REPLICATE
    return np.asarray(cv2.copyMakeBorder(region, top, bottom, left, right, mode), dtype=np.uint8)


def _resize(img: U8, size: int) -> U8:
    """Square resize: INTER_AREA to shrink (no aliasing), INTER_CUBIC to enlarge."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(img, (size, size), interpolation=interp), dtype=np.uint8)


def _smoothstep(t: npt.NDArray[np.floating[Any]]) -> F32:
    t = np.clip(t, 0.0, 1.0).astype(np.float32, copy=False)
    return np.asarray(t * t * (3.0 - 2.0 * t), dtype=np.float32)


def _weights(box: CropBox, rows: slice, cols: slice, feather: float) -> tuple[F32, F32]:
    """(alpha, core) at image pixels rows x cols; see `blend_weights`."""
    face = box.face
    cx, cy = face.center
    u = (np.arange(cols.start, cols.stop, dtype=np.float32) + 0.5 - cx) / (face.w / 2.0)
    v = (np.arange(rows.start, rows.stop, dtype=np.float32) + 0.5 - cy) / (face.h / 2.0)
    d = np.sqrt(u[None, :] ** 2 + v[:, None] ** 2, dtype=np.float32)
    d_out = _OUTER * box.side / max(face.w, face.h)
    d_in = d_out * (1.0 - float(np.clip(feather, 0.05, 1.0)))
    alpha = _smoothstep((d_out - d) / (d_out - d_in))
    core = _smoothstep((_CORE_OUT - d) / (_CORE_OUT - _CORE_IN))
    return alpha, core


def blend_weights(box: CropBox, *, feather: float) -> tuple[F32, F32]:
    """(alpha, core) over the whole square: alpha blends face over scene, core keeps face colour.

    Both are smoothsteps of the elliptical distance d from the face centre (d = 1 on the face
    box's inscribed ellipse). alpha is 1 out to (1 - feather) of its outer radius and exactly
    0 from 90% of the crop's half side on; core is 1 inside d = 0.6 and 0 beyond d = 1.
    """
    rows = slice(box.y0, box.y0 + box.side)
    cols = slice(box.x0, box.x0 + box.side)
    return _weights(box, rows, cols, feather)


def _color_correction(scene: U8, face: U8, core: F32, color_match: float, sigma: float) -> F32:
    """Low-frequency offset that brings `face` to the scene's colours (full resolution out).

    Computed on a copy about sigma/3 times smaller, then upsampled once. Background and face
    are estimated separately (masked low-pass) so the face's colour difference does not leak
    out as a rim around the head, nor the background's into the skin. Outside the face the
    offset is applied fully; on it, scaled by `color_match`.
    """
    height, width = scene.shape[:2]
    factor = max(1.0, sigma / 3.0)
    size = (max(4, round(width / factor)), max(4, round(height / factor)))
    small_sigma = sigma * size[0] / width

    def shrink(img: np.ndarray) -> F32:
        out = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        return np.asarray(out, dtype=np.float32)

    diff = shrink(scene) - shrink(face)
    w_face = shrink(core)[:, :, None]
    w_back = 1.0 - w_face

    def masked_blur(weight: F32) -> F32:
        num = cv2.GaussianBlur(diff * weight, (0, 0), small_sigma)
        den = cv2.GaussianBlur(weight, (0, 0), small_sigma).reshape(weight.shape)
        return np.asarray(num / np.maximum(den, 1e-3), dtype=np.float32)

    keep = float(np.clip(color_match, 0.0, 1.0))
    small = w_back * masked_blur(w_back) + w_face * keep * masked_blur(w_face)
    big = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.asarray(big, dtype=np.float32).reshape(height, width, 3)


def paste_face(
    canvas: U8,
    box: CropBox,
    face_rgb: U8,
    *,
    feather: float = 0.45,
    color_match: float = 0.5,
) -> None:
    """Blend a stylized face square (box.side px) into `canvas` in place.

    Only the part of the square inside the image is touched; pixels where the blend weight is
    0 keep their value exactly. Colour correction reads the canvas, so later (smaller) faces
    also match faces already pasted.
    """
    rows, cols, srows, scols = _inside(box, *canvas.shape[:2])
    scene_u8 = canvas[rows, cols]
    face_u8 = face_rgb[srows, scols]
    alpha, core = _weights(box, rows, cols, feather)
    sigma = max(2.0, _LOWPASS * box.side)
    out = _color_correction(scene_u8, face_u8, core, color_match, sigma)
    scene = scene_u8.astype(np.float32)
    out += face_u8  # out = face + correction - scene, then scene + alpha * that
    out -= scene
    out *= alpha[:, :, None]
    out += scene
    np.rint(out, out=out)
    np.clip(out, 0, 255, out=out)
    canvas[rows, cols] = out.astype(np.uint8)


def lift_exposure(crop: U8, floor: float) -> U8:
    """A dark face brought up to a face model's training range before it runs (a gamma curve,
    so nothing clips): a model that saw only well-lit faces draws a dim one as blotches. Only
    for models whose colour is then fully matched to the scene (`color_match` 1), which puts
    the person's own light back at low frequencies. `floor`: the mean luminance (0-255) of the
    crop's central half below which the lift applies; 0 turns it off."""
    if floor <= 0:
        return crop
    h, w = crop.shape[:2]
    centre = crop[h // 4 : h - h // 4, w // 4 : w - w // 4]
    lum = float(cv2.cvtColor(centre, cv2.COLOR_RGB2GRAY).mean())
    if lum >= floor or lum < 1.0:
        return crop
    gamma = np.log(floor / 255.0) / np.log(lum / 255.0)
    table = (255.0 * (np.arange(256) / 255.0) ** gamma).round().clip(0, 255).astype(np.uint8)
    return np.asarray(cv2.LUT(crop, table), dtype=np.uint8)


def face_crops(
    original: U8,
    faces: Sequence[Face],
    *,
    face_size: int = 512,
    margin: float = 2.0,
    smooth_skin: bool = False,
) -> list[tuple[CropBox, U8]]:
    """Square face crops resized to `face_size`, largest face first (the face model's input).

    Separate from `face2paint` so a caller can batch the face model over all crops.
    """
    usable = [f for f in faces if min(f.w, f.h) >= _MIN_SIDE]
    usable.sort(key=lambda f: -f.area)
    crops = []
    for face in usable:
        box = crop_box(face, margin=margin)
        crop = _resize(square_crop(original, box), face_size)
        if smooth_skin:
            # Evens skin texture (pores, noise, JPEG blocks) before the face model sees it.
            crop = np.asarray(cv2.bilateralFilter(crop, 0, 20.0, face_size / 128.0), dtype=np.uint8)
        crops.append((box, crop))
    return crops


def _check_face_output(out: np.ndarray, face_size: int) -> U8:
    """Accept the face model's output if it is an RGB uint8 image; fix its size if needed."""
    arr = np.asarray(out)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"stylize_face must return HxWx3 uint8, got {arr.dtype} {arr.shape}")
    if arr.shape[:2] != (face_size, face_size):
        arr = np.asarray(
            cv2.resize(arr, (face_size, face_size), interpolation=cv2.INTER_AREA), np.uint8
        )
    return arr


def face2paint(
    original: U8,
    stylized: U8,
    faces: Sequence[Face],
    stylize_face: Callable[[U8], U8],
    *,
    face_size: int = 512,
    margin: float = 2.0,
    feather: float = 0.45,
    color_match: float = 0.5,
    smooth_skin: bool = False,
    map_fn: Callable[[Callable[[U8], U8], list[U8]], Iterable[U8]] = map,
    in_place: bool = False,
) -> U8:
    """Scene stylization `stylized` with each face re-stylized by `stylize_face` and blended in.

    `original` and `stylized` are RGB uint8 of the same size; `faces` are in their pixel
    coordinates. Faces are pasted largest first, so smaller overlapping faces end on top.
    `color_match` (0..1) is how far the face's own colours are pulled to the scene's low
    frequencies on the face itself (the ring and background are always matched fully).
    Returns `stylized` itself (not a copy) when there are no usable faces. `map_fn` may
    stylize the crops side by side (an executor's map); they are pasted in order after.
    `in_place`: paste into `stylized` itself instead of a copy (the result is the same: the
    colour correction reads what has been pasted so far either way).
    """
    if original.shape != stylized.shape or original.ndim != 3 or original.shape[2] != 3:
        raise ValueError(
            f"original {original.shape} and stylized {stylized.shape} must be same-size RGB"
        )
    crops = face_crops(original, faces, face_size=face_size, margin=margin, smooth_skin=smooth_skin)
    if not crops:
        return stylized
    canvas = stylized if in_place else stylized.copy()
    styled_crops = list(map_fn(stylize_face, [crop for _, crop in crops]))
    for (box, _), styled_crop in zip(crops, styled_crops, strict=True):
        styled = _check_face_output(styled_crop, face_size)
        paste_face(canvas, box, _resize(styled, box.side), feather=feather, color_match=color_match)
    return canvas
