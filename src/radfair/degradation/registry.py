"""Every degradation operator by name, for the CLI and the contract test."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .mri import Undersample
from .xray import LowDoseXray

#: name -> factory(image size) -> operator. Each operator maps (B, 1, H, W) -> (B, 1, H, W) and takes
#: an explicit ``generator``.
OPERATORS: dict[str, Callable[[int], torch.nn.Module]] = {
    "xray_physical": lambda size: LowDoseXray(photons=10_000, mode="physical", size=size, n_angles=size),
    "xray_paper": lambda size: LowDoseXray(photons=10_000, mode="paper", size=size, n_angles=size),
    "mri_golden_angle": lambda size: Undersample((size, size), acceleration=8, mask="golden_angle"),
    "mri_golden_angle_random": lambda size: Undersample((size, size), acceleration=4, mask="golden_angle", random_rotation=True),
    "mri_paper": lambda size: Undersample((size, size), acceleration=8, mask="paper", n_rays=60),
}
