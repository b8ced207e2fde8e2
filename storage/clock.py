"""Time helpers: the database stores unix milliseconds, the API takes `time.time()` seconds."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Current wall-clock time in unix milliseconds."""
    return time.time_ns() // 1_000_000


def to_ms(seconds: float) -> int:
    """Unix seconds (as from `time.time()`) to unix milliseconds."""
    return int(seconds * 1000)
