"""core.imageio: every edge-case file in ../shared plus synthetic inputs built here."""

from __future__ import annotations

import io
import struct
import threading
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageFile, ImageOps, PngImagePlugin, features

from core import formats, imageio
from core.errors import (
    DamagedImage,
    EmptyInput,
    ImageTooLarge,
    ImageTooSmall,
    NotAnImage,
    UnsupportedImage,
)
from core.imageio import DecodedImage, decode, encode, pixel_digest

GROUP_PHOTO = "multi_face_group6_frontal.jpg"


# --------------------------------------------------------------------------- helpers


def assert_well_formed(img: DecodedImage) -> None:
    assert img.rgb.dtype == np.uint8
    assert img.rgb.ndim == 3 and img.rgb.shape[2] == 3
    assert img.rgb.flags.c_contiguous
    assert (img.height, img.width) == img.rgb.shape[:2]
    if img.alpha is not None:
        assert img.alpha.dtype == np.uint8
        assert img.alpha.shape == img.rgb.shape[:2]
        assert img.alpha.flags.c_contiguous
        assert int(img.alpha.min()) < 255


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def reference_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None
    return np.ascontiguousarray(bgr[..., ::-1])


def save(img: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (height, width, channels) if channels > 1 else (height, width)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def gradient(height: int = 48, width: int = 64) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.dstack([xs * 255 // width, ys * 255 // height, (xs + ys) % 256]).astype(np.uint8)


def png_chunks(data: bytes) -> list[bytes]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    pos, names = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        names.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return names


def jpeg_markers(data: bytes) -> list[int]:
    """Marker codes of the header segments, up to the start of scan."""
    assert data.startswith(b"\xff\xd8")
    pos, markers = 2, []
    while pos < len(data):
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        pos += 2 + length
    return markers


def riff_chunks(data: bytes) -> list[bytes]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    pos, names = 12, []
    while pos + 8 <= len(data):
        (length,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        names.append(data[pos : pos + 4])
        pos += 8 + length + (length & 1)
    return names


def assert_no_metadata(encoded: imageio.EncodedImage) -> None:
    data = encoded.data
    reopened = Image.open(io.BytesIO(data))
    assert dict(reopened.getexif()) == {}
    assert "icc_profile" not in reopened.info
    assert b"Exif" not in data and b"GPS" not in data
    if encoded.ext == "png":
        assert set(png_chunks(data)) <= {b"IHDR", b"IDAT", b"IEND"}
    elif encoded.ext == "jpg":
        header = jpeg_markers(data)
        assert not [m for m in header if 0xE1 <= m <= 0xEF or m == 0xFE]  # APP1-15, COM
    else:
        assert set(riff_chunks(data)) <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}


# --------------------------------------------------------------------------- edge files


def test_edge_alpha_rgba_keeps_alpha(edge_dir: Path, photos_dir: Path) -> None:
    img = decode(edge_dir / "alpha_rgba.png")
    assert_well_formed(img)
    assert img.source_format == "PNG"
    assert img.rgb.shape == (800, 1200, 3)
    assert img.alpha is not None
    assert int(img.alpha.min()) == 0 and int(img.alpha.max()) == 255
    assert mean_abs_diff(img.rgb, reference_rgb(photos_dir / GROUP_PHOTO)) < 1.0


def test_edge_animated_gif_takes_first_frame(edge_dir: Path) -> None:
    img = decode(edge_dir / "animated.gif")
    assert_well_formed(img)
    assert (img.source_format, img.animated) == ("GIF", True)
    assert "animated_first_frame" in img.notes
    assert img.rgb.shape == (200, 300, 3)
    with Image.open(edge_dir / "animated.gif") as gif:
        first = np.asarray(gif.convert("RGB"))
        gif.seek(3)
        later = np.asarray(gif.convert("RGB"))
    assert np.array_equal(img.rgb, first)
    assert not np.array_equal(img.rgb, later)


def test_edge_bomb_refused_before_any_decoder(
    edge_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (edge_dir / "bomb_20000x20000.png").read_bytes()

    def no_decoder(*args: object, **kwargs: object) -> Image.Image:
        raise AssertionError("a decoder was reached")

    monkeypatch.setattr(Image, "open", no_decoder)
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLarge) as info:
            decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (info.value.pixels, info.value.limit) == (400_000_000, 40_000_000)
    assert peak < 5_000_000  # 400 MP of pixels would be hundreds of MB


def test_edge_bomb_pillow_guard_also_maps(edge_dir: Path) -> None:
    """With our own cap lifted, Pillow's DecompressionBombError still becomes ImageTooLarge."""
    if Image.MAX_IMAGE_PIXELS is None:
        pytest.skip("Pillow's bomb guard is disabled in this process")
    with pytest.raises(ImageTooLarge) as info:
        decode(edge_dir / "bomb_20000x20000.png", max_pixels=10**9)
    assert info.value.pixels == 400_000_000
    assert isinstance(info.value.__cause__, Image.DecompressionBombError)


def test_edge_cmyk_converted(edge_dir: Path, photos_dir: Path) -> None:
    img = decode(edge_dir / "cmyk.jpg")
    assert_well_formed(img)
    assert img.rgb.shape == (800, 1200, 3) and img.alpha is None
    assert "converted_from_cmyk" in img.notes
    # Adobe CMYK JPEGs store inverted values; decoding them uninverted gives a negative
    assert mean_abs_diff(img.rgb, reference_rgb(photos_dir / GROUP_PHOTO)) < 3.0


def test_edge_empty_file(edge_dir: Path) -> None:
    with pytest.raises(EmptyInput):
        decode(edge_dir / "empty.jpg")


def test_edge_exif_orientation6_upright(edge_dir: Path, photos_dir: Path) -> None:
    img = decode(edge_dir / "exif_orientation6.jpg")
    assert_well_formed(img)
    assert (img.width, img.height) == (1200, 800)
    assert "exif_rotated" in img.notes
    reference = reference_rgb(photos_dir / GROUP_PHOTO)
    assert mean_abs_diff(img.rgb, reference) < 3.0
    assert mean_abs_diff(img.rgb, reference[::-1, ::-1]) > 20.0  # upside down would not match


def test_edge_grayscale(edge_dir: Path) -> None:
    img = decode(edge_dir / "grayscale_L.jpg")
    assert_well_formed(img)
    assert img.rgb.shape == (800, 1200, 3) and img.alpha is None
    assert np.array_equal(img.rgb[..., 0], img.rgb[..., 1])
    assert np.array_equal(img.rgb[..., 1], img.rgb[..., 2])
    assert "converted_from_grey" in img.notes


def test_edge_iphone_heic(edge_dir: Path, photos_dir: Path) -> None:
    img = decode(edge_dir / "iphone_photo.heic")
    assert_well_formed(img)
    assert img.source_format == "HEIF"
    assert (img.width, img.height) == (1066, 1600)
    assert img.alpha is None and not img.animated
    source = reference_rgb(photos_dir / "landscape_autumn_lake_fuji.jpg")
    expected = cv2.resize(source, (img.width, img.height), interpolation=cv2.INTER_AREA)
    assert mean_abs_diff(img.rgb, expected) < 6.0


def test_edge_not_an_image(edge_dir: Path) -> None:
    with pytest.raises(NotAnImage):
        decode(edge_dir / "not_an_image.jpg")


def test_edge_panorama(edge_dir: Path) -> None:
    img = decode(edge_dir / "panorama_6000x400.jpg")
    assert_well_formed(img)
    assert img.rgb.shape == (400, 6000, 3)
    assert imageio.resize_max_side(img.rgb, 1200).shape == (80, 1200, 3)


def test_edge_rgb_16bit_scaled_not_clipped(edge_dir: Path, photos_dir: Path) -> None:
    path = edge_dir / "rgb_16bit.png"
    img = decode(path)
    assert_well_formed(img)
    assert img.rgb.shape == (800, 1200, 3)
    assert "converted_from_16bit" in img.notes
    deep = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert deep.dtype == np.uint16 and int(deep.max()) > 255  # really 16-bit
    expected = np.round(deep[..., ::-1].astype(np.float64) / 257.0).astype(np.uint8)
    assert np.array_equal(img.rgb, expected)
    assert mean_abs_diff(img.rgb, reference_rgb(photos_dir / GROUP_PHOTO)) < 1.0


def test_edge_sticker_webp(edge_dir: Path) -> None:
    img = decode(edge_dir / "sticker_512.webp")
    assert_well_formed(img)
    assert img.source_format == "WEBP"
    assert max(img.width, img.height) == 512
    assert (img.width, img.height) == (341, 512)
    # this file is lossy VP8 without an ALPH chunk (see the RGBA sticker test below)
    assert img.alpha is None


def test_edge_tiny_refused(edge_dir: Path) -> None:
    with pytest.raises(ImageTooSmall) as info:
        decode(edge_dir / "tiny_8x8.png")
    assert info.value.min_side == 16
    assert decode(edge_dir / "tiny_8x8.png", min_side=8).rgb.shape == (8, 8, 3)


def test_edge_truncated_jpeg_is_damaged(edge_dir: Path) -> None:
    path = edge_dir / "truncated.jpg"
    assert cv2.imread(str(path)) is not None  # OpenCV would hand back grey filler
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(DamagedImage) as info:
        decode(path)
    assert isinstance(info.value.__cause__, OSError)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_heic_is_damaged(edge_dir: Path) -> None:
    data = (edge_dir / "iphone_photo.heic").read_bytes()
    with pytest.raises(DamagedImage):
        decode(data[: len(data) * 2 // 5])


def test_plugins_registered_once_under_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    barrier = threading.Barrier(8)

    def counting_register() -> bool:
        calls.append(1)
        return True

    monkeypatch.setattr(imageio._Plugins, "ready", False)
    monkeypatch.setattr(imageio._Plugins, "available", frozenset())
    monkeypatch.setattr(imageio, "_register_heif", counting_register)

    def first_use() -> list[str]:
        barrier.wait()
        return imageio.supported_formats()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: first_use(), range(8)))
    assert len(calls) == 1
    assert all("HEIC/HEIF" in names for names in results)


def test_edge_all_files_concurrently_match_sequential(edge_dir: Path) -> None:
    names = [
        "alpha_rgba.png",
        "animated.gif",
        "cmyk.jpg",
        "exif_orientation6.jpg",
        "iphone_photo.heic",
        "rgb_16bit.png",
        "sticker_512.webp",
        "truncated.jpg",
    ]

    def outcome(name: str) -> str:
        try:
            return pixel_digest(decode(edge_dir / name))
        except DamagedImage:
            return "damaged"

    sequential = [outcome(name) for name in names]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(outcome, names * 2))
    assert parallel == sequential * 2
    assert sequential[-1] == "damaged"


# --------------------------------------------------------------------------- refusals


def test_pdf_is_not_an_image() -> None:
    pdf = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    with pytest.raises(NotAnImage):
        decode(pdf)


def test_random_bytes_are_not_an_image() -> None:
    data = noise(64, 64).tobytes()
    assert formats.sniff(data) is None
    with pytest.raises(NotAnImage):
        decode(data)


def test_text_starting_with_bm_is_not_a_bitmap() -> None:
    with pytest.raises(NotAnImage):
        decode(b"BMW service booklet, page 1 of 12 ...........")


def test_garbage_after_png_signature_is_damaged() -> None:
    with pytest.raises(DamagedImage) as info:
        decode(b"\x89PNG\r\n\x1a\n" + noise(32, 32).tobytes())
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP"])
def test_truncated_synthetic_files_are_damaged(fmt: str) -> None:
    data = save(Image.fromarray(noise(200, 200)), fmt)
    with pytest.raises(DamagedImage):
        decode(data[: len(data) // 2])


def test_known_but_unsupported_formats() -> None:
    with pytest.raises(UnsupportedImage):
        decode(b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>')
    with pytest.raises(UnsupportedImage):
        decode(b"8BPS\x00\x01" + bytes(64))


@pytest.mark.parametrize("empty", [b"", bytearray(), memoryview(b"")])
def test_empty_buffers(empty: bytes | bytearray | memoryview) -> None:
    with pytest.raises(EmptyInput):
        decode(empty)


def test_max_bytes(tmp_path: Path) -> None:
    data = save(Image.fromarray(gradient()), "PNG")
    with pytest.raises(ImageTooLarge) as info:
        decode(data, max_bytes=len(data) - 1)
    assert (info.value.pixels, info.value.limit) == (0, len(data) - 1)
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    with pytest.raises(ImageTooLarge):
        decode(path, max_bytes=100)
    assert decode(path, max_bytes=len(data)).rgb.shape == (48, 64, 3)


def test_max_pixels_configurable() -> None:
    data = save(Image.fromarray(gradient(48, 64)), "JPEG")
    with pytest.raises(ImageTooLarge) as info:
        decode(data, max_pixels=48 * 64 - 1)
    assert (info.value.pixels, info.value.limit) == (48 * 64, 48 * 64 - 1)
    assert decode(data, max_pixels=48 * 64).rgb.shape == (48, 64, 3)
    with pytest.raises(ImageTooLarge):
        decode(gradient(48, 64), max_pixels=1000)
    with pytest.raises(ImageTooLarge):  # TIFF has no cheap header parser: Pillow's size is used
        decode(save(Image.fromarray(gradient(48, 64)), "TIFF"), max_pixels=1000)


def test_min_side_applies_to_arrays() -> None:
    with pytest.raises(ImageTooSmall):
        decode(np.zeros((10, 100, 3), np.uint8))


# --------------------------------------------------------------------------- modes


def test_png_with_real_transparency_keeps_alpha() -> None:
    rgba = noise(40, 50, 4, seed=1)
    img = decode(save(Image.fromarray(rgba), "PNG"))
    assert_well_formed(img)
    assert img.alpha is not None
    assert np.array_equal(img.rgb, rgba[..., :3])
    assert np.array_equal(img.alpha, rgba[..., 3])


def test_fully_opaque_rgba_has_no_alpha(photos_dir: Path) -> None:
    rgba = noise(40, 50, 4, seed=2)
    rgba[..., 3] = 255
    img = decode(save(Image.fromarray(rgba), "PNG"))
    assert img.alpha is None
    assert np.array_equal(img.rgb, rgba[..., :3])
    assert decode(photos_dir / "shrine_torii_rgba.png").alpha is None  # real-world case


def test_palette_with_transparency() -> None:
    indices = np.zeros((32, 32), np.uint8)
    indices[8:24, 8:24] = 1
    pal = Image.fromarray(indices, mode="P")
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img = decode(save(pal, "PNG", transparency=0))
    assert img.alpha is not None
    assert int(img.alpha[0, 0]) == 0 and int(img.alpha[16, 16]) == 255
    assert img.rgb[16, 16].tolist() == [0, 0, 255]
    opaque = decode(save(pal, "PNG"))
    assert opaque.alpha is None
    assert opaque.rgb[0, 0].tolist() == [255, 0, 0]


def test_la_mode() -> None:
    grey, alpha = noise(30, 40, 1, seed=3), noise(30, 40, 1, seed=4)
    la = Image.merge("LA", (Image.fromarray(grey), Image.fromarray(alpha)))
    img = decode(save(la, "PNG"))
    assert img.alpha is not None and np.array_equal(img.alpha, alpha)
    assert np.array_equal(img.rgb, np.dstack([grey] * 3))


def test_one_bit_image() -> None:
    bits = (noise(32, 32, 1, seed=5) > 127).astype(np.uint8) * 255
    img = decode(Image.fromarray(bits).convert("1"))
    assert set(np.unique(img.rgb).tolist()) <= {0, 255}
    assert np.array_equal(img.rgb[..., 0], bits)


def test_16bit_grey_png_via_pillow_scaled() -> None:
    values = np.array([[0, 1000, 257 * 128, 65535]], np.uint16).repeat(16, axis=0).repeat(4, axis=1)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    img = decode(save(image, "PNG"))
    assert img.rgb[0, ::4, 0].tolist() == [0, 4, 128, 255]  # round(v / 257); clipping gives 255s
    assert "converted_from_16bit" in img.notes
    assert np.array_equal(decode(image).rgb, img.rgb)  # same via a PIL object
    as_int32 = Image.fromarray(values.astype(np.int32))
    assert as_int32.mode == "I"
    assert np.array_equal(decode(as_int32).rgb, img.rgb)


def test_16bit_rgb_png_rounds_instead_of_taking_high_byte() -> None:
    deep = np.full((20, 20, 3), 1000, np.uint16)
    deep[..., 1] = 65535
    ok, buffer = cv2.imencode(".png", deep)
    assert ok
    img = decode(buffer.tobytes())
    assert img.rgb[0, 0].tolist() == [4, 255, 4]  # Pillow alone gives 3 (1000 >> 8)


def test_float_arrays() -> None:
    values = np.linspace(0.0, 1.0, 20 * 30 * 3, dtype=np.float64).reshape(20, 30, 3)
    img = decode(values)
    expected = np.round(values * 255).astype(np.uint8)
    assert np.abs(img.rgb.astype(int) - expected).max() <= 1
    assert int(img.rgb.min()) == 0 and int(img.rgb.max()) == 255
    assert "converted_from_float" in img.notes
    assert decode(values.astype(np.float16)).rgb.shape == (20, 30, 3)
    with pytest.raises(UnsupportedImage):
        decode(values * 255.0)
    broken = values.copy()
    broken[0, 0, 0] = np.nan
    with pytest.raises(UnsupportedImage):
        decode(broken)


def test_pil_float_mode() -> None:
    values = np.linspace(0.0, 1.0, 20 * 20, dtype=np.float32).reshape(20, 20)
    img = decode(Image.fromarray(values))
    assert img.rgb[0, 0].tolist() == [0, 0, 0] and img.rgb[-1, -1].tolist() == [255, 255, 255]


def test_uint16_array_scaled() -> None:
    values = np.array([0, 128, 129, 257, 1000, 65535], np.uint16).reshape(1, 6).repeat(16, axis=0)
    img = decode(values.repeat(3, axis=1))
    assert img.rgb[0, ::3, 0].tolist() == [0, 0, 1, 1, 4, 255]


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((20, 20, 3), np.int64),
        np.zeros((20, 20, 3), np.bool_),
        np.zeros((20, 20, 2), np.uint8),
        np.zeros((2, 20, 20, 3), np.uint8),
        np.zeros((20,), np.uint8),
    ],
)
def test_unsupported_arrays(array: np.ndarray) -> None:
    with pytest.raises(UnsupportedImage):
        decode(array)


def test_array_input_shapes_and_independence() -> None:
    rgb = noise(20, 30)
    img = decode(rgb)
    assert img.source_format == "ARRAY" and np.array_equal(img.rgb, rgb)
    rgb[:] = 0  # the caller reuses its buffer
    assert int(img.rgb.max()) > 0
    with pytest.raises(ValueError, match="read-only"):
        img.rgb[0, 0, 0] = 1
    grey = decode(noise(20, 30, 1))
    assert grey.rgb.shape == (20, 30, 3) and "converted_from_grey" in grey.notes
    rgba = noise(20, 30, 4)
    with_alpha = decode(rgba)
    assert with_alpha.alpha is not None and np.array_equal(with_alpha.alpha, rgba[..., 3])
    strided = noise(20, 64)[:, ::2, ::-1]  # a BGR→RGB view, every other column
    assert not strided.flags.c_contiguous
    from_view = decode(strided)
    assert from_view.rgb.flags.c_contiguous and np.array_equal(from_view.rgb, strided)


def test_rgba_webp_sticker_keeps_alpha() -> None:
    rgba = gradient(64, 64)
    alpha = np.zeros((64, 64), np.uint8)
    alpha[16:48, 16:48] = 255
    data = save(Image.fromarray(np.dstack([rgba, alpha])), "WEBP", lossless=True)
    img = decode(data)
    assert img.source_format == "WEBP"
    assert img.alpha is not None and np.array_equal(img.alpha, alpha)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
def test_animations_take_first_frame(fmt: str) -> None:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("red", "lime", "blue")]
    data = save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    img = decode(data)
    assert img.animated and "animated_first_frame" in img.notes
    red = np.array([255, 0, 0])
    assert np.abs(img.rgb[15, 20].astype(int) - red).max() <= 4  # lossy WebP drifts a little
    single = decode(save(frames[1], fmt))
    assert not single.animated and "animated_first_frame" not in single.notes


def test_bmp_and_tiff() -> None:
    pixels = gradient()
    for fmt in ("BMP", "TIFF"):
        img = decode(save(Image.fromarray(pixels), fmt))
        assert img.source_format == fmt and np.array_equal(img.rgb, pixels)


def test_avif_with_exif_orientation() -> None:
    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF codec")
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    data = save(Image.fromarray(gradient(40, 64)), "AVIF", exif=exif, quality=90)
    img = decode(data)
    assert img.source_format == "AVIF"
    with Image.open(io.BytesIO(data)) as stored:
        expected = np.asarray(ImageOps.exif_transpose(stored).convert("RGB"))
    assert img.rgb.shape == expected.shape
    assert np.array_equal(img.rgb, expected)


# --------------------------------------------------------------------------- orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(orientation: int) -> None:
    pixels = noise(20, 36, seed=orientation)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    data = save(Image.fromarray(pixels), "PNG", exif=exif)
    with Image.open(io.BytesIO(data)) as stored:
        expected = np.asarray(ImageOps.exif_transpose(stored).convert("RGB"))
    img = decode(data)
    assert np.array_equal(img.rgb, expected)
    assert ("exif_rotated" in img.notes) == (orientation != 1)


def test_corrupt_exif_is_ignored_not_fatal() -> None:
    data = save(Image.fromarray(gradient()), "JPEG", exif=b"Exif\x00\x00MM\x00*\xff\xff")
    assert decode(data).rgb.shape == (48, 64, 3)


# --------------------------------------------------------------------------- encode


def metadata_laden_jpeg() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 29.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = save(Image.fromarray(gradient()), "JPEG", exif=exif, icc_profile=icc, quality=95)
    with Image.open(io.BytesIO(data)) as check:  # the fixture really carries what we strip
        assert check.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert check.info.get("icc_profile") == icc
    return data


@pytest.mark.parametrize("fmt", ["png", "jpeg", "webp"])
def test_encode_strips_gps_exif_and_icc(fmt: str) -> None:
    img = decode(metadata_laden_jpeg())
    encoded = encode(img.rgb, img.alpha, fmt=fmt)
    assert_no_metadata(encoded)
    with Image.open(io.BytesIO(encoded.data)) as reopened:
        assert reopened.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}


def test_encode_strips_png_text_and_icc() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret location")
    info.add_text("XML:com.adobe.xmp", "<x:xmpmeta/>")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = save(Image.fromarray(gradient()), "PNG", pnginfo=info, icc_profile=icc)
    assert b"tEXt" in data and b"iCCP" in data
    img = decode(data)
    encoded = encode(img.rgb, img.alpha)
    assert_no_metadata(encoded)
    assert b"secret" not in encoded.data


@pytest.mark.parametrize(
    ("fmt", "mime", "ext", "lossless"),
    [
        ("png", "image/png", "png", True),
        ("jpeg", "image/jpeg", "jpg", False),
        ("jpg", "image/jpeg", "jpg", False),
        ("webp", "image/webp", "webp", False),
    ],
)
def test_encode_roundtrip(fmt: str, mime: str, ext: str, lossless: bool) -> None:
    pixels = gradient(90, 130)
    encoded = encode(pixels, fmt=fmt)
    assert (encoded.mime, encoded.ext, encoded.width, encoded.height) == (mime, ext, 130, 90)
    assert formats.sniff(encoded.data) == {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}[ext]
    back = decode(encoded.data)
    assert back.rgb.shape == (90, 130, 3)
    if lossless:
        assert np.array_equal(back.rgb, pixels)
    else:
        assert mean_abs_diff(back.rgb, pixels) < 4.0
    assert_no_metadata(encoded)


def test_encode_jpeg_is_420_and_quality_matters() -> None:
    pixels = noise(64, 64, seed=9)
    with Image.open(io.BytesIO(encode(pixels, fmt="jpeg").data)) as jpeg:
        assert jpeg.layer[0][1:3] == (2, 2)  # luma sampled 2x2 → 4:2:0
    assert len(encode(pixels, fmt="jpeg", quality=30).data) < len(encode(pixels, fmt="jpeg").data)


def test_alpha_with_jpeg_becomes_png() -> None:
    pixels, alpha = gradient(), np.full((48, 64), 128, np.uint8)
    encoded = encode(pixels, alpha, fmt="jpeg")
    assert (encoded.mime, encoded.ext) == ("image/png", "png")
    back = decode(encoded.data)
    assert back.alpha is not None and np.array_equal(back.alpha, alpha)
    webp = decode(encode(pixels, alpha, fmt="webp").data)
    assert webp.alpha is not None and np.abs(webp.alpha.astype(int) - 128).max() <= 2
    opaque = encode(pixels, np.full((48, 64), 255, np.uint8), fmt="jpeg")
    assert opaque.mime == "image/jpeg"  # an all-opaque alpha holds nothing to lose


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: encode(gradient(), fmt="gif"), "fmt"),
        (lambda: encode(gradient(), quality=0), "quality"),
        (lambda: encode(gradient().astype(np.float32)), "uint8"),
        (lambda: encode(gradient(), np.zeros((3, 3), np.uint8)), "alpha"),
    ],
)
def test_encode_rejects_bad_arguments(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------- digest, sources


def test_pixel_digest_same_for_rotated_jpeg_and_upright_png(edge_dir: Path) -> None:
    rotated = decode(edge_dir / "exif_orientation6.jpg")
    upright_png = encode(rotated.rgb, fmt="png").data
    as_png = decode(upright_png)
    assert (as_png.width, as_png.height) == (1200, 800)
    assert pixel_digest(as_png) == pixel_digest(rotated)
    assert len(pixel_digest(rotated)) == 64


def test_pixel_digest_differs_for_different_pixels() -> None:
    pixels = gradient()
    base = decode(pixels)
    changed = pixels.copy()
    changed[10, 10, 1] ^= 1
    assert pixel_digest(decode(changed)) != pixel_digest(base)
    assert pixel_digest(decode(pixels.transpose(1, 0, 2))) != pixel_digest(base)
    alpha = np.full((48, 64), 200, np.uint8)
    with_alpha = decode(np.dstack([pixels, alpha]))
    assert pixel_digest(with_alpha) != pixel_digest(base)
    assert pixel_digest(decode(pixels.copy())) == pixel_digest(base)


def test_path_bytes_pil_and_array_agree(edge_dir: Path) -> None:
    path = edge_dir / "exif_orientation6.jpg"
    from_path = decode(path)
    from_bytes = decode(path.read_bytes())
    from_view = decode(memoryview(bytearray(path.read_bytes())))
    with Image.open(path) as opened:
        from_pil = decode(opened)
    from_array = decode(from_path.rgb)
    digests = {pixel_digest(d) for d in (from_path, from_bytes, from_view, from_pil, from_array)}
    assert len(digests) == 1
    assert from_pil.source_format == "JPEG" and from_array.source_format == "ARRAY"
    assert "exif_rotated" in from_pil.notes


def test_decode_rejects_str_paths() -> None:
    with pytest.raises(TypeError):
        decode("photo.jpg")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- resize, formats


def test_resize_max_side() -> None:
    pixels = noise(400, 6000)
    small = imageio.resize_max_side(pixels, 1000)
    assert small.shape == (67, 1000, 3) and small.dtype == np.uint8
    assert imageio.resize_max_side(pixels, 6000) is pixels
    alpha = noise(400, 6000, 1)
    assert imageio.resize_max_side(alpha, 1000).shape == (67, 1000)
    with pytest.raises(ValueError):
        imageio.resize_max_side(pixels, 0)


def test_resize_decoded_keeps_alpha_aligned() -> None:
    img = decode(noise(300, 200, 4, seed=7))
    resized = imageio.resize_decoded(img, 150)
    assert resized.rgb.shape == (150, 100, 3)
    assert resized.alpha is not None and resized.alpha.shape == (150, 100)
    assert not resized.rgb.flags.writeable
    assert imageio.resize_decoded(img, 300) is img


def test_supported_formats() -> None:
    names = imageio.supported_formats()
    assert {"JPEG", "PNG", "WebP", "GIF", "HEIC/HEIF"} <= set(names)
    for data in (save(Image.fromarray(gradient()), fmt) for fmt in ("JPEG", "PNG", "GIF")):
        assert decode(data).source_format in {"JPEG", "PNG", "GIF"}


def test_header_size_parsers_match_pillow() -> None:
    pixels = gradient(37, 53)
    cases = {
        "PNG": save(Image.fromarray(pixels), "PNG"),
        "GIF": save(Image.fromarray(pixels), "GIF"),
        "JPEG": save(Image.fromarray(pixels), "JPEG", progressive=True),
        "WEBP": save(Image.fromarray(pixels), "WEBP"),
    }
    cases["WEBP-lossless"] = save(Image.fromarray(pixels), "WEBP", lossless=True)
    cases["WEBP-alpha"] = save(Image.fromarray(np.dstack([pixels, pixels[..., 0]])), "WEBP")
    for name, data in cases.items():
        kind = name.split("-")[0]
        assert formats.sniff(data) == kind
        assert formats.header_size(data, kind) == (53, 37), name
