"""The adversarial half of distillation: a conditional multi-scale PatchGAN and its losses.

Pixel losses average the teacher's strokes away: where a stroke could fall a pixel to either
side, the mean of the possibilities is a blur. A discriminator that judges 70-140 px patches
asks instead whether the output *could* be the teacher's, which rewards committing to a stroke.
It sees the photo beside the image (conditional), so it also judges whether the drawing fits the
photo, not just whether it looks drawn. Two scales (full and half resolution) judge strokes and
shading separately. Spectral norm keeps it Lipschitz with no tuning; the hinge loss is the
standard pairing; feature matching (L1 between its features of the teacher's and our image of
the same photo) gives the generator a dense, paired signal while the discriminator learns.

With a few dozen targets a discriminator memorises them, so both what it sees as real and as
fake pass through the same random differentiable augmentation (DiffAugment, Zhao et al. 2020):
a translation and a cutout, applied to the photo and the image alike, so the pair stays aligned.
No pretrained network is available here: everything is trained from scratch.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchCritic(nn.Module):
    """Four spectral-norm 4x4 convs (stride 2, 2, 1, 1): a 34 px receptive field per logit at
    its own scale, about 70 px at half resolution. Returns the features too (feature matching)."""

    def __init__(self, in_ch: int = 6, width: int = 32) -> None:
        super().__init__()
        chans = (in_ch, width, 2 * width, 4 * width)
        self.blocks = nn.ModuleList()
        for i, (a, b) in enumerate(itertools.pairwise(chans)):
            self.blocks.append(
                nn.Sequential(
                    spectral_norm(nn.Conv2d(a, b, 4, 2 if i < 2 else 1, 1)), nn.LeakyReLU(0.2)
                )
            )
        self.out = spectral_norm(nn.Conv2d(chans[-1], 1, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return self.out(x), feats


class MultiScaleCritic(nn.Module):
    def __init__(self, width: int = 32, scales: int = 2) -> None:
        super().__init__()
        self.critics = nn.ModuleList([PatchCritic(6, width) for _ in range(scales)])

    def forward(
        self, photo: torch.Tensor, image: torch.Tensor
    ) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        x = torch.cat([photo, image], dim=1)
        out = []
        for i, critic in enumerate(self.critics):
            out.append(critic(x if i == 0 else F.avg_pool2d(x, 2**i)))
        return out


def diff_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random translation (up to 1/8 of the side, zero padded) and a cutout (a 1/4-side square
    set to zero), per sample; differentiable, so the generator's gradient passes through."""
    n, _, h, w = x.shape
    dev = x.device
    sy, sx = h // 8, w // 8
    ty = torch.randint(-sy, sy + 1, (n, 1, 1), generator=generator).to(dev)
    tx = torch.randint(-sx, sx + 1, (n, 1, 1), generator=generator).to(dev)
    gy, gx = torch.meshgrid(torch.arange(h, device=dev), torch.arange(w, device=dev), indexing="ij")
    yy = (gy[None] + ty).clamp(-1, h)
    xx = (gx[None] + tx).clamp(-1, w)
    padded = F.pad(x, (1, 1, 1, 1))
    idx = (yy + 1) * (w + 2) + (xx + 1)
    flat = padded.reshape(n, x.shape[1], -1)
    x = torch.gather(flat, 2, idx.reshape(n, 1, -1).expand(-1, x.shape[1], -1)).reshape(x.shape)
    ch, cw = h // 4, w // 4
    cy = torch.randint(0, h - ch + 1, (n, 1, 1), generator=generator).to(dev)
    cx = torch.randint(0, w - cw + 1, (n, 1, 1), generator=generator).to(dev)
    keep = ~((gy[None] >= cy) & (gy[None] < cy + ch) & (gx[None] >= cx) & (gx[None] < cx + cw))
    return x * keep[:, None].to(x.dtype)


def augment_together(*images: torch.Tensor) -> list[torch.Tensor]:
    """One random augmentation per sample, the same for every image given (a photo, the
    teacher's drawing of it and ours stay aligned)."""
    both = diff_augment(torch.cat(images, dim=1))
    return list(both.split([im.shape[1] for im in images], dim=1))  # type: ignore[no-untyped-call]


def critic_loss(
    real: list[tuple[torch.Tensor, list[torch.Tensor]]],
    fake: list[tuple[torch.Tensor, list[torch.Tensor]]],
) -> torch.Tensor:
    """Hinge loss of the discriminator, summed over scales."""
    loss = real[0][0].new_zeros(())
    for (r, _), (f, _) in zip(real, fake, strict=True):
        loss = loss + F.relu(1 - r).mean() + F.relu(1 + f).mean()
    return loss


def generator_loss(fake: list[tuple[torch.Tensor, list[torch.Tensor]]]) -> torch.Tensor:
    loss = fake[0][0].new_zeros(())
    for f, _ in fake:
        loss = loss - f.mean()
    return loss


def feature_matching(
    real: list[tuple[torch.Tensor, list[torch.Tensor]]],
    fake: list[tuple[torch.Tensor, list[torch.Tensor]]],
) -> torch.Tensor:
    """L1 between the critic's features of the teacher's image and ours (same photo, same
    augmentation), averaged over layers and scales."""
    terms = [
        F.l1_loss(ff, rf.detach())
        for (_, rfs), (_, ffs) in zip(real, fake, strict=True)
        for rf, ff in zip(rfs, ffs, strict=True)
    ]
    return torch.stack(terms).mean()
