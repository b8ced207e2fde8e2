"""How close each style's output looks to its teacher: pixel, structure and texture measures.

    python bench/look.py [--style hayao shinkai] [--candidate hayao=runs/hayao_gan/best.pt]
                         [--ref HEAD~3] [--seeds 3] [--quick]

Per style, on the held-out (validation) pairs of its split, at long side <= 1280 px, for
the photo itself (identity), the served model, any `--ref` revision's served model and any
`--candidate` (a model folder, an .onnx file or a training checkpoint .pt), in one run:

- PSNR and SSIM against the teacher (colour and local structure);
- GMSD (gradient magnitude similarity deviation, Xue et al. 2014): where edges differ from
  the teacher's, lower is closer;
- texture distance: Gram matrices of a fixed, seeded, multi-scale random conv net (images at
  1, 1/2 and 1/4 scale), each layer's distance divided by the norm of the teacher's Gram matrix,
  averaged: alignment-free, so strokes drawn a few pixels off still count as strokes. These
  uncentred Gram matrices also carry each image's colour grade and contrast, so the table adds
  "tone-free": the same distance after the best per-channel gain and offset (least squares
  against the teacher) is applied to the output, which isolates texture from global tone;
- two-sample accuracy: a small patch CNN is trained with a fixed protocol (seeded, fixed
  steps) to tell the model's 96 px crops from the teacher's on the *training* photos, then
  scored on crops of the validation photos at the same positions in both; 50% means it cannot
  tell them apart, 100% means every crop gives the model away. Mean over `--seeds` runs.

Model outputs are JPEG-encoded (q95, 4:4:4) before any measure, exactly as the pairs were, so
the classifier cannot tell the teacher by its JPEG blocks. Lower is better for GMSD, texture
and two-sample accuracy; higher for PSNR and SSIM. Needs torch (the training extras).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() not in (HERE, ROOT)]

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models import WEIGHTS_DIR
from models.export import fit, run_onnx, session
from models.losses import RandomFeatures, gram
from models.metrics import psnr, ssim
from models.pairs import pairs_dir
from models.train import STYLE_SOURCES, read_rgb

RGB = np.ndarray
Stylize = Callable[[RGB], RGB]
CROP = 96
MAX_SIDE = 1280


# ---------------------------------------------------------------- measures


def gmsd(a: RGB, b: RGB) -> float:
    """Gradient magnitude similarity deviation on luma, after the standard 2x2 average and
    downsampling; c = 170 for 8-bit images (Xue et al. 2014)."""

    def prep(x: RGB) -> np.ndarray:
        y = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float64)
        y = cv2.blur(y, (2, 2), borderType=cv2.BORDER_REPLICATE)
        return np.asarray(y[::2, ::2])

    hx = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], np.float64) / 3
    ra, rb = prep(a), prep(b)

    def mag(y: np.ndarray) -> np.ndarray:
        gx = cv2.filter2D(y, -1, hx, borderType=cv2.BORDER_REPLICATE)
        gy = cv2.filter2D(y, -1, hx.T, borderType=cv2.BORDER_REPLICATE)
        return np.asarray(np.sqrt(gx * gx + gy * gy))

    ma, mb = mag(ra), mag(rb)
    c = 170.0
    gms = (2 * ma * mb + c) / (ma * ma + mb * mb + c)
    return float(np.std(gms))


class TextureMeter:
    """Relative Gram distance of a seeded random conv net at three image scales."""

    def __init__(self, seed: int = 7) -> None:
        self.net = RandomFeatures(seed=seed, widths=(32, 64, 96, 128)).eval()

    @torch.no_grad()
    def grams(self, rgb: RGB) -> list[torch.Tensor]:
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1
        out = []
        for scale in (1, 2, 4):
            xs = F.avg_pool2d(x, scale) if scale > 1 else x
            out.extend(gram(f)[0] for f in self.net(xs))
        return out

    def distance(self, rgb: RGB, teacher: list[torch.Tensor]) -> float:
        mine = self.grams(rgb)
        return float(
            np.mean([float((g - t).norm() / t.norm()) for g, t in zip(mine, teacher, strict=True)])
        )


class PatchCritic(nn.Module):
    """The two-sample classifier: four stride-2 convs and a global average, about 0.2 M params."""

    def __init__(self) -> None:
        super().__init__()
        chans = (3, 32, 64, 128, 128)
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(chans):
            layers += [nn.Conv2d(a, b, 3, 2, 1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.out = nn.Linear(chans[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h: torch.Tensor = self.features(x).mean(dim=(2, 3))
        return torch.as_tensor(self.out(h)[:, 0])


def random_crops(
    images: Sequence[RGB], n: int, rng: np.random.Generator
) -> list[tuple[int, int, int]]:
    """(image index, y, x) of n crops, images drawn in proportion to their area."""
    areas = np.array([im.shape[0] * im.shape[1] for im in images], np.float64)
    picks = rng.choice(len(images), size=n, p=areas / areas.sum())
    out = []
    for i in picks:
        h, w = images[i].shape[:2]
        out.append((int(i), int(rng.integers(h - CROP + 1)), int(rng.integers(w - CROP + 1))))
    return out


def batch(images: Sequence[RGB], where: Sequence[tuple[int, int, int]]) -> torch.Tensor:
    arr = np.stack([images[i][y : y + CROP, x : x + CROP] for i, y, x in where])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1


def two_sample_accuracy(
    train_model: Sequence[RGB],
    train_teacher: Sequence[RGB],
    val_model: Sequence[RGB],
    val_teacher: Sequence[RGB],
    seed: int,
    steps: int,
) -> float:
    """Fixed protocol: seeded init and crops, Adam 1e-3, `steps` steps of 32 + 32 crops with
    flips; accuracy on 256 + 256 validation crops at the same positions in both sets."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    critic = PatchCritic()
    optim = torch.optim.Adam(critic.parameters(), lr=1e-3)
    for _ in range(steps):
        fake = batch(train_model, random_crops(train_model, 32, rng))
        real = batch(train_teacher, random_crops(train_teacher, 32, rng))
        x = torch.cat([fake, real])
        if rng.random() < 0.5:
            x = x.flip(3)
        labels = torch.cat([torch.zeros(32), torch.ones(32)])
        loss = F.binary_cross_entropy_with_logits(critic(x), labels)
        optim.zero_grad()
        loss.backward()
        optim.step()
    where = random_crops(val_teacher, 256, np.random.default_rng(10_000 + seed))
    with torch.no_grad():
        fake_right = (critic(batch(val_model, where)) < 0).float().mean()
        real_right = (critic(batch(val_teacher, where)) > 0).float().mean()
    return float((fake_right + real_right) / 2)


