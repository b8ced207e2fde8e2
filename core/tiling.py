"""Stylize large images in overlapping tiles so memory stays bounded.

Each tile is run with `context` pixels of real neighbouring image around it (so the network
sees the same surroundings it would see on the whole image) and tiles are cross-faded with
linear ramps over `overlap` pixels. The ramps form a partition of unity in each direction, so
no normalisation pass is needed, and rows are finished band by band: only one band of float
accumulators (tile height x image width) is alive at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

RGB = NDArray[np.uint8]
T = TypeVar("T")
R = TypeVar("R")
MapFn = Callable[[Callable[[T], R], Iterable[T]], Iterable[R]]


def spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Tile intervals covering [0, length): consecutive tiles overlap by at least `overlap`."""
    if length <= tile:
        return [(0, length)]
    count = int(np.ceil((length - overlap) / (tile - overlap)))
    starts = np.linspace(0, length - tile, count).round().astype(int)
    return [(int(s), int(s) + tile) for s in starts]


def ramp_weights(intervals: Sequence[tuple[int, int]]) -> list[NDArray[np.float32]]:
    """Per-interval weights that rise over the overlap with the previous interval and fall over
    the overlap with the next; at every position the weights of all intervals sum to 1."""
    weights = []
    for i, (a, b) in enumerate(intervals):
        w = np.ones(b - a, np.float32)
        if i > 0:
            n = intervals[i - 1][1] - a
            w[:n] = np.linspace(0, 1, n + 2, dtype=np.float32)[1:-1]
        if i + 1 < len(intervals):
            n = b - intervals[i + 1][0]
            w[b - a - n :] = np.linspace(1, 0, n + 2, dtype=np.float32)[1:-1]
        weights.append(w)
    return weights


def stylize_tiled(
    run: Callable[[RGB], RGB],
    rgb: RGB,
    *,
    tile: int = 1024,
    overlap: int = 32,
    context: int = 48,
    map_fn: MapFn[tuple[int, int], RGB] = map,
) -> RGB:
    """`run` applied to the whole image, computed tile by tile. `map_fn` may run the tiles of a
    band in parallel (e.g. an executor's map)."""
    h, w = rgb.shape[:2]
    if h <= tile and w <= tile:
        return run(rgb)
    ys, xs = spans(h, tile, overlap), spans(w, tile, overlap)
    wy, wx = ramp_weights(ys), ramp_weights(xs)
    out = np.empty_like(rgb)
    carry: NDArray[np.float32] | None = None
    for k, (y0, y1) in enumerate(ys):

        def one(x_span: tuple[int, int], y0: int = y0, y1: int = y1) -> RGB:
            x0, x1 = x_span
            cy0, cy1 = max(0, y0 - context), min(h, y1 + context)
            cx0, cx1 = max(0, x0 - context), min(w, x1 + context)
            styled = run(np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1]))
            return styled[y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0]

        band = np.zeros((y1 - y0, w, 3), np.float32)
        for (x0, x1), weight, styled in zip(xs, wx, map_fn(one, xs), strict=True):
            band[:, x0:x1] += styled * weight[None, :, None]
        band *= wy[k][:, None, None]
        if carry is not None:
            band[: carry.shape[0]] += carry
        done = (ys[k + 1][0] if k + 1 < len(ys) else y1) - y0
        out[y0 : y0 + done] = np.clip(band[:done] + 0.5, 0, 255).astype(np.uint8)
        carry = band[done:]
    return out
