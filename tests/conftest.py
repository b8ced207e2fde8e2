"""Shared fixtures. Tests that need ../shared skip with a clear reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.pairs import shared_dir

SHARED = shared_dir()
PHOTOS = SHARED / "data" / "photos"
EDGE = PHOTOS / "edge"

needs_shared = pytest.mark.skipif(
    not (SHARED / "data").is_dir(),
    reason=f"shared test material not found at {SHARED} (set ANIMEBOT_SHARED to ../shared)",
)


@pytest.fixture
def photos_dir() -> Path:
    if not PHOTOS.is_dir():
        pytest.skip(f"shared test photos not found at {PHOTOS}")
    return PHOTOS


@pytest.fixture
def edge_dir() -> Path:
    if not EDGE.is_dir():
        pytest.skip(f"shared edge-case inputs not found at {EDGE}")
    return EDGE