# ---------------------------------------------------------------- models


def jpeg_roundtrip(rgb: RGB) -> RGB:
    """As the pairs were stored: JPEG q95 with 4:4:4 chroma."""
    params = [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, 0x111111]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def onnx_stylizer(folder_or_file: Path) -> tuple[Stylize, dict[str, object]]:
    if folder_or_file.is_dir():
        meta = json.loads((folder_or_file / "model.json").read_text())
        path = folder_or_file / meta["files"][meta["serve"]]
    else:
        path = folder_or_file
        meta = json.loads((path.parent / "model.json").read_text())
    sess = session(path, threads=1)
    multiple = int(meta["multiple"])
    return (lambda rgb: run_onnx(sess, rgb, multiple)), meta


def checkpoint_stylizer(path: Path) -> tuple[Stylize, dict[str, object]]:
    from models.student import Student, StudentConfig
    from models.train import stylize

    torch.set_num_threads(1)
    state = torch.load(path, weights_only=False)
    model = Student(StudentConfig.from_dict(state["config"]))
    model.load_state_dict(state["model"])
    model.eval()
    meta = {"split": state["split"], "trained_from": state["style"]}
    return (lambda rgb: stylize(model, rgb)), meta


def load_stylizer(path: Path) -> tuple[Stylize, dict[str, object]]:
    return checkpoint_stylizer(path) if path.suffix == ".pt" else onnx_stylizer(path)


def revision_folder(rev: str, style: str, into: Path) -> Path | None:
    """The style's served folder as it was at git revision `rev`, written under `into`."""
    folder = into / f"{style}@{rev}"
    base = f"models/weights/{style}"
    try:
        raw = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:{base}/model.json"],
            capture_output=True,
            check=True,
        ).stdout
    except subprocess.CalledProcessError:
        return None
    meta = json.loads(raw)
    folder.mkdir(parents=True)
    (folder / "model.json").write_bytes(raw)
    name = meta["files"][meta["serve"]]
    blob = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:{base}/{name}"], capture_output=True, check=True
    ).stdout
    (folder / name).write_bytes(blob)
    return folder


# ---------------------------------------------------------------- report


@dataclass
class Row:
    name: str
    psnr: float
    ssim: float
    gmsd: float
    texture: float
    tone_free: float
    two_sample: float
    two_sample_spread: float


def tone_matched(out: RGB, teacher: RGB) -> RGB:
    """`out` after the per-channel gain and offset that bring it closest to `teacher`."""
    o = out.reshape(-1, 3).astype(np.float64)
    t = teacher.reshape(-1, 3).astype(np.float64)
    fitted = np.empty_like(o)
    for c in range(3):
        design = np.stack([o[:, c], np.ones(len(o))], axis=1)
        coef, *_ = np.linalg.lstsq(design, t[:, c], rcond=None)
        fitted[:, c] = design @ coef
    return np.clip(fitted.reshape(out.shape).round(), 0, 255).astype(np.uint8)


def images_of(style: str, ids: Sequence[str]) -> list[tuple[RGB, RGB]]:
    folder = pairs_dir() / STYLE_SOURCES[style][0]
    out = []
    for pid in ids:
        photo = fit(read_rgb(folder / f"{pid}_photo.jpg"), MAX_SIDE)
        anime = fit(read_rgb(folder / f"{pid}_anime.jpg"), MAX_SIDE)
        out.append((photo, anime))
    return out


