"""Image I/O for every front end: whatever a person sends becomes upright 8-bit RGB (+ alpha).

Decoding is defensive because users send anything: the magic bytes choose the only Pillow plugin
allowed to open the file, the declared size is checked before any pixel is decoded, truncation is
an error (never grey filler), and every failure is one of the typed errors in `core.errors`.
Encoding writes pixels only, so no EXIF/GPS, ICC profile, XMP or text chunk ever leaves the bot.

Decoded arrays are read-only: a `DecodedImage` is shared between worker threads and its pixels
back the cache key, so callers copy before they modify.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError, features

from core import formats
from core.errors import (
    DamagedImage,
    EmptyInput,
    ImageTooLarge,
    ImageTooSmall,
    InputError,
    NotAnImage,
    UnsupportedImage,
)

U8 = NDArray[np.uint8]
ImageSource = bytes | bytearray | memoryview | Path | Image.Image | np.ndarray

NOTE_ANIMATED: Final = "animated_first_frame"
NOTE_ANIMATED_CURRENT: Final = "animated_current_frame"  # a PIL input seeked past frame 0
NOTE_MULTI_IMAGE: Final = "multi_image_first"  # MPO / multi-page TIFF / HEIF collection
NOTE_EXIF_ROTATED: Final = "exif_rotated"
NOTE_CMYK: Final = "converted_from_cmyk"
NOTE_16BIT: Final = "converted_from_16bit"
NOTE_FLOAT: Final = "converted_from_float"
NOTE_GREY: Final = "converted_from_grey"

_ANIMATION_FORMATS: Final = frozenset(("GIF", "PNG", "WEBP", "AVIF"))
_ORIENTATION_TAG: Final = 0x0112
_PNG_COMPRESS_LEVEL: Final = 3  # ~40 % faster than 6 for ~10 % more bytes; on the hot path
_WEBP_METHOD: Final = 2  # half the time of the default 4 at near-identical size
_FLOAT_TOLERANCE: Final = 1e-6


@dataclass(frozen=True)
class DecodedImage:
    """Upright 8-bit pixels plus what was done to get them (for logs and user-facing hints)."""

    rgb: U8
    alpha: U8 | None
    source_format: str
    animated: bool = False
    notes: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    mime: str
    ext: str
    width: int
    height: int


class _Limits(NamedTuple):
    max_pixels: int
    max_bytes: int
    min_side: int


class _Pixels(NamedTuple):
    rgb: U8
    alpha: U8 | None
    notes: tuple[str, ...]


class _Encoder(NamedTuple):
    pil_format: str
    mime: str
    ext: str


_ENCODERS: Final = {
    "png": _Encoder("PNG", "image/png", "png"),
    "jpeg": _Encoder("JPEG", "image/jpeg", "jpg"),
    "webp": _Encoder("WEBP", "image/webp", "webp"),
}
_FORMAT_ALIASES: Final = {"jpg": "jpeg"}


# --------------------------------------------------------------------------- plugins


class _Plugins:
    """Pillow plugin set-up, done once on first use: importing pillow-heif is not free, and two
    worker threads decoding at once must not both register it."""

    lock = threading.Lock()
    ready = False
    available: frozenset[str] = frozenset()


def _ensure_plugins() -> frozenset[str]:
    if _Plugins.ready:
        return _Plugins.available
    with _Plugins.lock:
        if not _Plugins.ready:
            Image.init()
            available = set(formats.DECODABLE) - {"HEIF", "AVIF"}
            if _register_heif():
                available.add("HEIF")
            if features.check("avif"):
                available.add("AVIF")
            _Plugins.available = frozenset(available)
            _Plugins.ready = True
    return _Plugins.available


def _register_heif() -> bool:
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def supported_formats() -> list[str]:
    """Formats `decode` accepts, in the order a help text should list them."""
    names = {"HEIF": "HEIC/HEIF", "WEBP": "WebP"}
    available = _ensure_plugins()
    return [names.get(kind, kind) for kind in formats.DECODABLE if kind in available]


# --------------------------------------------------------------------------- decode


def decode(
    data: ImageSource,
    *,
    max_pixels: int = 40_000_000,
    max_bytes: int = 50 * 1024 * 1024,
    min_side: int = 16,
) -> DecodedImage:
    """Any upload → `DecodedImage`, or a typed `InputError`; thread-safe.

    A missing or unreadable *path* raises the usual `OSError`: that is the caller's problem,
    not a bad image.
    """
    limits = _Limits(max_pixels, max_bytes, min_side)
    if isinstance(data, np.ndarray):
        return _decode_array(data, limits)
    if isinstance(data, Image.Image):
        with _decoder_errors(data.format or "PIL", limits.max_pixels, None):
            return _decode_opened(data, data.format or "PIL", limits, raw=None)
    return _decode_bytes(_read_bytes(data, max_bytes), limits)


def _read_bytes(data: bytes | bytearray | memoryview | Path, max_bytes: int) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        _check_bytes(size, max_bytes)
        return bytes(data)
    if isinstance(data, os.PathLike):
        with Path(data).open("rb") as fh:  # read at most one byte past the cap, even from a FIFO
            raw = fh.read(max_bytes + 1)
        _check_bytes(len(raw), max_bytes)
        return raw
    raise TypeError(f"decode() cannot read {type(data).__name__}; pass bytes, Path, PIL or array")


def _check_bytes(size: int, max_bytes: int) -> None:
    if size == 0:
        raise EmptyInput("zero bytes")
    if size > max_bytes:
        raise ImageTooLarge(f"{size} bytes > {max_bytes}", pixels=0, limit=max_bytes)


def _decode_bytes(raw: bytes, limits: _Limits) -> DecodedImage:
    kind = formats.sniff(raw)
    if kind is None:
        raise NotAnImage("no known image signature")
    if kind not in _ensure_plugins():
        raise UnsupportedImage(f"{kind} images are not supported")
    declared = formats.header_size(raw, kind)
    if declared is not None:  # refuse bombs before Pillow parses, warns or allocates anything
        _check_size(*declared, limits)
    with (
        _decoder_errors(kind, limits.max_pixels, declared),
        Image.open(io.BytesIO(raw), formats=[kind]) as im,
    ):
        return _decode_opened(im, kind, limits, raw=raw)


@contextlib.contextmanager
def _decoder_errors(kind: str, max_pixels: int, declared: tuple[int, int] | None) -> Iterator[None]:
    """Turn whatever a decoder raises into a typed error; the original stays chained."""
    try:
        yield
    except (InputError, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        pixels = declared[0] * declared[1] if declared else _pixels_in_message(str(exc))
        raise ImageTooLarge(f"{kind}: {exc}", pixels=pixels, limit=max_pixels) from exc
    except UnidentifiedImageError as exc:
        raise DamagedImage(f"{kind} signature but unreadable header") from exc
    except Exception as exc:
        raise DamagedImage(f"{kind} could not be decoded: {type(exc).__name__}: {exc}") from exc


def _pixels_in_message(message: str) -> int:
    match = re.search(r"\((\d+) pixels\)", message)
    return int(match.group(1)) if match else 0


def _check_size(width: int, height: int, limits: _Limits) -> None:
    if width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"{width}x{height} = {width * height} pixels > {limits.max_pixels}",
            pixels=width * height,
            limit=limits.max_pixels,
        )
    if min(width, height) < limits.min_side:
        raise ImageTooSmall(f"{width}x{height} < {limits.min_side} px", min_side=limits.min_side)


def _decode_opened(
    im: Image.Image, kind: str, limits: _Limits, *, raw: bytes | None
) -> DecodedImage:
    _check_size(im.width, im.height, limits)  # header only so far: nothing decoded yet
    frame_notes = _frame_notes(im, kind)  # before load(): a GIF probe re-seeks frame 0
    im.load()  # full decode now, so truncation raises here (LOAD_TRUNCATED_IMAGES stays False)
    orientation = _orientation(im)
    pixels = _deep_png_pixels(raw, im) if kind == "PNG" and raw else None
    if pixels is None:
        pixels = _pil_pixels(im)
    rgb, alpha = _orient(pixels.rgb, orientation), _orient_optional(pixels.alpha, orientation)
    notes = frame_notes + pixels.notes + ((NOTE_EXIF_ROTATED,) if orientation != 1 else ())
    return _result(rgb, alpha, kind, notes)


def _frame_notes(im: Image.Image, kind: str) -> tuple[str, ...]:
    """Several frames: an animation (we show the first) or an image set (we show the primary)."""
    if not getattr(im, "is_animated", False):
        return ()
    first = im.tell() == 0
    if kind in _ANIMATION_FORMATS:
        return (NOTE_ANIMATED if first else NOTE_ANIMATED_CURRENT,)
    return (NOTE_MULTI_IMAGE,)


def _orientation(im: Image.Image) -> int:
    """EXIF orientation 1-8; unreadable EXIF is ignored rather than failing the whole photo."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 2 <= value <= 8 else 1


