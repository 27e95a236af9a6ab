"""MRI k-space undersampling (reconstruction paper section 3.2): Cartesian radial masks.

* ``fft2c`` / ``ifft2c``: centred, orthonormal 2-D FFT over the last two axes.
* ``golden_angle`` mask (standard; Feng 2022): full spokes through the k-space centre at
  successive increments of 111.246 degrees, rasterised at 0.5-pixel steps; the number of spokes is
  the one whose sampled fraction is closest to 1/R (N = 256: 64, 31, 15 spokes for R = 4, 8, 16).
* ``paper`` mask (the reference code): ``n_rays`` uniformly spaced half-rays from the centre; its
  "R = 8" (60 rays) samples ~10.7% (R ~ 9.3), so radfair always reports the achieved fraction.
* ``Undersample``: zero-filled magnitude ``|IFFT(M * FFT(x))|`` of 2-D slices (B, 1, H, W) or
  volumes (B, 1, D, H, W), slice-wise over the last two axes.
"""

from __future__ import annotations

import math

import numpy as np
import torch

GOLDEN_ANGLE_DEG = 111.246117975
MASKS = ("golden_angle", "paper")


def fft2c(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))


def ifft2c(k: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(k, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))


def _mark(shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    h, w = shape
    keep = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    mask = np.zeros(shape, dtype=bool)
    mask[rows[keep], cols[keep]] = True
    return mask


def _rasterise(shape: tuple[int, int], angles_rad: np.ndarray, r_min: float, r_max: float) -> np.ndarray:
    h, w = shape
    radii = np.arange(r_min, r_max + 1e-9, 0.5)
    rows = np.rint(h // 2 + radii[None, :] * np.sin(angles_rad)[:, None]).astype(int)
    cols = np.rint(w // 2 + radii[None, :] * np.cos(angles_rad)[:, None]).astype(int)
    return _mark(shape, rows, cols)


def golden_angle_spokes(shape: tuple[int, int], n_spokes: int, offset_deg: float = 0.0) -> np.ndarray:
    angles = np.deg2rad(offset_deg + GOLDEN_ANGLE_DEG * np.arange(n_spokes))
    half = min(shape) / 2
    return _rasterise(shape, angles, -half, half)


def golden_angle_mask(shape: tuple[int, int], acceleration: float, offset_deg: float = 0.0) -> np.ndarray:
    """Golden-angle mask whose sampled fraction is closest to 1 / acceleration."""
    target = 1.0 / acceleration
    best, best_err = None, math.inf
    for n in range(1, 2 * max(shape)):
        mask = golden_angle_spokes(shape, n, offset_deg)
        err = abs(mask.mean() - target)
        if err < best_err:
            best, best_err = mask, err
        if mask.mean() > target:
            break
    return best


def paper_mask(shape: tuple[int, int], n_rays: int) -> np.ndarray:
    """The reference code's mask exactly: ``n_rays`` half-rays at angles 2 pi k / n_rays, integer radii
    0 .. max(H, W)//2 - 1, pixel = int(centre + r (cos, sin)) (truncation, not rounding)."""
    h, w = shape
    angles = np.linspace(0, 2 * np.pi, n_rays, endpoint=False)
    radii = np.arange(max(h, w) // 2)
    cols = np.trunc(w // 2 + radii[None, :] * np.cos(angles)[:, None]).astype(int)
    rows = np.trunc(h // 2 + radii[None, :] * np.sin(angles)[:, None]).astype(int)
    return _mark(shape, rows, cols)


class Undersample(torch.nn.Module):
    """Radial k-space undersampling with zero-filled magnitude reconstruction.

    ``A(x) = M * FFT(x)`` is the linear part (``A_adjoint(y) = IFFT(M * y)``); ``forward`` returns
    ``|A_adjoint(A(x))|``. A random rotation of the pattern is drawn from ``generator`` when
    ``random_rotation`` is set; otherwise the operator is deterministic.
    """

    linear = False

    def __init__(self, shape: tuple[int, int], acceleration: float = 8, mask: str = "golden_angle",
                 n_rays: int | None = None, random_rotation: bool = False):
        super().__init__()
        if mask not in MASKS:
            raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
        self.shape, self.kind, self.acceleration = tuple(shape), mask, acceleration
        self.n_rays = n_rays if n_rays is not None else int(round(480 / acceleration))
        self.random_rotation = random_rotation
        self.register_buffer("mask", torch.from_numpy(self._make_mask(0.0)), persistent=False)

    def _make_mask(self, offset: float) -> np.ndarray:
        if self.kind == "golden_angle":
            return golden_angle_mask(self.shape, self.acceleration, offset)
        return paper_mask(self.shape, self.n_rays)

    @property
    def sampled_fraction(self) -> float:
        return float(self.mask.float().mean())

    def _mask_for(self, generator) -> torch.Tensor:
        if not self.random_rotation:
            return self.mask
        # drawn on the generator's own device: a CUDA generator works as well as a CPU one
        offset = float(torch.rand((), generator=generator, device=generator.device if generator is not None else "cpu") * 180.0)
        return torch.from_numpy(self._make_mask(offset)).to(self.mask.device)

    def A(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        m = self.mask if mask is None else mask
        return fft2c(x.to(torch.complex128 if x.dtype == torch.float64 else torch.complex64)) * m

    def A_adjoint(self, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        m = self.mask if mask is None else mask
        return ifft2c(y * m)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mask = self._mask_for(generator).to(x.device)
        return self.A_adjoint(self.A(x, mask), mask).abs().to(x.dtype)
