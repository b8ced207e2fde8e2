"""`core.convert` / `core.api.convert`: same type out as in, one lazily built engine."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import core
from core import api
from core.engine import Engine
from core.errors import NotAnImage, UnknownStyle
from core.registry import Registry
from tests.fixtures_models import ModelDir, model_dir, synthetic_photos

__all__ = ["model_dir"]  # the session fixture, re-exported for pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def engine(model_dir: ModelDir) -> Iterator[Engine]:
    engine = Engine(Registry([model_dir.path]))
    previous = api.use_engine(engine)
    try:
        yield engine
    finally:
        api.use_engine(previous)


@pytest.fixture
def rgb() -> np.ndarray:
    return synthetic_photos(1, (90, 120))[0]


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bytes_in_png_bytes_out(engine: Engine, rgb: np.ndarray) -> None:
    jpeg = io.BytesIO()
    Image.fromarray(rgb).save(jpeg, format="JPEG")
    out = core.convert(jpeg.getvalue(), "toon")
    assert isinstance(out, bytes) and out.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(out)) as im:
        assert im.size == (120, 90) and im.mode == "RGB"
    assert isinstance(api.convert(bytearray(png(rgb))), bytes)


def test_all_types_give_the_same_pixels(engine: Engine, rgb: np.ndarray) -> None:
    from_bytes = np.asarray(Image.open(io.BytesIO(api.convert(png(rgb)))))
    from_pil = api.convert(Image.fromarray(rgb))
    from_array = api.convert(rgb)
    assert isinstance(from_pil, Image.Image) and from_pil.mode == "RGB"
    assert isinstance(from_array, np.ndarray)
    assert from_array.dtype == np.uint8 and from_array.shape == (90, 120, 3)
    assert np.array_equal(from_bytes, np.asarray(from_pil))
    assert np.array_equal(from_bytes, from_array)
    assert not np.array_equal(from_array, rgb)  # it did stylize
    assert np.abs(from_array.astype(int) - rgb.astype(int)).mean() < 60  # and kept the picture


def test_alpha_survives_for_pil_and_arrays(engine: Engine, rgb: np.ndarray) -> None:
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[20:70, 30:100] = 255
    rgba = np.dstack([rgb, alpha])
    out_pil = api.convert(Image.fromarray(rgba, "RGBA"))
    assert out_pil.mode == "RGBA" and np.array_equal(np.asarray(out_pil)[..., 3], alpha)
    out_array = api.convert(rgba)
    assert out_array.shape == (90, 120, 4) and np.array_equal(out_array[..., 3], alpha)


def test_grey_and_float_arrays_become_rgb(engine: Engine, rgb: np.ndarray) -> None:
    grey = rgb[..., 0]
    assert api.convert(grey).shape == (90, 120, 3)
    as_float = rgb.astype(np.float32) / 255.0
    assert np.array_equal(api.convert(as_float), api.convert(rgb))


def test_side_by_side_and_faces_flag(engine: Engine, rgb: np.ndarray) -> None:
    pair = api.convert(rgb, side_by_side=True)
    assert pair.shape == (90, 240, 3)
    assert np.array_equal(pair[:, :120], rgb)
    assert np.array_equal(pair[:, 120:], api.convert(rgb))
    assert api.convert(rgb, faces=False).shape == (90, 120, 3)


def test_errors_are_typed(engine: Engine, rgb: np.ndarray) -> None:
    with pytest.raises(NotAnImage):
        api.convert(b"definitely not an image")
    with pytest.raises(UnknownStyle) as unknown:
        api.convert(rgb, "picasso")
    with pytest.raises(UnknownStyle) as face_model:
        api.convert(rgb, "toon_face")  # a face model is not a whole-image style
    for caught in (unknown, face_model):  # so it is not offered as one either
        assert caught.value.available == ["toon"]
        assert str(caught.value).endswith("; available: toon")
    with pytest.raises(TypeError):
        api.convert("photo.jpg")  # type: ignore[call-overload]


def test_engine_is_created_once_under_contention(
    monkeypatch: pytest.MonkeyPatch, model_dir: ModelDir
) -> None:
    built: list[Engine] = []

    def factory() -> Engine:
        engine = Engine(Registry([model_dir.path]))
        built.append(engine)
        return engine

    previous = api.use_engine(None)
    monkeypatch.setattr(api, "Engine", factory)
    start = threading.Barrier(8)
    got: list[Engine] = []

    def worker() -> None:
        start.wait()
        got.append(api.get_engine())

    try:
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        api.use_engine(previous)
    assert len(built) == 1
    assert len(got) == 8 and all(e is built[0] for e in got)


def test_import_core_is_cheap_and_convert_is_lazy(model_dir: ModelDir, tmp_path: Path) -> None:
    """`import core.errors` must not load the engine; `core.convert` builds the default engine
    from the default registry: the built-in styles (here: the fixture styles stand in for them;
    core reads no environment, so user models come only through `use_engine`)."""
    src = tmp_path / "in.png"
    Image.fromarray(synthetic_photos(1, (64, 80))[0]).save(src)
    code = f"""
import sys
from pathlib import Path
import core, core.errors
assert "core.api" not in sys.modules and "onnxruntime" not in sys.modules, "eager import"
import core.registry
core.registry.WEIGHTS_DIR = Path({str(model_dir.path)!r})
out = core.convert(Path({str(src)!r}).read_bytes(), "toon")
assert out.startswith(b"\\x89PNG")
assert "core.api" in sys.modules and "torch" not in sys.modules
print("OK")
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "OK"