def _decode_array(arr: np.ndarray, limits: _Limits) -> DecodedImage:
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise UnsupportedImage(f"array shape {arr.shape}; expected HxW, HxWx3 or HxWx4")
    _check_size(int(arr.shape[1]), int(arr.shape[0]), limits)
    pixels = _array_pixels(arr)
    return _result(pixels.rgb, pixels.alpha, "ARRAY", pixels.notes)


def _result(rgb: U8, alpha: U8 | None, kind: str, notes: tuple[str, ...]) -> DecodedImage:
    if alpha is not None and int(alpha.min()) == 255:
        alpha = None  # fully opaque alpha carries nothing and would force PNG output
    animated = NOTE_ANIMATED in notes or NOTE_ANIMATED_CURRENT in notes
    return DecodedImage(_frozen(rgb), _frozen_optional(alpha), kind, animated, notes)


def _frozen(a: U8) -> U8:
    out = np.ascontiguousarray(a)
    out.setflags(write=False)
    return out


def _frozen_optional(a: U8 | None) -> U8 | None:
    return None if a is None else _frozen(a)


# --------------------------------------------------------------------------- pixel conversion


def _pil_pixels(im: Image.Image) -> _Pixels:
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        return _array_pixels(_int_to_uint16(np.asarray(im)), private=True)
    if mode == "F":
        return _array_pixels(np.asarray(im), private=True)
    notes: tuple[str, ...] = ()
    if mode == "CMYK":  # Pillow already undoes Adobe's inverted CMYK when it reads the JPEG
        im, notes = im.convert("RGB"), (NOTE_CMYK,)
    elif mode not in ("RGB", "RGBA") and im.has_transparency_data:
        im = im.convert("RGBA")
    elif mode == "L":
        return _array_pixels(np.asarray(im, dtype=np.uint8), private=True)
    elif mode not in ("RGB", "RGBA"):
        im = _convert_rgb(im)
    pixels = _array_pixels(np.asarray(im, dtype=np.uint8), private=True)
    return pixels._replace(notes=notes + pixels.notes)


