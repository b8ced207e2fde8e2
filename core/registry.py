"""Installed styles: one folder per model with model.json, its ONNX files and a CARD.md.

Built-in styles live in models/weights/; styles imported with `animebot models add` live in the
user models directory, which the caller names (the configuration, `service.settings`, knows
where it is: core reads no environment variable). A model file is checked
against the version hash in its model.json before it is trusted, so a truncated copy or a
swapped file fails at start-up, not in the middle of someone's conversion.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from core.errors import ModelFileError, UnknownStyle
from models import WEIGHTS_DIR

DEFAULT_STYLE = "hayao"


@dataclass(frozen=True)
class StyleSpec:
    name: str
    title: str
    kind: str  # "scene" or "face"
    folder: Path
    precision: str  # what is served: "int8" or "fp32"
    multiple: int
    parameters: int
    version: str
    face_style: str | None
    meta: dict[str, Any] = field(hash=False, compare=False)

    @property
    def model_file(self) -> Path:
        return self.folder / str(self.meta["files"][self.precision])

    @property
    def preview(self) -> Path | None:
        """A small image of what this style does (`python -m models.preview`), if made."""
        path = self.folder / "preview.jpg"
        return path if path.is_file() else None

    @property
    def color_match(self) -> float:
        """A face model's: how far its faces' low-frequency colour is pulled to the scene
        output's (0..1, face2paint). A face model that grades skin its own way (the drawn anime
        faces are paler than any photo) sets 1.0, so skin keeps the scene's, that is the
        person's, tone and the face takes only the drawing from its model."""
        return float(self.meta.get("color_match", 0.5))

    @property
    def exposure_floor(self) -> float:
        """A face model's: faces darker than this mean luminance are lifted before it runs
        (`core.face2paint.lift_exposure`); 0 (the default) never."""
        return float(self.meta.get("exposure_floor", 0.0))

    @property
    def size_bytes(self) -> int:
        return self.model_file.stat().st_size

    @property
    def gate_note(self) -> str | None:
        """Why INT8 is not served, when it is not."""
        gate = self.meta.get("gate") or {}
        if self.precision == "int8" or not gate:
            return None
        return (
            f"INT8 failed the quality gate ({gate.get('int8_vs_fp32_psnr_db')} dB < "
            f"{gate.get('threshold_db')} dB): serving fp32"
        )


def load_spec(folder: Path) -> StyleSpec:
    meta_path = folder / "model.json"
    try:
        meta = json.loads(meta_path.read_text())
        precision = str(meta["serve"])
        spec = StyleSpec(
            name=str(meta["name"]),
            title=str(meta.get("title", meta["name"])),
            kind=str(meta.get("kind", "scene")),
            folder=folder,
            precision=precision,
            multiple=int(meta.get("multiple", 4)),
            parameters=int(meta.get("parameters", 0)),
            version=str(meta["version"]),
            face_style=meta.get("face_style"),
            meta=meta,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{meta_path}: unreadable model description ({exc})") from exc
    if not spec.model_file.is_file():
        raise ModelFileError(f"{spec.model_file} is missing")
    return spec


def verify(spec: StyleSpec) -> None:
    digest = hashlib.sha256(spec.model_file.read_bytes()).hexdigest()
    if not digest.startswith(spec.version):
        raise ModelFileError(
            f"{spec.model_file} does not match model.json (sha256 {digest[:16]} != {spec.version})"
        )


class Registry:
    """Styles found in `dirs`; a later directory overrides an earlier one of the same name."""

    def __init__(self, dirs: Sequence[Path], *, verify_files: bool = True) -> None:
        self.dirs = list(dirs)
        self._verify = verify_files

    @classmethod
    def default(cls, user_models: Path | None = None) -> Registry:
        """The built-in styles, then the user models folder when one is given."""
        return cls([WEIGHTS_DIR, *([user_models] if user_models is not None else [])])

    @cached_property
    def _specs(self) -> dict[str, StyleSpec]:
        specs: dict[str, StyleSpec] = {}
        for root in self.dirs:
            for folder in sorted(_style_folders(root)):
                spec = load_spec(folder)
                if self._verify:
                    verify(spec)
                specs[spec.name] = spec
        return specs

    def reload(self) -> None:
        self.__dict__.pop("_specs", None)

    def all(self) -> list[StyleSpec]:
        return list(self._specs.values())

    def scene_styles(self) -> list[StyleSpec]:
        return [s for s in self._specs.values() if s.kind == "scene"]

    def face_styles(self) -> list[StyleSpec]:
        return [s for s in self._specs.values() if s.kind == "face"]

    def names(self) -> list[str]:
        return [s.name for s in self.scene_styles()]

    def get(self, name: str) -> StyleSpec:
        """Any installed model by name; the error lists only whole-image styles, the ones a
        person can ask for (face models are used through them)."""
        spec = self._specs.get(name)
        if spec is None:
            raise UnknownStyle(name, self.names())
        return spec

    def default_style(self) -> str:
        names = self.names()
        if not names:
            raise ModelFileError(f"no styles installed in {', '.join(map(str, self.dirs))}")
        return DEFAULT_STYLE if DEFAULT_STYLE in names else names[0]

    def face_model_for(self, scene: StyleSpec) -> StyleSpec | None:
        """A face model stylizes faces for a scene style: the one it names, else the first."""
        if scene.kind == "face":
            return scene
        if scene.face_style and scene.face_style in self._specs:
            return self._specs[scene.face_style]
        faces = self.face_styles()
        return faces[0] if faces else None


def _style_folders(root: Path) -> Iterable[Path]:
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if (p / "model.json").is_file()]
