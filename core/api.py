"""The library entry point, rembg-style: `convert(image) -> image` of the same type.

    from core import convert
    png_bytes = convert(open("photo.jpg", "rb").read(), "hayao")
    pil_out = convert(Image.open("photo.jpg"))
    array_out = convert(rgb_array, faces=False)

One `Engine` per process is created on first use (thread-safe) and reused, so models load once.
`use_engine` installs a specific engine instead (e.g. one built on another registry).
"""

from __future__ import annotations

import io
import threading
from typing import overload

import numpy as np
from PIL import Image

from core.engine import Engine

_engine: Engine | None = None
_lock = threading.Lock()


def get_engine() -> Engine:
    """The process-wide engine, created on the first call (from the default registry)."""
    global _engine
    engine = _engine
    if engine is None:
        with _lock:
            if _engine is None:
                _engine = Engine()
            engine = _engine
    return engine


def use_engine(engine: Engine | None) -> Engine | None:
    """Serve `convert` from `engine` (None: create the default again on next use); returns the
    engine that was in use."""
    global _engine
    with _lock:
        previous, _engine = _engine, engine
    return previous


@overload
def convert(
    image: bytes | bytearray | memoryview,
    style: str | None = None,
    *,
    faces: bool = True,
    side_by_side: bool = False,
) -> bytes: ...
@overload
def convert(
    image: Image.Image, style: str | None = None, *, faces: bool = True, side_by_side: bool = False
) -> Image.Image: ...
@overload
def convert(
    image: np.ndarray, style: str | None = None, *, faces: bool = True, side_by_side: bool = False
) -> np.ndarray: ...
def convert(
    image: bytes | bytearray | memoryview | Image.Image | np.ndarray,
    style: str | None = None,
    *,
    faces: bool = True,
    side_by_side: bool = False,
) -> bytes | Image.Image | np.ndarray:
    """Stylize `image`; the result has the input's type and size (width doubled side by side).

    bytes (any supported format) → PNG bytes; PIL image → PIL image, mode RGB or RGBA;
    array (HxW, HxWx3 RGB, HxWx4 RGBA; uint8, uint16 or float in [0, 1]) → uint8 HxWx3 or
    HxWx4 when the input had transparency. Bad input raises a typed `core.errors.InputError`.
    """
    if not isinstance(image, bytes | bytearray | memoryview | Image.Image | np.ndarray):
        raise TypeError(f"convert() takes bytes, a PIL image or a numpy array, not {type(image)}")
    result = get_engine().convert_sync(
        image, style=style, faces=faces, side_by_side=side_by_side, fmt="png"
    )
    png = result.image.data
    if isinstance(image, bytes | bytearray | memoryview):
        return png
    with Image.open(io.BytesIO(png), formats=["PNG"]) as decoded:
        out = decoded.convert("RGBA" if decoded.mode in ("RGBA", "LA", "PA") else "RGB")
    if isinstance(image, Image.Image):
        return out
    return np.asarray(out)
