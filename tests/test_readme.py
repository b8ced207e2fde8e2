"""The README's examples run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.fixtures_models import synthetic_photos

ROOT = Path(__file__).resolve().parents[1]


def readme_block(heading: str, language: str) -> str:
    """The first ```language block after the line `heading` in README.md."""
    text = (ROOT / "README.md").read_text()
    after = text.split(f"\n{heading}\n", 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", after, re.S)
    assert match is not None, f"no {language} block after {heading!r}"
    return match.group(1)


def test_the_library_example_runs_as_written(tmp_path: Path) -> None:
    Image.fromarray(synthetic_photos(1, (240, 320))[0]).save(tmp_path / "photo.jpg")
    example = readme_block("### As a library", "python")
    check = """
assert isinstance(anime_png, bytes) and anime_png.startswith(b"\\x89PNG")
assert isinstance(anime_img, Image.Image) and anime_img.size == (320, 240)
assert anime_arr.shape == (240, 320, 3) and anime_arr.dtype == np.uint8
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # as `pip install -e .` would make it
    done = subprocess.run(
        [sys.executable, "-c", example + check],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