def _convert_rgb(im: Image.Image) -> Image.Image:
    try:
        return im.convert("RGB")
    except ValueError as exc:  # e.g. LAB/HSV from an odd TIFF
        raise UnsupportedImage(f"cannot convert mode {im.mode} to RGB") from exc


def _int_to_uint16(arr: NDArray[np.generic]) -> NDArray[np.uint16]:
    """Pillow 'I' and 'I;16*' hold 16-bit sources (greyscale 16-bit PNG/TIFF)."""
    if arr.dtype != np.uint16 and (int(arr.min()) < 0 or int(arr.max()) > 65535):
        raise UnsupportedImage(f"integer pixels outside 0..65535 ({arr.dtype})")
    return arr.astype(np.uint16)


def _deep_png_pixels(raw: bytes, im: Image.Image) -> _Pixels | None:
    """16-bit colour PNG, decoded by OpenCV at full depth so it is scaled with rounding like any
    16-bit array (Pillow would keep only the high byte). Pillow has already validated the file.
    """
    png = formats.png_header(raw)
    if png is None or png.bit_depth != 16 or png.colour_type not in (2, 6):
        return None
    if getattr(im, "is_animated", False):
        return None
    arr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.shape[:2] != (im.height, im.width):
        return None
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return _array_pixels(arr, private=True)


