"""Recognise an upload by its leading bytes and read its pixel size from the header.

Both run before any decoder sees the data: the magic bytes decide which single Pillow plugin may
open the file (so a file named .jpg that is really EPS never reaches Ghostscript), and the header
size lets a decompression bomb be refused without Pillow parsing, warning or allocating anything.
Every parser here is defensive: odd or short input gives None, never an exception.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

#: Formats `sniff` may return that `core.imageio` decodes (Pillow format ids).
DECODABLE = ("JPEG", "PNG", "WEBP", "GIF", "HEIF", "AVIF", "BMP", "TIFF")
#: Image formats recognised only to refuse them as unsupported rather than "not an image".
KNOWN_UNSUPPORTED = ("JXL", "PSD", "SVG")

_HEIF_BRANDS = frozenset(
    b"heic heix heim heis hevc hevx hevm hevs mif1 msf1 mif2 MiHE MiHB MiHA".split()
)
_AVIF_BRANDS = frozenset((b"avif", b"avis"))
_BMP_HEADER_SIZES = frozenset((12, 16, 40, 52, 56, 64, 108, 124))
_JPEG_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE))


class PngHeader(NamedTuple):
    width: int
    height: int
    bit_depth: int
    colour_type: int


def sniff(data: bytes) -> str | None:
    """Format id from magic bytes, or None when nothing image-like matches (text, PDF, noise)."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "TIFF"
    if head[4:8] == b"ftyp":
        return _iso_bmff_kind(data)
    if _looks_like_bmp(head):
        return "BMP"
    return _sniff_unsupported(head, data[:1024])


def _iso_bmff_kind(data: bytes) -> str | None:
    """HEIF or AVIF from the ftyp box brands (AVIF wins: an AVIF lists mif1 too)."""
    (box_size,) = struct.unpack(">I", data[:4])
    box_size = min(box_size, len(data), 4096)
    brands = {data[i : i + 4] for i in range(8, box_size - 3, 4)} - {b"\x00\x00\x00\x00"}
    if brands & _AVIF_BRANDS:
        return "AVIF"
    if brands & _HEIF_BRANDS:
        return "HEIF"
    return None


def _looks_like_bmp(head: bytes) -> bool:
    """'BM' alone matches ordinary text, so also require zero reserved bytes and a DIB size."""
    if len(head) < 18 or not head.startswith(b"BM"):
        return False
    reserved, _offset, dib_size = struct.unpack("<III", head[6:18])
    return reserved == 0 and dib_size in _BMP_HEADER_SIZES


def _sniff_unsupported(head: bytes, start: bytes) -> str | None:
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "JXL"
    if head.startswith(b"8BPS"):
        return "PSD"
    text = start.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "SVG"
    return None


def png_header(data: bytes) -> PngHeader | None:
    """IHDR fields; the IHDR chunk must come first, so this is at a fixed offset."""
    if len(data) < 26 or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return PngHeader(width, height, depth, colour)


def header_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """(width, height) as declared by the header, for the formats where that is cheap to find."""
    if kind == "PNG":
        png = png_header(data)
        return None if png is None else (png.width, png.height)
    if kind == "GIF" and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if kind == "WEBP":
        return _webp_size(data)
    if kind == "JPEG":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the marker segments up to the first SOF (frame header), which holds the size."""
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            if pos + 9 > end:
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker in (0xD9, 0xDA) or length < 2:  # end of image / scan data before any SOF
            return None
        pos += 2 + length
    return None
