"""U-Net for image-to-image reconstruction (reconstruction paper §3.2), optionally time-conditioned.

Four resolution levels of two 3x3 convolutions + ReLU each (widths 64-128-256-512 in the paper), a
bottleneck (1024), transposed-convolution upsampling with skip connections, and **no BatchNorm** for the
reconstructors (Ronneberger 2015). ``norm=True`` puts a BatchNorm after every convolution (conv -> BN -> ReLU), as
segmentation U-Nets have: without it a tumour segmenter trained with Adam on mostly-background slices drives every
weight the same way and its logits diverge to -inf within a few dozen steps (measured on the demo: every
prediction empty, Dice 0).
With ``time_dim`` set, a sinusoidal embedding of the diffusion step is mapped by an MLP and added to
every block (the IR-SDE noise network); ``cond_channels`` extra input channels carry the condition
(the degraded image for IR-SDE). Input sizes must be divisible by 2**levels.

``output``: ``sigmoid`` (an image in [0, 1]), ``residual`` (the first input channel plus a learned
correction, clamped to [0, 1]: the network starts as the identity, so an untrained reconstructor returns
its input rather than noise; residual learning as in DnCNN; its last convolution starts at zero), or
``linear`` (raw, e.g. IR-SDE's noise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) steps ``t`` (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, time_dim: int | None, norm: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=not norm)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=not norm)
        self.norm1 = nn.BatchNorm2d(cout) if norm else nn.Identity()
        self.norm2 = nn.BatchNorm2d(cout) if norm else nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.time = nn.Linear(time_dim, cout) if time_dim else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None) -> torch.Tensor:
        h = self.act(self.norm1(self.conv1(x)))
        if self.time is not None and temb is not None:
            h = h + self.time(temb)[:, :, None, None]
        return self.act(self.norm2(self.conv2(h)))


class UNet(nn.Module):
    """``forward(x, t=None)``: x is (B, in_channels + cond_channels, H, W); returns (B, out_channels, H, W)."""

    def __init__(self, in_channels: int = 1, out_channels: int = 1, widths: Sequence[int] = (64, 128, 256, 512),
                 bottleneck: int = 1024, time_dim: int | None = None, output: str = "sigmoid", norm: bool = False):
        super().__init__()
        self.levels = len(widths)
        self.time_dim = time_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim)) if time_dim else None
        self.down = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.down.append(_Block(cin, w, time_dim, norm))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.middle = _Block(cin, bottleneck, time_dim, norm)
        self.up, self.merge = nn.ModuleList(), nn.ModuleList()
        cin = bottleneck
        for w in reversed(widths):
            self.up.append(nn.ConvTranspose2d(cin, w, 2, stride=2))
            self.merge.append(_Block(2 * w, w, time_dim, norm))
            cin = w
        self.head = nn.Conv2d(cin, out_channels, 1)
        if output not in ("sigmoid", "residual", "linear"):
            raise ValueError(f"unknown output {output!r}; expected sigmoid, residual or linear")
        if output == "residual":
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        self.output = output

    def _encode(self, x: torch.Tensor, temb: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        for block in self.down:
            x = block(x, temb)
            skips.append(x)
            x = self.pool(x)
        return self.middle(x, temb), skips

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck activations averaged over space, (B, bottleneck): what an adversary reads when this U-Net is the
        frozen tumour segmenter (reconstruction paper §3.5, "Adversarial Loss", applied to segmentation)."""
        return self._encode(x, None)[0].mean(dim=(2, 3))

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        temb = self.time_mlp(timestep_embedding(t, self.time_dim)) if self.time_mlp is not None and t is not None else None
        inputs = x
        x, skips = self._encode(x, temb)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            x = merge(torch.cat([up(x), skip], dim=1), temb)
        x = self.head(x)
        if self.output == "sigmoid":
            return torch.sigmoid(x)
        if self.output == "residual":
            return (inputs[:, : x.shape[1]] + x).clamp(0, 1)
        return x
