"""One conversion at start, off the event loop, so the first person does not wait for what a
first request pays.

Loading the models (`Engine.warm_up`) runs each one on a 64 px image; the first real photo
still paid for ONNX Runtime's first runs at full size (its memory arena growing to a whole
1280 px pass, split across the idle workers), the face model's first 512 px crop, the face
detector at its working size, and the first JPEG decode and encode: the first web conversion
took 1.5-2x as long as the same photo converted later (bench/first_request.py). A synthetic
phone-sized photo goes through the same path as a request, minus the service: nothing is
recorded, cached or counted.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from core.engine import Engine
from core.imageio import encode

log = logging.getLogger("animebot.runtime")

# A 3:2 photo as Telegram sends it (1280 px long side): one whole pass, split across the idle
# workers as a lone request's is. It leaves ONNX Runtime's arenas about where the first real
# photo of that size would (RSS 0.5-0.6 GB with the bundled models; 0.13 GB before any photo).
WARM_UP_SIZE = (853, 1280)  # height, width


def warm_up_photo(height: int = WARM_UP_SIZE[0], width: int = WARM_UP_SIZE[1]) -> bytes:
    """A JPEG with smooth gradients and texture: ordinary work for decoder, model and encoder."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 128 + 100 * np.sin(x / 97) * np.cos(y / 131)
    g = 255 * y / height
    b = 128 + 60 * np.sin((x + y) / 23)
    rgb = np.clip(np.dstack([r, g, b]), 0, 255).astype(np.uint8)
    return encode(rgb, fmt="jpeg", quality=90).data


def warm_up_sync(engine: Engine) -> None:
    """What the async conversion below does not reach: the face model at its crop size (the
    synthetic photo has no face) and the PNG and WebP encoders."""
    spec = engine.resolve(None)
    face = engine.registry.face_model_for(spec)
    if face is not None:
        size = engine.config.face_size
        engine.session(face).run(np.full((size, size, 3), 128, np.uint8))
    tiny = np.full((32, 32, 3), 128, np.uint8)
    for fmt in ("png", "webp"):
        encode(tiny, fmt=fmt)


async def warm_up(engine: Engine) -> float:
    """Run the warm-up conversion; returns its milliseconds. A failure is logged, not raised:
    the models loaded, so the process can serve (and the first request will say what fails)."""
    started = time.perf_counter()
    try:
        photo = await engine.run_light(warm_up_photo)
        await engine.convert(photo, faces=True, fmt="jpeg")
        await engine.run_in_pool(lambda: warm_up_sync(engine))
    except Exception:
        log.warning("the warm-up conversion failed", exc_info=True)
    elapsed = (time.perf_counter() - started) * 1000
    log.info("warmed up in %.0f ms", elapsed)
    return elapsed
