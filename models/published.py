"""The published AnimeGANv2 PyTorch generator (bryandlee/animegan2-pytorch), described as data.

Our own copy of a public layout, so `animebot models add/pull` can verify a checkpoint before
trusting it without ../shared at run time: the parameter names and shapes of the generator's
state dict (in published order, no buffers) and the published weight files with their git blob
SHA-1s. `tests/test_models_import.py` checks that this equals
shared/reference/animeganv2_state_dict.json when ../shared is present. Pure data: no torch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ARCHITECTURE: Final = "animeganv2"
TOTAL_PARAMETERS: Final = 2143552

# (state-dict key, shape) in the published order.
TENSORS: Final[tuple[tuple[str, tuple[int, ...]], ...]] = (
    ("block_a.0.1.weight", (32, 3, 7, 7)),
    ("block_a.0.2.weight", (32,)),
    ("block_a.0.2.bias", (32,)),
    ("block_a.1.1.weight", (64, 32, 3, 3)),
    ("block_a.1.2.weight", (64,)),
    ("block_a.1.2.bias", (64,)),
    ("block_a.2.1.weight", (64, 64, 3, 3)),
    ("block_a.2.2.weight", (64,)),
    ("block_a.2.2.bias", (64,)),
    ("block_b.0.1.weight", (128, 64, 3, 3)),
    ("block_b.0.2.weight", (128,)),
    ("block_b.0.2.bias", (128,)),
    ("block_b.1.1.weight", (128, 128, 3, 3)),
    ("block_b.1.2.weight", (128,)),
    ("block_b.1.2.bias", (128,)),
    ("block_c.0.1.weight", (128, 128, 3, 3)),
    ("block_c.0.2.weight", (128,)),
    ("block_c.0.2.bias", (128,)),
    ("block_c.1.layers.0.1.weight", (256, 128, 1, 1)),
    ("block_c.1.layers.0.2.weight", (256,)),
    ("block_c.1.layers.0.2.bias", (256,)),
    ("block_c.1.layers.1.1.weight", (256, 1, 3, 3)),
    ("block_c.1.layers.1.1.bias", (256,)),
    ("block_c.1.layers.1.2.weight", (256,)),
    ("block_c.1.layers.1.2.bias", (256,)),
    ("block_c.1.layers.2.weight", (256, 256, 1, 1)),
    ("block_c.1.layers.3.weight", (256,)),
    ("block_c.1.layers.3.bias", (256,)),
    ("block_c.2.layers.0.1.weight", (512, 256, 1, 1)),
    ("block_c.2.layers.0.2.weight", (512,)),
    ("block_c.2.layers.0.2.bias", (512,)),
    ("block_c.2.layers.1.1.weight", (512, 1, 3, 3)),
    ("block_c.2.layers.1.1.bias", (512,)),
    ("block_c.2.layers.1.2.weight", (512,)),
    ("block_c.2.layers.1.2.bias", (512,)),
    ("block_c.2.layers.2.weight", (256, 512, 1, 1)),
    ("block_c.2.layers.3.weight", (256,)),
    ("block_c.2.layers.3.bias", (256,)),
    ("block_c.3.layers.0.1.weight", (512, 256, 1, 1)),
    ("block_c.3.layers.0.2.weight", (512,)),
    ("block_c.3.layers.0.2.bias", (512,)),
    ("block_c.3.layers.1.1.weight", (512, 1, 3, 3)),
    ("block_c.3.layers.1.1.bias", (512,)),
    ("block_c.3.layers.1.2.weight", (512,)),
    ("block_c.3.layers.1.2.bias", (512,)),
    ("block_c.3.layers.2.weight", (256, 512, 1, 1)),
    ("block_c.3.layers.3.weight", (256,)),
    ("block_c.3.layers.3.bias", (256,)),
    ("block_c.4.layers.0.1.weight", (512, 256, 1, 1)),
    ("block_c.4.layers.0.2.weight", (512,)),
    ("block_c.4.layers.0.2.bias", (512,)),
    ("block_c.4.layers.1.1.weight", (512, 1, 3, 3)),
    ("block_c.4.layers.1.1.bias", (512,)),
    ("block_c.4.layers.1.2.weight", (512,)),
    ("block_c.4.layers.1.2.bias", (512,)),
    ("block_c.4.layers.2.weight", (256, 512, 1, 1)),
    ("block_c.4.layers.3.weight", (256,)),
    ("block_c.4.layers.3.bias", (256,)),
    ("block_c.5.1.weight", (128, 256, 3, 3)),
    ("block_c.5.2.weight", (128,)),
    ("block_c.5.2.bias", (128,)),
    ("block_d.0.1.weight", (128, 128, 3, 3)),
    ("block_d.0.2.weight", (128,)),
    ("block_d.0.2.bias", (128,)),
    ("block_d.1.1.weight", (128, 128, 3, 3)),
    ("block_d.1.2.weight", (128,)),
    ("block_d.1.2.bias", (128,)),
    ("block_e.0.1.weight", (64, 128, 3, 3)),
    ("block_e.0.2.weight", (64,)),
    ("block_e.0.2.bias", (64,)),
    ("block_e.1.1.weight", (64, 64, 3, 3)),
    ("block_e.1.2.weight", (64,)),
    ("block_e.1.2.bias", (64,)),
    ("block_e.2.1.weight", (32, 64, 7, 7)),
    ("block_e.2.2.weight", (32,)),
    ("block_e.2.2.bias", (32,)),
    ("out_layer.0.weight", (3, 32, 1, 1)),
)


@dataclass(frozen=True)
class PublishedWeights:
    name: str
    url: str
    git_blob_sha1: str  # what `git hash-object FILE` prints
    trained_on: str
    license_note: str


PUBLISHED: Final[tuple[PublishedWeights, ...]] = (
    PublishedWeights(
        name="face_paint_512_v2",
        url="https://github.com/bryandlee/animegan2-pytorch/raw/main/weights/face_paint_512_v2.pt",
        git_blob_sha1="d75102f8f201ddaf8dbe6b913b1a97585b55f838",
        trained_on="512x512 faces",
        license_note="code MIT; no separate weight licence stated",
    ),
    PublishedWeights(
        name="face_paint_512_v1",
        url="https://github.com/bryandlee/animegan2-pytorch/raw/main/weights/face_paint_512_v1.pt",
        git_blob_sha1="19c1a1da4d9580186109a2b055d91044e5127de6",
        trained_on="512x512 faces",
        license_note="code MIT; no separate weight licence stated",
    ),
    PublishedWeights(
        name="celeba_distill",
        url="https://github.com/bryandlee/animegan2-pytorch/raw/main/weights/celeba_distill.pt",
        git_blob_sha1="3b7ea61b02254980831cc3bc77af30666dbc999c",
        trained_on="256x256 CelebA-HQ faces (distilled webtoon style)",
        license_note="code MIT; no separate weight licence stated",
    ),
    PublishedWeights(
        name="paprika",
        url="https://github.com/bryandlee/animegan2-pytorch/raw/main/weights/paprika.pt",
        git_blob_sha1="58086c9db9fc7a9e5c2876ca31b8079599352643",
        trained_on="scenes; converted from the TF AnimeGANv2 Paprika checkpoint",
        license_note="AnimeGANv2 terms: non-commercial use only",
    ),
)


def layout() -> dict[str, tuple[int, ...]]:
    """Key → shape of the published generator's state dict."""
    return dict(TENSORS)


def published(name: str) -> PublishedWeights | None:
    return next((w for w in PUBLISHED if w.name == name), None)


def by_git_sha1(digest: str) -> PublishedWeights | None:
    digest = digest.lower()
    return next((w for w in PUBLISHED if w.git_blob_sha1 == digest), None)


@dataclass(frozen=True)
class FileDigests:
    """Both SHA-1s of one file, computed in a single pass."""

    git_blob_sha1: str  # sha1(b"blob <len>\0" + bytes), as git and the publisher list it
    sha1: str  # plain sha1 of the bytes, as `sha1sum` prints it
    sha256: str
    size: int


def file_digests(path: Path, chunk: int = 1 << 20) -> FileDigests:
    size = path.stat().st_size
    git = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
    plain = hashlib.sha1(usedforsecurity=False)
    strong = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            git.update(block)
            plain.update(block)
            strong.update(block)
    return FileDigests(git.hexdigest(), plain.hexdigest(), strong.hexdigest(), size)


def git_blob_sha1(data: bytes) -> str:
    header = b"blob %d\0" % len(data)
    return hashlib.sha1(header + data, usedforsecurity=False).hexdigest()
