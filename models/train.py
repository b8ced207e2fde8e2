"""Distil a student generator from the aligned photo/anime pairs.

    python -m models.train --style hayao --minutes 60 --out runs/hayao

Resumable: rerunning with the same --out continues from runs/<style>/last.pt. Every
--val-every steps the model is scored at full resolution on the held-out pairs (PSNR/SSIM against
the teacher, next to the identity baseline: the photo itself against the teacher) and the best
checkpoint is kept as best.pt. Training log: <out>/train.log; metrics: <out>/metrics.jsonl.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from core.session import thumbnail
from models.critic import (
    MultiScaleCritic,
    augment_together,
    critic_loss,
    feature_matching,
    generator_loss,
)
from models.losses import DistillLoss, WholeImageStyle
from models.metrics import psnr, ssim
from models.pairs import Pair, _thumbnail, load_pairs, pairs_dir, split_pairs
from models.student import Student, StudentConfig, count_parameters

# Styles we train: the pair folder, and which shared test photos the validation must keep unseen.
STYLE_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "hayao": ("hayao", ()),
    "shinkai": ("shinkai", ()),
    "face_kpop": ("portrait_kpop", ("data/a/0.jpg", "data/a/3.jpg")),
    "face_arcane": ("portrait_arcane", ("data/a/0.jpg", "data/a/3.jpg")),
    # The AnimeGANv2 teacher: the same photos in all three scene styles, so one seed gives
    # all three the same validation photos (split by photo, not by pair).
    "paprika": ("v2_paprika", ()),
    "hayao_v2": ("v2_hayao", ()),
    "shinkai_v2": ("v2_shinkai", ()),
    "face_anime": ("v2_celeba_distill", ()),
}


@dataclass
class Options:
    style: str
    out: Path
    minutes: float
    steps: int
    batch: int
    crop: int
    scale_min: float
    scale_max: float
    lr: float
    w_grad: float
    w_colour: float
    w_gram: float
    w_ssim: float
    val_every: int
    val_fraction: float
    val_max_side: int
    seed: int
    threads: int
    widths: tuple[int, int, int]
    blocks: int
    expansion: int
    refine: int = 0
    context: int = 0
    overview: int = 0
    linear_up: int = StudentConfig().linear_up
    half_refine: int = 0
    ema: float = 0.0
    init: Path | None = None
    # Adversarial distillation (models/critic.py); 0 = pixel losses only.
    w_adv: float = 0.0
    w_fm: float = 1.0
    d_lr: float = 2e-4
    d_width: int = 32
    unpaired: int = 0  # crops per step of unpaired photos (adversarial term only)
    unpaired_photos: int = 0  # use only the first N unpaired photos (0: all; tests)
    # Whole-photo statistics term (models/losses.WholeImageStyle); 0 = off.
    w_whole: float = 0.0
    whole_side: int = 512
    # Frequency split (models/losses.DistillLoss): pixel terms on blurred images, lines apart.
    w_ink: float = 0.0
    blur: float = 0.0


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class CropSampler:
    """Random aligned crops at a random scale with horizontal flips. Only geometric
    augmentation: any colour change would have to be applied through the teacher, which we
    cannot run, so colours stay exactly as the pairs show them."""

    def __init__(self, pairs: list[Pair], opts: Options, rng: np.random.Generator) -> None:
        self.images = [(read_rgb(p.photo), read_rgb(p.anime)) for p in pairs]
        # What serving gives an overview model with every tile: the whole photo's thumbnail.
        self.thumbs = [thumbnail(photo)[0] for photo, _ in self.images]
        self.opts, self.rng = opts, rng

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        o = self.opts
        xs, ys, ts = [], [], []
        for _ in range(o.batch):
            index = int(self.rng.integers(len(self.images)))
            (photo, anime), thumb = self.images[index], self.thumbs[index]
            h, w = photo.shape[:2]
            lo = max(o.scale_min, o.crop / min(h, w))
            scale = float(self.rng.uniform(lo, max(lo, o.scale_max)))
            nh, nw = max(o.crop, round(h * scale)), max(o.crop, round(w * scale))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
            p = cv2.resize(photo, (nw, nh), interpolation=interp)
            a = cv2.resize(anime, (nw, nh), interpolation=interp)
            y0 = int(self.rng.integers(nh - o.crop + 1))
            x0 = int(self.rng.integers(nw - o.crop + 1))
            p = p[y0 : y0 + o.crop, x0 : x0 + o.crop]
            a = a[y0 : y0 + o.crop, x0 : x0 + o.crop]
            if self.rng.random() < 0.5:
                p, a, thumb = p[:, ::-1], a[:, ::-1], thumb[:, :, ::-1]
            xs.append(p)
            ys.append(a)
            ts.append(thumb)
        return np.stack(xs), np.stack(ys), np.ascontiguousarray(np.stack(ts))


class WholeSampler:
    """One whole training pair per step, downscaled to a long side of `side` (to a multiple of
    4), randomly flipped: what the whole-photo statistics term compares."""

    def __init__(self, pairs: list[Pair], side: int, rng: np.random.Generator) -> None:
        self.images = []
        for p in pairs:
            photo, anime = read_rgb(p.photo), read_rgb(p.anime)
            h, w = photo.shape[:2]
            s = min(1.0, side / max(h, w))
            size = (max(4, round(w * s) // 4 * 4), max(4, round(h * s) // 4 * 4))
            small = [cv2.resize(i, size, interpolation=cv2.INTER_AREA) for i in (photo, anime)]
            self.images.append((small[0], small[1], thumbnail(photo)[0]))
        self.rng = rng

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        photo, anime, thumb = self.images[int(self.rng.integers(len(self.images)))]
        if self.rng.random() < 0.5:
            photo, anime, thumb = photo[:, ::-1], anime[:, ::-1], thumb[:, :, ::-1]
        return photo[None], anime[None], np.ascontiguousarray(thumb[None])


class UnpairedSampler:
    """Random crops of photos with no target: the adversarial term needs none, so every photo
    side of every pair folder teaches the generator what a drawing of a photo looks like, which
    is far more variety than the style's own few dozen pairs. Photos that look like one of the
    style's validation photos (the same scene in another style's folder) are left out, so
    validation stays unseen. The shared test photos (data/photos) are left out too: the README
    examples are made from them and say so."""

    def __init__(
        self,
        exclude: list[Pair],
        crop: int,
        count: int,
        rng: np.random.Generator,
        limit: int = 0,
    ) -> None:
        held_out = [_thumbnail(p.photo) for p in exclude]
        self.images: list[np.ndarray] = []
        self.thumbs: list[np.ndarray] = []
        for path in sorted(pairs_dir().glob("*/*_photo.jpg")):
            if limit and len(self.images) >= limit:
                break
            t = _thumbnail(path)
            if any(float(t @ h) / t.size > 0.6 for h in held_out):
                continue
            photo = read_rgb(path)
            if min(photo.shape[:2]) < crop:
                continue
            self.images.append(photo)
            self.thumbs.append(thumbnail(photo)[0])
        self.crop, self.count, self.rng = crop, count, rng

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        xs, ts = [], []
        for _ in range(self.count):
            i = int(self.rng.integers(len(self.images)))
            photo, thumb = self.images[i], self.thumbs[i]
            h, w = photo.shape[:2]
            y0 = int(self.rng.integers(h - self.crop + 1))
            x0 = int(self.rng.integers(w - self.crop + 1))
            p = photo[y0 : y0 + self.crop, x0 : x0 + self.crop]
            if self.rng.random() < 0.5:
                p, thumb = p[:, ::-1], thumb[:, :, ::-1]
            xs.append(p)
            ts.append(thumb)
        return np.stack(xs), np.ascontiguousarray(np.stack(ts))


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float()
    return t / 127.5 - 1.0


def to_uint8(t: torch.Tensor) -> np.ndarray:
    arr = ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return np.asarray(arr)


def pad_to_multiple(img: np.ndarray, multiple: int) -> np.ndarray:
    h, w = img.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    return cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_REFLECT_101) if ph or pw else img


@torch.no_grad()
def stylize(model: Student, photo: np.ndarray) -> np.ndarray:
    h, w = photo.shape[:2]
    x = to_tensor(pad_to_multiple(photo, model.multiple)[None])
    return to_uint8(model(x, torch.from_numpy(thumbnail(photo))))[0, :h, :w]


def validation_images(pairs: list[Pair], max_side: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for p in pairs:
        photo, anime = read_rgb(p.photo), read_rgb(p.anime)
        s = min(1.0, max_side / max(photo.shape[:2]))
        if s < 1:
            size = (round(photo.shape[1] * s), round(photo.shape[0] * s))
            photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
            anime = cv2.resize(anime, size, interpolation=cv2.INTER_AREA)
        out.append((p.id, photo, anime))
    return out


def evaluate(model: Student, images: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, float]:
    model.eval()
    m_psnr, m_ssim, i_psnr, i_ssim = [], [], [], []
    for _, photo, anime in images:
        out = stylize(model, photo)
        m_psnr.append(psnr(out, anime))
        m_ssim.append(ssim(out, anime))
        i_psnr.append(psnr(photo, anime))
        i_ssim.append(ssim(photo, anime))
    model.train()
    return {
        "psnr": float(np.mean(m_psnr)),
        "ssim": float(np.mean(m_ssim)),
        "identity_psnr": float(np.mean(i_psnr)),
        "identity_ssim": float(np.mean(i_ssim)),
    }


def lr_at(step: int, total: int, base: float) -> float:
    warm = min(200, total // 20)
    if step < warm:
        return base * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return 1e-2 * base + (base - 1e-2 * base) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def load_init(path: Path) -> tuple[StudentConfig, dict[str, torch.Tensor], str]:
    """Weights to start from: a training checkpoint (.pt) or a committed model's fp32 ONNX file,
    whose initializers keep the PyTorch parameter names (so a served model can be fine-tuned
    without the run folder that produced it)."""
    if path.suffix == ".onnx":
        import onnx
        from onnx import numpy_helper

        meta = json.loads((path.parent / "model.json").read_text())
        graph = onnx.load(str(path)).graph
        weights = {
            i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer
        }
        return (
            StudentConfig.from_dict(meta["config"]),
            weights,
            f"{path} (step {meta.get('training_step', '?')})",
        )
    start = torch.load(path, weights_only=False)
    desc = f"{path} (step {start['step']} of {start['style']})"
    return StudentConfig.from_dict(start["config"]), start["model"], desc


def grows(source: StudentConfig, target: StudentConfig) -> bool:
    """Whether `target` is `source` plus zero-initialised refinement, context or overview
    layers."""
    grown = replace(
        source,
        refine=target.refine,
        half_refine=target.half_refine,
        overview=max(source.overview, target.overview),
    )
    if source.context == 0:
        grown = replace(grown, context=target.context, context_width=target.context_width)
    return (
        grown == target
        and source.refine <= target.refine
        and source.half_refine <= target.half_refine
    )


def sheds(source: StudentConfig, target: StudentConfig) -> bool:
    """Whether `target` is `source` without its last refinement blocks: the latency lever
    (each full-resolution block is about a tenth of a 512 px pass). The blocks are residual,
    so what is left still computes a close image; a fine-tune recovers the rest."""
    return target.refine < source.refine and replace(source, refine=target.refine) == target


DEEP_BRANCH = ("down2.", "body.", "context.", "up2.")


def revives(source: StudentConfig, target: StudentConfig) -> bool:
    """Whether `target` gives `source` a fresh deep branch (any blocks, expansion, context).

    In the old layout (linear_up 0) the deepest Up's ReLU never fired in any trained model, so
    the quarter-resolution branch added nothing to the output. Behind a linear Up that starts
    at zero, a new branch starts adding nothing too, while the rest of the network loads as
    it is; unlike the dead one, it gets gradients."""
    if source.linear_up != 0 or target.linear_up != 1:
        return False
    keeps = replace(
        target,
        blocks=source.blocks,
        expansion=source.expansion,
        context=source.context,
        context_width=source.context_width,
        linear_up=0,
    )
    return grows(source, keeps)


def init_weights(
    source: StudentConfig, target: StudentConfig, weights: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The source weights a grown, revived or shed `target` loads (non-strictly)."""
    if revives(source, target):
        return {k: v for k, v in weights.items() if not k.startswith(DEEP_BRANCH)}
    if sheds(source, target):
        dropped = tuple(f"refine.{i}." for i in range(target.refine, source.refine))
        return {k: v for k, v in weights.items() if not k.startswith(dropped)}
    return weights


