"""Stylize large images in overlapping tiles so memory stays bounded.

Each tile is run with `context` pixels of real neighbouring image around it (so the network
sees the same surroundings it would see on the whole image; a tile at the border takes its
context from the inside instead, so every tile the network sees has the same shape and ONNX
Runtime plans and reuses one block of memory for all of them) and tiles are cross-faded with
linear ramps over `overlap` pixels. The ramps form a partition of unity in each direction, so
no normalisation pass is needed, and rows are finished band by band: only one band of float
accumulators (tile height x image width) is alive at a time.

Every pixel of overlap and context is computed twice or more, so the tile grid matters:
`plan_tile` picks the tile shape (not necessarily square) that covers the photo with the fewest
computed pixels under a per-tile budget. A 1920x1280 photo in fixed 640 px squares computed
2.45x its own pixels; under the engine's 0.6 MP budget, six 656x664 tiles compute 1.40x (under
a 1.25 MP budget, three 664x1280 bands: 1.19x).
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

OVERLAP = 32  # cross-fade width between neighbouring tiles
CONTEXT = 48  # real image around each tile, cut off after the pass


def spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Tile intervals covering [0, length): consecutive tiles overlap by at least `overlap`."""
    if length <= tile:
        return [(0, length)]
    count = int(np.ceil((length - overlap) / (tile - overlap)))
    starts = np.linspace(0, length - tile, count).round().astype(int)
    return [(int(s), int(s) + tile) for s in starts]


def tile_length(length: int, n: int, overlap: int, multiple: int) -> int:
    """The shortest tile, rounded up to `multiple`, of which `n` cover `length` overlapping by
    `overlap` (at most `length` itself)."""
    t = -(-(length + (n - 1) * overlap) // n)
    return min(length, -(-t // multiple) * multiple)


def window(a: int, b: int, length: int, context: int) -> tuple[int, int]:
    """The stretch of [0, length) the network sees for the tile [a, b): `context` pixels each
    side, shifted inwards at the borders so every tile of the same size gets the same window."""
    size = min(length, b - a + 2 * context)
    start = min(max(0, a - context), length - size)
    return start, start + size


def _axis_options(
    length: int, overlap: int, context: int, multiple: int, least: int
) -> list[tuple[int, int, int, int]]:
    """Per candidate tile length along one axis: (tile, sum of the tiles' lengths with their
    context, the longest of them, how many tiles)."""
    if length <= least:
        return [(length, length, length, 1)]
    out = {}
    for n in range(1, length // least + 2):
        t = max(least, tile_length(length, n, overlap, multiple))
        if t not in out:
            cuts = spans(length, t, overlap)
            seen = min(length, t + 2 * context)
            out[t] = (t, seen * len(cuts), seen, len(cuts))
    return list(out.values())


def plan_tile(
    h: int,
    w: int,
    max_pixels: int,
    *,
    overlap: int = OVERLAP,
    context: int = CONTEXT,
    multiple: int = 8,
) -> tuple[int, int]:
    """The (height, width) of tiles whose grid computes the fewest pixels in all, each tile
    with its context at most `max_pixels` (the smallest tile when none fits). Sides are
    multiples of `multiple` (the model's padding unit) and at least four overlaps long, so
    the cross-fades stay apart."""
    least = 4 * overlap
    ys = _axis_options(h, overlap, context, multiple, least)
    xs = _axis_options(w, overlap, context, multiple, least)
    fitting = [
        (total_y * total_x, ny * nx, th, tw)
        for th, total_y, tall, ny in ys
        for tw, total_x, wide, nx in xs
        if tall * wide <= max_pixels
    ]
    if not fitting:
        return min(h, least), min(w, least)
    _, _, th, tw = min(fitting)
    return th, tw


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
    tile: int | tuple[int, int] = 1024,
    overlap: int = OVERLAP,
    context: int = CONTEXT,
    map_fn: MapFn[tuple[tuple[int, int], tuple[int, int]], RGB] = map,
) -> RGB:
    """`run` applied to the whole image, computed tile by tile; `tile` is a side or a
    (height, width), e.g. from `plan_tile`. `map_fn` gets every tile in row-major order and
    may run several at once (e.g. an executor's map); results are consumed in that order, so
    a lazy `map_fn` keeps only the tiles it has run ahead in memory."""
    h, w = rgb.shape[:2]
    tile_h, tile_w = (tile, tile) if isinstance(tile, int) else tile
    if h <= tile_h and w <= tile_w:
        return run(rgb)
    ys, xs = spans(h, tile_h, overlap), spans(w, tile_w, overlap)
    wy, wx = ramp_weights(ys), ramp_weights(xs)

    def one(where: tuple[tuple[int, int], tuple[int, int]]) -> RGB:
        (y0, y1), (x0, x1) = where
        cy0, cy1 = window(y0, y1, h, context)
        cx0, cx1 = window(x0, x1, w, context)
        styled = run(np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1]))
        return styled[y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0]

    tiles = iter(map_fn(one, [(y, x) for y in ys for x in xs]))
    out = np.empty_like(rgb)
    carry: NDArray[np.float32] | None = None
    for k, (y0, y1) in enumerate(ys):
        band = np.zeros((y1 - y0, w, 3), np.float32)
        for (x0, x1), weight in zip(xs, wx, strict=True):
            band[:, x0:x1] += next(tiles) * weight[None, :, None]
        band *= wy[k][:, None, None]
        if carry is not None:
            band[: carry.shape[0]] += carry
        done = (ys[k + 1][0] if k + 1 < len(ys) else y1) - y0
        head = band[:done]  # rounded and clipped in place: no second band of floats
        head += 0.5
        np.clip(head, 0, 255, out=head)
        out[y0 : y0 + done] = head  # the cast truncates, as astype(np.uint8) would
        carry = band[done:]
    return out
