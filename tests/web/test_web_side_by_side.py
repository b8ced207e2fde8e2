"""The web page's results are at most 2048 px on the long side, side-by-side ones included."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from aiohttp.test_utils import TestClient
from PIL import Image

from tests.web.helpers import decode, form
from web.app import WEB_MAX_SIDE


def panorama(width: int, height: int) -> bytes:
    """A smooth, wide JPEG (a gradient with some texture: no faces, cheap to convert)."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    rgb = np.concatenate(
        [np.broadcast_to(x, (height, width, 1)), y.repeat(width, 1), 255 - x.repeat(height, 0)],
        axis=2,
    )
    buf = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


async def test_a_side_by_side_panorama_fits_the_web_cap(client: TestClient[Any, Any]) -> None:
    await client.get("/")  # the page hands out the visitor cookie
    image = panorama(3000, 200)  # scaled to 2048x137 for the web: 4096x137 side by side
    response = await client.post("/api/convert", data=form(image, side_by_side="1", faces="0"))
    assert response.status == 200, await response.text()
    result = decode(await response.read())
    assert max(result.size) == WEB_MAX_SIDE == 2048
    assert result.size == (2048, 68)  # the photo at 1024x68, and its result beside it
    assert response.headers["X-Animebot-Size"] == "2048x68"