def save(path: Path, **state: object) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def train(opts: Options) -> dict[str, object]:
    torch.set_num_threads(opts.threads)
    random.seed(opts.seed)
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    folder, prefer_val = STYLE_SOURCES[opts.style]
    train_pairs, val_pairs = split_pairs(
        load_pairs(folder), opts.val_fraction, seed=opts.seed, prefer_val=prefer_val
    )
    opts.out.mkdir(parents=True, exist_ok=True)
    log = (opts.out / "train.log").open("a")
    metrics_log = (opts.out / "metrics.jsonl").open("a")

    def say(msg: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        tqdm.write(line)
        log.write(line + "\n")
        log.flush()

    config = StudentConfig(
        opts.widths,
        opts.blocks,
        opts.expansion,
        opts.refine,
        opts.context,
        overview=opts.overview,
        linear_up=opts.linear_up,
        half_refine=opts.half_refine,
    )
    model = Student(config)
    optim = torch.optim.Adam(model.parameters(), lr=opts.lr)
    criterion = DistillLoss(
        opts.w_grad, opts.w_colour, opts.w_gram, opts.w_ssim, w_ink=opts.w_ink, blur=opts.blur
    )
    critic = MultiScaleCritic(opts.d_width) if opts.w_adv > 0 else None
    whole_style = WholeImageStyle() if opts.w_whole > 0 else None
    d_optim = (
        torch.optim.Adam(critic.parameters(), lr=opts.d_lr, betas=(0.5, 0.999))
        if critic is not None
        else None
    )
    step, elapsed, best = 0, 0.0, -1.0
    last = opts.out / "last.pt"
    fresh_init = opts.init is not None and not last.exists()
    if opts.init is not None and fresh_init:
        source, weights, desc = load_init(opts.init)
        if not (grows(source, config) or revives(source, config) or sheds(source, config)):
            raise SystemExit(f"--init {opts.init} has another architecture: {source.to_dict()}")
        weights = init_weights(source, config, weights)
        # Added refinement or context blocks, or a fresh deep branch behind a zero linear Up,
        # change nothing at first: the network computes what it did, so a fine-tune starts
        # from the source's validation score.
        model.load_state_dict(weights, strict=source == config)
        say(f"initialised from {desc}")
    # An exponential moving average of the weights, when asked for, is what gets scored and
    # kept: with 20-odd training photos the raw weights wander from step to step.
    ema, scored = None, model
    if opts.ema:
        average = get_ema_multi_avg_fn(opts.ema)  # type: ignore[no-untyped-call]
        ema = AveragedModel(model, multi_avg_fn=average)
        assert isinstance(ema.module, Student)
        scored = ema.module
    if last.exists():
        state = torch.load(last, weights_only=False)
        model.load_state_dict(state["model"])
        if ema is not None and "ema" in state:
            ema.load_state_dict(state["ema"])
        optim.load_state_dict(state["optim"])
        if critic is not None and d_optim is not None and "critic" in state:
            critic.load_state_dict(state["critic"])
            d_optim.load_state_dict(state["d_optim"])
        step, elapsed, best = state["step"], state["elapsed"], state["best"]
        rng = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        say(f"resumed at step {step} ({elapsed / 60:.1f} min)")
    split = {"train": [p.id for p in train_pairs], "val": [p.id for p in val_pairs]}
    (opts.out / "split.json").write_text(json.dumps(split, indent=1))
    say(
        f"style={opts.style} params={count_parameters(model)} threads={opts.threads} "
        f"config={config.to_dict()} "
        f"train={len(train_pairs)} val={len(val_pairs)} {split['val']}"
    )
    sampler = CropSampler(train_pairs, opts, rng)
    whole = WholeSampler(train_pairs, opts.whole_side, rng) if whole_style is not None else None
    unpaired = (
        UnpairedSampler(val_pairs, opts.crop, opts.unpaired, rng, opts.unpaired_photos)
        if critic is not None and opts.unpaired > 0
        else None
    )
    if unpaired is not None:
        say(f"unpaired photos for the adversarial term: {len(unpaired.images)}")
    val_images = validation_images(val_pairs, opts.val_max_side)
    if fresh_init:
        # The start point competes for best.pt: a fine-tune that never beats it keeps it, and
        # `--steps 0` re-packages a model in a new layout (a pruned one, say) for export.
        scores = evaluate(model, val_images)
        say(f"start: val PSNR {scores['psnr']:.2f} dB SSIM {scores['ssim']:.4f}")
        best = scores["psnr"]
        common = {"config": config.to_dict(), "style": opts.style, "step": 0, "split": split}
        save(opts.out / "best.pt", model=model.state_dict(), scores=scores, **common)
    budget = opts.minutes * 60
    bar = tqdm(total=opts.steps, initial=step, desc=opts.style, unit="step", dynamic_ncols=True)
    running: dict[str, float] = {}
    model.train()
    while step < opts.steps and elapsed < budget:
        t0 = time.perf_counter()
        x_np, y_np, thumbs = sampler.sample()
        x, y, t = to_tensor(x_np), to_tensor(y_np), torch.from_numpy(thumbs)
        for group in optim.param_groups:
            group["lr"] = lr_at(step, opts.steps, opts.lr)
        out = model(x, t)
        loss, parts = criterion(out, y)
        if critic is not None and d_optim is not None:
            extra = adversarial_step(critic, d_optim, model, x, y, t, out, unpaired, opts, parts)
            loss = loss + extra
        if whole is not None and whole_style is not None:
            xw, yw, tw = whole.sample()
            term = whole_style(model(to_tensor(xw), torch.from_numpy(tw)), to_tensor(yw))
            parts["whole"] = float(term.detach())
            loss = loss + opts.w_whole * term
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        if ema is not None:
            ema.update_parameters(model)
        step += 1
        elapsed += time.perf_counter() - t0
        for k, v in parts.items():
            running[k] = 0.98 * running.get(k, v) + 0.02 * v
        bar.update(1)
        bar.set_postfix({k: f"{v:.4f}" for k, v in running.items()})
        if step % opts.val_every == 0 or step >= opts.steps or elapsed >= budget:
            scores = evaluate(scored, val_images)
            record = {"step": step, "minutes": round(elapsed / 60, 2), **running, **scores}
            metrics_log.write(json.dumps(record) + "\n")
            metrics_log.flush()
            say(
                f"step {step} ({elapsed / 60:.1f} min) val PSNR {scores['psnr']:.2f} dB "
                f"SSIM {scores['ssim']:.4f} | identity {scores['identity_psnr']:.2f} dB "
                f"{scores['identity_ssim']:.4f}"
            )
            common = {"config": config.to_dict(), "style": opts.style, "step": step, "split": split}
            if scores["psnr"] > best:
                best = scores["psnr"]
                save(opts.out / "best.pt", model=scored.state_dict(), scores=scores, **common)
            if critic is not None or whole_style is not None or opts.w_ink > 0:
                # Adversarial and whole-photo runs trade a little PSNR for the look, so the best
                # PSNR is not the best look: keep every scored point for bench/look.py and the
                # eye to choose.
                save(
                    opts.out / f"step{step:05d}.pt",
                    model=scored.state_dict(),
                    scores=scores,
                    **common,
                )
            save(
                last,
                model=model.state_dict(),
                **({"ema": ema.state_dict()} if ema is not None else {}),
                optim=optim.state_dict(),
                **(
                    {"critic": critic.state_dict(), "d_optim": d_optim.state_dict()}
                    if critic is not None and d_optim is not None
                    else {}
                ),
                elapsed=elapsed,
                best=best,
                rng=rng,
                torch_rng=torch.get_rng_state(),
                **common,
            )
    bar.close()
    say(f"finished at step {step} after {elapsed / 60:.1f} min; best val PSNR {best:.2f} dB")
    return {"step": step, "minutes": elapsed / 60, "best_psnr": best}


def adversarial_step(
    critic: MultiScaleCritic,
    d_optim: torch.optim.Optimizer,
    model: Student,
    x: torch.Tensor,
    y: torch.Tensor,
    t: torch.Tensor,
    out: torch.Tensor,
    unpaired: UnpairedSampler | None,
    opts: Options,
    parts: dict[str, float],
) -> torch.Tensor:
    """One critic update, then the generator's adversarial and feature-matching terms."""
    xu = tu = out_u = None
    if unpaired is not None:
        xu_np, tu_np = unpaired.sample()
        xu, tu = to_tensor(xu_np), torch.from_numpy(tu_np)
        out_u = model(xu, tu)
    critic.requires_grad_(True)
    p_a, y_a, o_a = augment_together(x, y, out.detach())
    fakes = [critic(p_a, o_a)]
    if xu is not None and out_u is not None:
        fakes.append(critic(*augment_together(xu, out_u.detach())))
    d_loss = critic_loss(critic(p_a, y_a), fakes[0])
    for extra in fakes[1:]:
        d_loss = d_loss + critic_loss(critic(p_a, y_a), extra)
    d_optim.zero_grad(set_to_none=True)
    d_loss.backward()  # type: ignore[no-untyped-call]
    d_optim.step()
    critic.requires_grad_(False)
    p_a, y_a, o_a = augment_together(x, y, out)
    real, fake = critic(p_a, y_a), critic(p_a, o_a)
    adv = generator_loss(fake)
    if xu is not None and out_u is not None:
        adv = (adv + generator_loss(critic(*augment_together(xu, out_u)))) / 2
    fm = feature_matching(real, fake)
    parts.update(d=float(d_loss.detach()), adv=float(adv.detach()), fm=float(fm.detach()))
    return opts.w_adv * adv + opts.w_fm * fm


def parse_args(argv: list[str] | None = None) -> Options:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--style", required=True, choices=sorted(STYLE_SOURCES))
    ap.add_argument("--out", type=Path, help="run folder (default runs/<style>)")
    ap.add_argument("--minutes", type=float, default=60.0, help="wall-clock training budget")
    ap.add_argument("--steps", type=int, default=6000, help="schedule length (cosine LR)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=192)
    ap.add_argument("--scale-min", type=float, default=0.5)
    ap.add_argument("--scale-max", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--w-grad", type=float, default=0.5)
    ap.add_argument("--w-colour", type=float, default=0.5)
    ap.add_argument("--w-gram", type=float, default=0.0)
    ap.add_argument("--w-ssim", type=float, default=0.0)
    ap.add_argument("--val-every", type=int, default=250)
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--val-max-side", type=int, default=1280)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--widths", type=int, nargs=3, default=list(StudentConfig().widths))
    ap.add_argument("--blocks", type=int, default=StudentConfig().blocks)
    ap.add_argument("--expansion", type=int, default=StudentConfig().expansion)
    ap.add_argument("--refine", type=int, default=StudentConfig().refine)
    ap.add_argument("--context", type=int, default=StudentConfig().context)
    ap.add_argument("--overview", type=int, choices=[0, 1], default=StudentConfig().overview)
    ap.add_argument(
        "--linear-up",
        type=int,
        choices=[0, 1, 2],
        default=StudentConfig().linear_up,
        help="decoder convs, deepest first, that are linear and start at zero (0: old layout)",
    )
    ap.add_argument(
        "--half-refine",
        type=int,
        default=0,
        help="zero-initialised residual blocks at half resolution (stroke capacity)",
    )
    ap.add_argument("--w-adv", type=float, default=0.0, help="adversarial term (0: off)")
    ap.add_argument("--w-fm", type=float, default=1.0, help="critic feature matching")
    ap.add_argument("--d-lr", type=float, default=2e-4, help="critic learning rate")
    ap.add_argument("--d-width", type=int, default=32, help="critic width")
    ap.add_argument(
        "--unpaired", type=int, default=0, help="unpaired photo crops per step (adversarial)"
    )
    ap.add_argument("--unpaired-photos", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument(
        "--w-whole", type=float, default=0.0, help="whole-photo statistics term (0: off)"
    )
    ap.add_argument("--whole-side", type=int, default=512, help="long side of those photos")
    ap.add_argument("--w-ink", type=float, default=0.0, help="misalignment-tolerant line term")
    ap.add_argument(
        "--blur", type=float, default=0.0, help="pixel terms on images blurred by this sigma"
    )
    ap.add_argument(
        "--ema", type=float, default=0.0, help="score and keep an EMA of the weights (e.g. 0.998)"
    )
    ap.add_argument(
        "--init",
        type=Path,
        help="start from these weights (fine-tune): a checkpoint .pt or a committed model's "
        "fp32 .onnx, e.g. models/weights/hayao/hayao.fp32.onnx",
    )
    a = ap.parse_args(argv)
    return Options(
        style=a.style,
        out=a.out or Path("runs") / a.style,
        minutes=a.minutes,
        steps=a.steps,
        batch=a.batch,
        crop=a.crop,
        scale_min=a.scale_min,
        scale_max=a.scale_max,
        lr=a.lr,
        w_grad=a.w_grad,
        w_colour=a.w_colour,
        w_gram=a.w_gram,
        w_ssim=a.w_ssim,
        val_every=a.val_every,
        val_fraction=a.val_fraction,
        val_max_side=a.val_max_side,
        seed=a.seed,
        threads=a.threads,
        widths=tuple(a.widths),
        blocks=a.blocks,
        expansion=a.expansion,
        refine=a.refine,
        context=a.context,
        overview=a.overview,
        linear_up=a.linear_up,
        half_refine=a.half_refine,
        ema=a.ema,
        init=a.init,
        w_adv=a.w_adv,
        w_fm=a.w_fm,
        d_lr=a.d_lr,
        d_width=a.d_width,
        unpaired=a.unpaired,
        unpaired_photos=a.unpaired_photos,
        w_whole=a.w_whole,
        whole_side=a.whole_side,
        w_ink=a.w_ink,
        blur=a.blur,
    )


def main(argv: list[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