def _array_pixels(arr: NDArray[np.generic], *, private: bool = False) -> _Pixels:
    """HxW / HxWx1 / HxWx3 (RGB) / HxWx4 (RGBA) of uint8, uint16 or float in [0, 1].

    `private`: nobody else holds `arr` (it came from a decoder), so uint8 needs no copy.
    """
    u8, notes = _to_uint8(arr, copy=not private)
    if u8.ndim == 2 or u8.shape[2] == 1:
        grey = u8.reshape(u8.shape[0], u8.shape[1], 1)
        return _Pixels(np.repeat(grey, 3, axis=2), None, (*notes, NOTE_GREY))
    if u8.shape[2] == 4:
        return _Pixels(np.ascontiguousarray(u8[..., :3]), np.ascontiguousarray(u8[..., 3]), notes)
    return _Pixels(u8, None, notes)


def _to_uint8(arr: NDArray[np.generic], *, copy: bool) -> tuple[U8, tuple[str, ...]]:
    """`copy` for arrays a caller passed in: their buffer may change after `decode` returns."""
    if arr.dtype == np.uint8:
        return np.array(arr, dtype=np.uint8, order="C", copy=copy or None), ()
    if arr.dtype == np.uint16:  # round(v / 257): 65535 → 255, 257·k → k, nothing clipped
        scaled = (arr.astype(np.uint32) + 128) // 257
        return scaled.astype(np.uint8), (NOTE_16BIT,)
    if np.issubdtype(arr.dtype, np.floating):
        return _float_to_uint8(arr), (NOTE_FLOAT,)
    raise UnsupportedImage(f"pixel dtype {arr.dtype}; expected uint8, uint16 or float in [0, 1]")


