"""Small distinct test images (each a different cache key) and usage-table queries."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from core.imageio import encode


def distinct_png(seed: int, side: int = 96) -> bytes:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, side, dtype=np.float32)
    img = np.stack([np.add.outer(base, base) / 2] * 3, axis=-1)
    img += rng.normal(0, 12, img.shape)
    return encode(np.clip(img, 0, 255).astype(np.uint8), fmt="png").data


def usage_rows(db_path: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(db_path) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM usage ORDER BY id").fetchall()


class HeldConversion:
    """Holds the engine's first conversion until `release()`, so a test can fill the queue
    behind it deterministically; later conversions pass straight through."""

    def __init__(self, engine: Any) -> None:
        self._convert = engine.convert
        self.started = asyncio.Event()
        self._gate = asyncio.Event()
        self._first = True
        engine.convert = self._held

    async def _held(self, *args: Any, **kwargs: Any) -> Any:
        if self._first:
            self._first = False
            self.started.set()
            await self._gate.wait()
        return await self._convert(*args, **kwargs)

    def release(self) -> None:
        self._gate.set()
