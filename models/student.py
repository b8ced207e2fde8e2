"""The student generator: a small residual U-Net built for CPU INT8 inference.

No normalisation layers (nothing to fold, nothing that quantizes badly), ReLU activations that
ONNX Runtime fuses into the quantized convolutions, depthwise-separable inverted residual blocks
at quarter resolution where the work is cheap, thin full-resolution layers where it is not, and
a residual output (photo + learned correction) so training starts from the identity.
Input and output: RGB NCHW in [-1, 1]; height and width must be multiples of `model.multiple`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class StudentConfig:
    widths: tuple[int, int, int] = (16, 32, 64)
    blocks: int = 6
    expansion: int = 3
    refine: int = 0  # full-resolution residual blocks before the head (fine detail)
    context: int = 0  # dilated blocks at 1/8 resolution: wide context for colour grading
    context_width: int = 96
    overview: int = 0  # 1: a second input, a 64x64 thumbnail of the whole photo (see Overview)
    # How many decoder convs, deepest first, are linear and start at zero (see Up). 0 is the
    # first models' layout, whose deepest Up never fired: read from model.json, a missing key
    # means 0; new models default to 2.
    linear_up: int = 2
    # Half-resolution residual blocks after the deepest skip merge: where brush strokes and
    # contours are drawn (a 3x3 depthwise conv there sees 6 px of the photo, at a quarter of the
    # full-resolution cost). Zero-initialised, so they can be added to a trained network.
    half_refine: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> StudentConfig:
        widths = raw.get("widths", (16, 32, 64))
        assert isinstance(widths, list | tuple)
        return cls(
            widths=(int(widths[0]), int(widths[1]), int(widths[2])),
            blocks=int(str(raw.get("blocks", 6))),
            expansion=int(str(raw.get("expansion", 3))),
            refine=int(str(raw.get("refine", 0))),
            context=int(str(raw.get("context", 0))),
            context_width=int(str(raw.get("context_width", 96))),
            overview=int(str(raw.get("overview", 0))),
            linear_up=int(str(raw.get("linear_up", 0))),
            half_refine=int(str(raw.get("half_refine", 0))),
        )


class ConvReLU(nn.Sequential):
    def __init__(
        self, in_ch: int, out_ch: int, stride: int = 1, groups: int = 1, dilation: int = 1
    ) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, stride, padding=dilation, groups=groups, dilation=dilation),
            nn.ReLU(inplace=True),
        )


class InvertedResidual(nn.Module):
    """1x1 expand, 3x3 depthwise, 1x1 project, plus the input."""

    def __init__(
        self, channels: int, expansion: int, zero_init: bool = False, dilation: int = 1
    ) -> None:
        super().__init__()
        hidden = channels * expansion
        self.layers = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            ConvReLU(hidden, hidden, groups=hidden, dilation=dilation),
            nn.Conv2d(hidden, channels, 1),
        )
        if zero_init:  # starts as the identity, so it can be added to a trained network
            last = self.layers[-1]
            assert isinstance(last, nn.Conv2d)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.layers(x)
        return x + out


class Up(nn.Module):
    """A 3x3 conv at the lower resolution, bilinear x2, and the encoder's skip added.

    Convolving before upsampling costs a quarter of convolving after, and keeps the
    full-resolution part of the network down to the stem and the head.

    `linear`: no ReLU, and the conv starts at zero. With a ReLU, the deepest Up of every model
    trained before this (hayao, shinkai, face_kpop) went dead early in training: its
    pre-activation stayed below zero on every training photo, so the whole quarter-resolution
    body sent nothing to the output and got no gradient. A linear conv cannot die, and
    starting at zero lets the branch be added to a trained network without changing it."""

    def __init__(self, in_ch: int, out_ch: int, linear: bool = False) -> None:
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv: nn.Module
        if linear:
            conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
            self.conv = nn.Sequential(conv)  # same parameter names as ConvReLU: conv.0.*
        else:
            self.conv = ConvReLU(in_ch, out_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.upsample(self.conv(x))
        return out + skip


class Context(nn.Module):
    """A 1/8-resolution branch of dilated blocks whose output is added to the body's input.

    The teacher grades a whole region (a sky, a shaded wall) at once; the quarter-resolution body
    sees about 70 px around a pixel, this branch about 250 px, for a fifth more compute. Its last
    conv starts at zero (and is linear, so it still gets gradients), so the branch can be added to
    a trained network without changing what it computes."""

    def __init__(self, channels: int, width: int, blocks: int, expansion: int) -> None:
        super().__init__()
        self.down = ConvReLU(channels, width, stride=2)
        self.blocks = nn.Sequential(
            *[InvertedResidual(width, expansion, dilation=2) for _ in range(blocks)]
        )
        self.out = nn.Conv2d(width, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)  # type: ignore[arg-type]
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.upsample(self.out(self.blocks(self.down(x))))
        return x + out


class Overview(nn.Module):
    """Per-photo statistics from a 64x64 thumbnail of the whole photo: a per-channel scale and
    shift of the body's features (FiLM) and a per-channel gain and offset of the output colour.

    The teacher normalises its features over the whole image, so its grading depends on the
    whole photo; an oracle per-channel affine correction of our output gained 1 dB on held-out
    pairs and on the training pairs alike, so no amount of local context learns it. Tiles of a
    large photo all get the same thumbnail, so they stay consistent. Zero-initialised output:
    the branch can be added to a trained network without changing what it computes."""

    side = 64

    def __init__(self, channels: int, width: int = 64) -> None:
        super().__init__()
        self.channels = channels
        self.features = nn.Sequential(
            ConvReLU(3, width // 4, stride=2),
            ConvReLU(width // 4, width // 2, stride=2),
            ConvReLU(width // 2, width, stride=2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out = nn.Conv2d(width, 2 * channels + 6, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)  # type: ignore[arg-type]

    def forward(self, thumb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        g = self.out(self.pool(self.features(thumb)))
        c = self.channels
        return g[:, :c], g[:, c : 2 * c], g[:, 2 * c : 2 * c + 3], g[:, 2 * c + 3 :]


class Student(nn.Module):
    def __init__(self, config: StudentConfig | None = None) -> None:
        super().__init__()
        self.config = config or StudentConfig()
        c0, c1, c2 = self.config.widths
        # Height and width must divide by every stride-2 stage.
        self.multiple = 8 if self.config.context else 4
        self.stem = ConvReLU(3, c0)
        self.down1 = ConvReLU(c0, c1, stride=2)
        self.down2 = ConvReLU(c1, c2, stride=2)
        self.body = nn.Sequential(
            *[InvertedResidual(c2, self.config.expansion) for _ in range(self.config.blocks)]
        )
        self.context = (
            Context(c2, self.config.context_width, self.config.context, self.config.expansion)
            if self.config.context
            else nn.Identity()
        )
        self.overview = Overview(c2) if self.config.overview else None
        self.up2 = Up(c2, c1, linear=self.config.linear_up >= 1)
        self.half_refine = nn.Sequential(
            *[
                InvertedResidual(c1, self.config.expansion, zero_init=True)
                for _ in range(self.config.half_refine)
            ]
        )
        self.up1 = Up(c1, c0, linear=self.config.linear_up >= 2)
        self.refine = nn.Sequential(
            *[InvertedResidual(c0, 2, zero_init=True) for _ in range(self.config.refine)]
        )
        self.head = nn.Conv2d(c0, 3, 3, padding=1)
        # Zero head: the untrained network is the identity, and training starts from the photo.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor, thumb: torch.Tensor | None = None) -> torch.Tensor:
        """`thumb`: the whole photo at 64x64 (models with `overview`; x may be a tile of it)."""
        s0 = self.stem(x)
        s1 = self.down1(s0)
        out = self.context(self.down2(s1))
        if self.overview is not None:
            if thumb is None:
                thumb = F.interpolate(x, size=(Overview.side, Overview.side), mode="area")
            scale, shift, gain, offset = self.overview(thumb)
            out = out * (1 + scale) + shift
        out = self.body(out)
        out = self.refine(self.up1(self.half_refine(self.up2(out, s1)), s0))
        y = x + self.head(out)
        if self.overview is not None:
            y = y * (1 + gain) + offset
        return torch.clamp(y, -1.0, 1.0)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
