"""70x70 PatchGAN discriminator (Isola et al. 2017), judging (input, output) pairs.

C64 - C128 - C256 - C512 with 4x4 convolutions (strides 2, 2, 2, 1), LeakyReLU(0.2), instance norm on all
but the first layer, then a 1-channel 4x4 convolution: one logit per 70x70 receptive field.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class PatchGAN(nn.Module):
    def __init__(self, in_channels: int = 2, widths: Sequence[int] = (64, 128, 256, 512)):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i, w in enumerate(widths):
            stride = 1 if i == len(widths) - 1 else 2
            layers.append(nn.Conv2d(cin, w, 4, stride=stride, padding=1))
            if i > 0:
                layers.append(nn.InstanceNorm2d(w, affine=True))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = w
        layers.append(nn.Conv2d(cin, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, image], dim=1))