def _float_to_uint8(arr: NDArray[np.generic]) -> U8:
    values = arr.astype(np.float32, copy=False)
    if not np.isfinite(values).all():
        raise UnsupportedImage("float pixels contain NaN or infinity")
    low, high = float(values.min()), float(values.max())
    if low < -_FLOAT_TOLERANCE or high > 1 + _FLOAT_TOLERANCE:
        raise UnsupportedImage(f"float pixels span [{low}, {high}]; expected [0, 1]")
    return (np.clip(values, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _orient(a: U8, orientation: int) -> U8:
    """EXIF orientation on the array, as ImageOps.exif_transpose would do it on the image."""
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1]
    if orientation == 5:
        return a.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(a, -1)
    if orientation == 7:
        return a.swapaxes(0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(a, 1)
    return a


def _orient_optional(a: U8 | None, orientation: int) -> U8 | None:
    return None if a is None else _orient(a, orientation)


# --------------------------------------------------------------------------- encode


def encode(
    rgb: np.ndarray, alpha: np.ndarray | None = None, *, fmt: str = "png", quality: int = 92
) -> EncodedImage:
    """Pixels only: a fresh Pillow image carries no EXIF/GPS, ICC, XMP or text to write out.

    Meaningful alpha never disappears: JPEG cannot hold it, so such a request gives PNG.
    """
    key = _FORMAT_ALIASES.get(fmt.lower(), fmt.lower())
    if key not in _ENCODERS:
        raise ValueError(f"fmt must be one of {sorted(_ENCODERS)}, not {fmt!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1..100, not {quality}")
    _check_pixels(rgb, alpha)
    if alpha is not None and int(alpha.min()) == 255:
        alpha = None
    if alpha is not None and key == "jpeg":
        key = "png"
    encoder = _ENCODERS[key]
    pixels = rgb if alpha is None else np.dstack((rgb, alpha))
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(
        buffer, format=encoder.pil_format, **_save_options(key, quality)
    )
    height, width = rgb.shape[:2]
    return EncodedImage(buffer.getvalue(), encoder.mime, encoder.ext, int(width), int(height))


# encode_to_fit: JPEG qualities tried at full size, then the quality of the smaller steps.
_FIT_QUALITIES: Final = (85, 70, 55)
_FIT_SHRINK_QUALITY: Final = 70
_FIT_MIN_SIDE: Final = 32
_FIT_MAX_SHRINKS: Final = 12


def encode_to_fit(rgb: np.ndarray, alpha: np.ndarray | None, max_bytes: int) -> EncodedImage | None:
    """A JPEG of these pixels within `max_bytes`: lower quality first, then smaller step by
    step; None when nothing fits. For a reply target with a size limit (a Discord upload),
    straight from the pixels: nothing is decoded again.

    Transparency is flattened onto white: JPEG has no alpha, and a smaller opaque picture beats
    no picture."""
    if alpha is not None:
        a = alpha.astype(np.float32)[..., None] / 255.0
        rgb = (rgb.astype(np.float32) * a + 255.0 * (1.0 - a)).round().astype(np.uint8)
    size = 0
    for quality in _FIT_QUALITIES:
        out = encode(rgb, fmt="jpeg", quality=quality)
        if len(out.data) <= max_bytes:
            return out
        size = len(out.data)
    for _ in range(_FIT_MAX_SHRINKS):
        side = max(rgb.shape[:2])
        # Bytes grow roughly with pixel count: aim a little under the limit.
        factor = min(0.85, max(0.25, math.sqrt(max_bytes / max(size, 1)) * 0.9))
        target = int(side * factor)
        if target < _FIT_MIN_SIDE:
            return None
        rgb = resize_max_side(rgb, target)
        out = encode(rgb, fmt="jpeg", quality=_FIT_SHRINK_QUALITY)
        if len(out.data) <= max_bytes:
            return out
        size = len(out.data)
    return None


def _check_pixels(rgb: np.ndarray, alpha: np.ndarray | None) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be HxWx3 uint8, got {rgb.shape} {rgb.dtype}")
    if alpha is not None and (alpha.dtype != np.uint8 or alpha.shape != rgb.shape[:2]):
        raise ValueError(f"alpha must be HxW uint8 matching rgb, got {alpha.shape} {alpha.dtype}")


def _save_options(key: str, quality: int) -> dict[str, object]:
    if key == "jpeg":
        return {"quality": quality, "subsampling": "4:2:0", "optimize": False}
    if key == "webp":
        return {"quality": quality, "method": _WEBP_METHOD}
    return {"compress_level": _PNG_COMPRESS_LEVEL, "optimize": False}


# --------------------------------------------------------------------------- helpers


def pixel_digest(img: DecodedImage) -> str:
    """Cache key base: depends on upright pixels only, so re-encoded copies of a photo agree."""
    digest = hashlib.sha256(f"animebot-pixels-v1:{img.height}x{img.width}x3".encode())
    digest.update(np.ascontiguousarray(img.rgb).data)
    if img.alpha is not None:
        digest.update(b":alpha:")
        digest.update(np.ascontiguousarray(img.alpha).data)
    return digest.hexdigest()


def resize_max_side(rgb: U8, max_side: int) -> U8:
    """Downscale (INTER_AREA: no aliasing) so the longer side is at most `max_side`.

    `rgb` may also be an HxW alpha plane; an image already within the limit comes back as is.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, not {max_side}")
    height, width = rgb.shape[:2]
    if max(height, width) <= max_side:
        return rgb
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def resize_decoded(img: DecodedImage, max_side: int) -> DecodedImage:
    """`resize_max_side` on rgb and alpha together, keeping them the same size."""
    rgb = resize_max_side(img.rgb, max_side)
    if rgb is img.rgb:
        return img
    alpha = None if img.alpha is None else resize_max_side(img.alpha, max_side)
    return replace(img, rgb=_frozen(rgb), alpha=_frozen_optional(alpha))