def score(
    name: str,
    stylize: Stylize | None,
    train: list[tuple[RGB, RGB]],
    val: list[tuple[RGB, RGB]],
    meter: TextureMeter,
    teacher_grams: list[list[torch.Tensor]],
    seeds: int,
    steps: int,
) -> Row:
    def run(photo: RGB) -> RGB:
        return photo if stylize is None else jpeg_roundtrip(stylize(photo))

    val_out = [run(p) for p, _ in val]
    train_out = [run(p) for p, _ in train]
    accs = [
        two_sample_accuracy(
            train_out, [a for _, a in train], val_out, [a for _, a in val], seed, steps
        )
        for seed in range(seeds)
    ]
    return Row(
        name,
        float(np.mean([psnr(o, a) for o, (_, a) in zip(val_out, val, strict=True)])),
        float(np.mean([ssim(o, a) for o, (_, a) in zip(val_out, val, strict=True)])),
        float(np.mean([gmsd(o, a) for o, (_, a) in zip(val_out, val, strict=True)])),
        float(np.mean([meter.distance(o, g) for o, g in zip(val_out, teacher_grams, strict=True)])),
        float(
            np.mean(
                [
                    meter.distance(tone_matched(o, a), g)
                    for o, (_, a), g in zip(val_out, val, teacher_grams, strict=True)
                ]
            )
        ),
        float(np.mean(accs)),
        float(np.max(accs) - np.min(accs)) if len(accs) > 1 else 0.0,
    )


def table(style: str, n_val: int, n_train: int, rows: Sequence[Row]) -> str:
    served = next((r for r in rows if r.name == "served"), None)
    lines = [
        f"\n## {style}: {n_val} validation / {n_train} training pairs",
        "| model | PSNR dB | SSIM | GMSD | texture | x served | tone-free | 2-sample acc "
        "| spread |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r.texture / served.texture:.2f}" if served else "-"
        lines.append(
            f"| {r.name} | {r.psnr:.2f} | {r.ssim:.3f} | {r.gmsd:.4f} | {r.texture:.4f} | "
            f"{ratio} | {r.tone_free:.4f} | {100 * r.two_sample:.1f}% | "
            f"{100 * r.two_sample_spread:.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--style", nargs="*", help="styles (default: every served scene style)")
    ap.add_argument(
        "--candidate",
        action="append",
        default=[],
        metavar="STYLE=PATH",
        help="a model folder, .onnx or training checkpoint .pt to compare (repeatable)",
    )
    ap.add_argument(
        "--ref", action="append", default=[], help="also score the served model of git rev REV"
    )
    ap.add_argument("--seeds", type=int, default=3, help="two-sample runs (different seeds)")
    ap.add_argument("--steps", type=int, default=600, help="two-sample training steps")
    ap.add_argument("--quick", action="store_true", help="1 seed, 150 steps (a smoke test)")
    ap.add_argument("--max-train", type=int, default=24, help="training photos for the test")
    a = ap.parse_args(argv)
    if not pairs_dir().is_dir():
        print(f"no pairs under {pairs_dir()}: ../shared is needed", file=sys.stderr)
        return 2
    seeds, steps = (1, 150) if a.quick else (a.seeds, a.steps)
    torch.set_num_threads(2)
    candidates: dict[str, list[Path]] = {}
    for spec in a.candidate:
        style, _, path = spec.partition("=")
        candidates.setdefault(style, []).append(Path(path))
    styles = a.style or sorted(
        p.name
        for p in WEIGHTS_DIR.iterdir()
        if (p / "model.json").is_file()
        and json.loads((p / "model.json").read_text()).get("kind") == "scene"
    )
    meter = TextureMeter()
    print(f"# look: {seeds} seed(s) x {steps} steps, crops {CROP} px, long side <= {MAX_SIDE}")
    with tempfile.TemporaryDirectory() as tmp:
        for style in styles:
            t0 = time.perf_counter()
            models: list[tuple[str, Stylize | None]] = [("photo (identity)", None)]
            split: dict[str, list[str]] | None = None
            if (WEIGHTS_DIR / style / "model.json").is_file():
                fn, meta = onnx_stylizer(WEIGHTS_DIR / style)
                models.append(("served", fn))
                split = meta["split"]  # type: ignore[assignment]
            for rev in a.ref:
                folder = revision_folder(rev, style, Path(tmp))
                if folder is not None:
                    models.append((f"served@{rev}", onnx_stylizer(folder)[0]))
            for path in candidates.get(style, []):
                fn, meta = load_stylizer(path)
                models.append((str(path), fn))
                split = split or meta["split"]  # type: ignore[assignment]
            if split is None:
                print(f"\n## {style}: no served model and no candidate", file=sys.stderr)
                continue
            val = images_of(style, split["val"])
            train = images_of(style, split["train"][: a.max_train])
            teacher_grams = [meter.grams(anime) for _, anime in val]
            rows = [
                score(name, fn, train, val, meter, teacher_grams, seeds, steps)
                for name, fn in models
            ]
            print(table(style, len(val), len(train), rows))
            print(f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
