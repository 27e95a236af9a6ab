"""Image-quality metrics, batched over (B, C, H, W) with an explicit data range.

* PSNR = 10 log10(data_range^2 / MSE) per image.
* SSIM (Wang et al. 2004): Gaussian window sigma 1.5 (11 x 11), K1 = 0.01, K2 = 0.03, population
  covariances, mean over the valid region; equals ``skimage.metrics.structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=...)``.
* LPIPS is not provided: it needs pretrained network weights, which cannot be downloaded here and
  are not shipped by any installed package.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    mse = ((x.double() - y.double()) ** 2).flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse)


def _gaussian_window(sigma: float = 1.5, truncate: float = 3.5, device=None) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)
    coords = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM per image (B,), over channels and the valid (unpadded) region."""
    x, y = x.double(), y.double()
    g = _gaussian_window(sigma, device=x.device)
    c = x.shape[1]
    kh = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    kw = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(dim=1)
