"""Distillation losses that need no downloaded network.

The teacher's look is colour grading plus flatter shading and cleaner edges. Pixel L1 learns the
grading, an image-gradient term keeps edges where the teacher draws them, a low-resolution colour
term weights large flat areas (sky, skin) as a viewer does, and Gram matrices of a fixed,
seeded random conv net compare texture statistics (random features are known to carry usable
texture information; Ulyanov et al. 2016, He et al. 2016). An SSIM term rewards the local
structure (contrast, edges, flat areas) that pixel losses average away (Zhao et al. 2017).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def gradient_l1(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    (ox, oy), (tx, ty) = image_gradients(out), image_gradients(target)
    return F.l1_loss(ox, tx) + F.l1_loss(oy, ty)


def colour_l1(out: torch.Tensor, target: torch.Tensor, factor: int = 8) -> torch.Tensor:
    return F.l1_loss(F.avg_pool2d(out, factor), F.avg_pool2d(target, factor))


class RandomFeatures(nn.Module):
    """Three frozen conv stages with seeded random weights; their Gram matrices describe texture."""

    def __init__(self, seed: int = 1234, widths: tuple[int, ...] = (32, 64, 96)) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        layers: list[nn.Module] = []
        in_ch = 3
        self.stages = nn.ModuleList()
        for i, w in enumerate(widths):
            conv = nn.Conv2d(in_ch, w, 3, stride=1 if i == 0 else 2, padding=1)
            with torch.no_grad():
                conv.weight.copy_(
                    torch.randn(conv.weight.shape, generator=gen) * (2.0 / (9 * in_ch)) ** 0.5
                )
                conv.bias.zero_()  # type: ignore[union-attr]
            layers = [conv, nn.LeakyReLU(0.2)]
            self.stages.append(nn.Sequential(*layers))
            in_ch = w
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


def gram(f: torch.Tensor) -> torch.Tensor:
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def gram_l1(features: RandomFeatures, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    loss = out.new_zeros(())
    for fo, ft in zip(features(out), features(target), strict=True):
        loss = loss + F.l1_loss(gram(fo), gram(ft))
    return loss


class WholeImageStyle(nn.Module):
    """Relative Gram distance of whole images at 1, 1/2 and 1/4 scale: how far the output's
    global statistics (colour grade, contrast, how flat areas are, edge density) are from the
    teacher's. Crops only see a piece of a photo; the teacher grades and flattens each photo as
    a whole, so this term is computed on whole downscaled training photos. Its random net is
    seeded differently from bench/look.py's meter, so the measure is not the training target."""

    def __init__(self, seed: int = 1234) -> None:
        super().__init__()
        self.features = RandomFeatures(seed=seed)

    def grams(self, x: torch.Tensor) -> list[torch.Tensor]:
        out: list[torch.Tensor] = []
        for scale in (1, 2, 4):
            xs = F.avg_pool2d(x, scale) if scale > 1 else x
            out.extend(gram(f) for f in self.features(xs))
        return out

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self.grams(target)
        parts = [
            ((g - t).flatten(1).norm(dim=1) / t.flatten(1).norm(dim=1)).mean()
            for g, t in zip(self.grams(out), wanted, strict=True)
        ]
        return torch.stack(parts).mean()


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


def ssim_map(a: torch.Tensor, b: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """SSIM (Wang et al. 2004; 11x11 Gaussian, sigma 1.5) of images in [-1, 1], per pixel."""
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=3)

    ma, mb = blur(a), blur(b)
    saa, sbb, sab = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    return ((2 * ma * mb + c1) * (2 * sab + c2)) / ((ma * ma + mb * mb + c1) * (saa + sbb + c2))


def ink(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Where an image is darker than its surroundings: the drawn lines of a drawing (contours,
    the nose line, eyelids), as a map in [0, 2]."""
    lum = x.mean(dim=1, keepdim=True)
    pad = window.shape[-1] // 2
    around = F.conv2d(F.pad(lum, (pad,) * 4, mode="reflect"), window[:1])
    return F.relu(around - lum)


def ink_l1(
    out: torch.Tensor, target: torch.Tensor, window: torch.Tensor, reach: int = 2
) -> torch.Tensor:
    """Lines compared with a tolerance of `reach` px: a teacher's line costs only where ours has
    no line as dark within that distance (missing), and ours costs only where the teacher's has
    none (extra). A contour drawn two pixels off is then free, so the cheapest answer is to draw
    it, where a pixel loss prefers to blur it away."""
    k = 2 * reach + 1
    mine, theirs = ink(out, window), ink(target, window)
    near_mine = F.max_pool2d(mine, k, stride=1, padding=reach)
    near_theirs = F.max_pool2d(theirs, k, stride=1, padding=reach)
    return F.relu(theirs - near_mine).mean() + F.relu(mine - near_theirs).mean()


class DistillLoss(nn.Module):
    """Pixel, edge, colour, texture, structure and line terms. With `blur` > 0 the pixel-level
    terms (L1, gradient, SSIM) compare images blurred by that sigma, so fine detail is left to
    the line term alone (a frequency split: colour and shading from the pixels, strokes from a
    term that tolerates misalignment)."""

    window: torch.Tensor
    blur_window: torch.Tensor

    def __init__(
        self,
        w_grad: float = 0.5,
        w_colour: float = 0.5,
        w_gram: float = 0.0,
        w_ssim: float = 0.0,
        *,
        w_ink: float = 0.0,
        blur: float = 0.0,
    ) -> None:
        super().__init__()
        self.w_grad, self.w_colour, self.w_gram, self.w_ssim = w_grad, w_colour, w_gram, w_ssim
        self.w_ink, self.blur = w_ink, blur
        self.features = RandomFeatures() if w_gram > 0 else None
        self.register_buffer("window", _gaussian_window(), persistent=False)
        size = max(3, 2 * round(3 * blur) + 1)
        self.register_buffer(
            "blur_window", _gaussian_window(size, max(blur, 1e-3)), persistent=False
        )

    def soften(self, x: torch.Tensor) -> torch.Tensor:
        if self.blur <= 0:
            return x
        pad = self.blur_window.shape[-1] // 2
        return F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), self.blur_window, groups=3)

    def forward(
        self, out: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        sharp_out, sharp_target = out, target
        out, target = self.soften(out), self.soften(target)
        parts = {
            "l1": F.l1_loss(out, target),
            "grad": gradient_l1(out, target),
            "colour": colour_l1(out, target),
        }
        total = parts["l1"] + self.w_grad * parts["grad"] + self.w_colour * parts["colour"]
        if self.features is not None:
            parts["gram"] = gram_l1(self.features, out, target)
            total = total + self.w_gram * parts["gram"]
        if self.w_ssim > 0:
            parts["ssim"] = 1 - ssim_map(out, target, self.window).mean()
            total = total + self.w_ssim * parts["ssim"]
        if self.w_ink > 0:
            parts["ink"] = ink_l1(sharp_out, sharp_target, self.window)
            total = total + self.w_ink * parts["ink"]
        return total, {k: float(v.detach()) for k, v in parts.items()}
