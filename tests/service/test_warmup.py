"""The warm-up conversion at start (service.warmup): it goes through the engine as a request
would, records nothing, and a failure in it does not stop the start."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from core.engine import Engine
from core.imageio import decode
from service.runtime import Runtime
from service.settings import Settings
from service.warmup import WARM_UP_SIZE, warm_up_photo


def test_the_warm_up_photo_is_a_phone_photo() -> None:
    photo = decode(warm_up_photo())
    assert (photo.height, photo.width) == WARM_UP_SIZE == (853, 1280)
    assert photo.source_format == "JPEG"


async def test_start_converts_once_and_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[dict[str, Any]] = []
    convert = Engine.convert

    async def spy(self: Engine, image: Any, **kwargs: Any) -> Any:
        result = await convert(self, image, **kwargs)
        seen.append({**kwargs, "size": (result.input_height, result.input_width)})
        return result

    monkeypatch.setattr(Engine, "convert", spy)
    with caplog.at_level(logging.INFO, logger="animebot.runtime"):
        runtime = await Runtime.start(Settings(data_dir=tmp_path / "data", workers=2))
    try:
        assert seen == [{"faces": True, "fmt": "jpeg", "size": WARM_UP_SIZE}]
        face = runtime.engine.registry.face_model_for(runtime.engine.resolve(None))
        assert face is not None and face.name in runtime.engine._sessions
        summary = await runtime.db.stats.summary(days=1)
        assert summary.total == 0  # not a request: no usage row, nothing cached
        assert await runtime.db.cache.total_bytes() == 0
    finally:
        await runtime.stop()
    assert any(r.getMessage().startswith("warmed up in ") for r in caplog.records)


async def test_a_failing_warm_up_does_not_stop_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(self: Engine, image: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(Engine, "convert", broken)
    with caplog.at_level(logging.WARNING, logger="animebot.runtime"):
        runtime = await Runtime.start(Settings(data_dir=tmp_path / "data", workers=1))
    await runtime.stop()
    assert "the warm-up conversion failed" in caplog.text


async def test_warm_false_skips_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(self: Engine, image: Any, **kwargs: Any) -> Any:
        raise AssertionError("no conversion expected")

    monkeypatch.setattr(Engine, "convert", refuse)
    runtime = await Runtime.start(Settings(data_dir=tmp_path / "data", workers=1), warm=False)
    await runtime.stop()
