"""A tiny installed-models folder for tests, built once per session from untrained students.

Tests must not depend on trained weights (models/weights may not exist yet), so this exports
two small `models.student.Student` networks through the real `models.export.export_style`:
a scene style that serves INT8 (gate at 0 dB) naming a face style that serves fp32 (gate at
1000 dB, so its model.json carries the gate note). Import the fixture into a test module:

    from tests.fixtures_models import model_dir  # noqa: F401  (pytest fixture)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from torch import nn

SCENE = "toon"
FACE = "toon_face"


@dataclass(frozen=True)
class ModelDir:
    path: Path
    scene: str = SCENE
    face: str = FACE


def synthetic_photos(
    n: int = 3, size: tuple[int, int] = (96, 128), seed: int = 0
) -> list[np.ndarray]:
    """Gradients plus noise: enough range for INT8 calibration, no files needed."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    photos = []
    for i in range(n):
        base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy + 40 * i) % 256], axis=-1)
        noisy = base + rng.normal(0, 20, base.shape)
        photos.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return photos


def _student(seed: int) -> nn.Module:
    import torch

    from models.student import Student, StudentConfig

    torch.manual_seed(seed)
    model = Student(StudentConfig(widths=(8, 8, 16), blocks=1, expansion=2))
    with torch.no_grad():  # a non-zero head, so the output is not the photo itself
        model.head.weight.normal_(0, 0.05)
    return model.eval()


def export_fixture_styles(root: Path) -> ModelDir:
    from models.export import export_style
    from models.student import count_parameters

    photos = synthetic_photos()
    for name, kind, gate_db, seed in ((SCENE, "scene", 0.0, 1), (FACE, "face", 1000.0, 2)):
        model = _student(seed)
        info: dict[str, object] = {
            "title": name.replace("_", " ").title(),
            "kind": kind,
            "architecture": "student",
            "parameters": count_parameters(model),
        }
        if kind == "scene":
            info["face_style"] = FACE
        export_style(
            model,
            style=name,
            folder=root / name,
            calibration=photos,
            validation=photos[:1],
            multiple=4,
            info=info,
            gate_db=gate_db,
        )
    return ModelDir(root)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> ModelDir:
    pytest.importorskip("torch", reason="building the fixture styles needs torch (train extras)")
    return export_fixture_styles(tmp_path_factory.mktemp("fixture-models"))
