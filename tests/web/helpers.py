"""Helpers for the web tests: small synthetic images and multipart forms."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import numpy as np
from aiohttp.test_utils import TestClient
from PIL import Image

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]

PHOTO = "face_single_lowlight.jpg"  # a small shared photo (853x1280, one face)


def tiny_png(seed: int = 0, size: int = 64) -> bytes:
    """A small, distinct PNG per seed (distinct pixels, so no cache hits between seeds)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def form(
    image: bytes | None,
    *,
    filename: str = "photo.jpg",
    style: str | None = None,
    faces: str | None = None,
    side_by_side: str | None = None,
    lang: str | None = None,
) -> aiohttp.FormData:
    data = aiohttp.FormData()
    if image is not None:
        data.add_field("image", image, filename=filename, content_type="image/jpeg")
    for name, value in (
        ("style", style),
        ("faces", faces),
        ("side_by_side", side_by_side),
        ("lang", lang),
    ):
        if value is not None:
            data.add_field(name, value)
    return data


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
