"""IR-SDE (Luo et al., "Image Restoration with Mean-Reverting SDEs", ICML 2023).

Forward SDE ``dx = θ_t (μ − x) dt + σ_t dw`` with ``σ_t² = 2 λ² θ_t`` (stationary variance λ²), μ the
degraded image. Discretised over steps t = 1..T as in the authors' code: a cosine θ schedule, cumulative
``θ̄_t = Σ_{s≤t} θ_s − θ_0`` and a step size ``dt = −log(eps) / θ̄_T`` (so that ``exp(−θ̄_T dt) = eps``;
dt = 0.10409 for T = 100, eps = 0.005). Marginals: ``x_t ~ N(μ + (x_0 − μ) e^{−θ̄_t dt}, λ²(1 − e^{−2 θ̄_t dt}))``.

The network predicts the noise ε of ``x_t``; the score is ``−ε / σ̄_t``. Training minimises the L1 distance
between one reverse Euler step ``x_t − (θ_t (μ − x_t) − σ_t² score) dt`` and the closed-form optimal previous
state ``x*_{t−1} = A(1−C²)/(1−B²) (x_t − μ) + C(1−A²)/(1−B²) (x_0 − μ) + μ`` with ``A = e^{−θ_t dt}``,
``B = e^{−θ̄_t dt}``, ``C = e^{−θ̄_{t−1} dt}`` (the maximum-likelihood objective of the paper, Eq. 12-14).
Sampling: ``x_T = μ + λ z``, then T reverse Euler–Maruyama steps. Every random draw takes an explicit
``torch.Generator``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def cosine_thetas(steps: int, s: float = 0.008) -> torch.Tensor:
    """θ_0..θ_T (T + 1 values) from the cosine schedule, as in the authors' code."""
    timesteps = steps + 2
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64)
    alphas_cumprod = torch.cos(((x / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    return 1 - alphas_cumprod[1:-1]


class IRSDE(nn.Module):
    """The schedule and the SDE's closed forms (buffers, so they follow ``.to(device)``)."""

    def __init__(self, steps: int = 100, max_sigma: float = 10 / 255, eps: float = 0.005):
        super().__init__()
        self.steps, self.max_sigma, self.eps = steps, max_sigma, eps
        thetas = cosine_thetas(steps)
        cumsum = torch.cumsum(thetas, 0) - thetas[0]
        self.dt = float(-math.log(eps) / cumsum[-1])
        self.register_buffer("thetas", thetas.float())
        self.register_buffer("sigmas", torch.sqrt(max_sigma**2 * 2 * thetas).float())
        self.register_buffer("thetas_cumsum", cumsum.float())
        self.register_buffer("sigma_bars", torch.sqrt(max_sigma**2 * (1 - torch.exp(-2 * cumsum * self.dt))).float())

    @staticmethod
    def _b(v: torch.Tensor) -> torch.Tensor:
        return v.reshape(-1, 1, 1, 1)

    def mu_bar(self, x0: torch.Tensor, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return mu + (x0 - mu) * self._b(torch.exp(-self.thetas_cumsum[t] * self.dt))

    def sigma_bar(self, t: torch.Tensor) -> torch.Tensor:
        return self._b(self.sigma_bars[t])

    def noisy_state(self, x0: torch.Tensor, mu: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.mu_bar(x0, mu, t) + self.sigma_bar(t) * noise

    def reverse_mean_step(self, xt: torch.Tensor, mu: torch.Tensor, noise_pred: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One reverse Euler step without the noise term, given the network's noise prediction."""
        score = -noise_pred / self.sigma_bar(t)
        drift = (self._b(self.thetas[t]) * (mu - xt) - self._b(self.sigmas[t]) ** 2 * score) * self.dt
        return xt - drift

    def optimal_previous(self, xt: torch.Tensor, x0: torch.Tensor, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = torch.exp(-self.thetas[t] * self.dt)
        b = torch.exp(-self.thetas_cumsum[t] * self.dt)
        c = torch.exp(-self.thetas_cumsum[t - 1] * self.dt)
        term1 = self._b(a * (1 - c**2) / (1 - b**2))
        term2 = self._b(c * (1 - a**2) / (1 - b**2))
        return term1 * (xt - mu) + term2 * (x0 - mu) + mu

    def prior_noise(self, xt: torch.Tensor, mu: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The noise exactly when x_0 = μ: ``(x_t − μ) / σ̄_t``. A noise network that predicts this plus a learned
        correction (zero at initialisation) makes an untrained sampler return ≈ μ instead of diverging (with ε̂ = 0
        the reverse drift repels from μ by up to e^{θ̄_T}); the loss and the sampler are unchanged."""
        return (xt - mu) / self.sigma_bar(t)

    def denoised(self, xt: torch.Tensor, mu: torch.Tensor, noise_pred: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The x_0 the noise prediction implies (differentiable in the network's output)."""
        return mu + (xt - mu - self.sigma_bar(t) * noise_pred) / self._b(torch.exp(-self.thetas_cumsum[t] * self.dt))

    def sample(self, model: nn.Module, mu: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reverse Euler–Maruyama from ``x_T = μ + λ z`` over every step (T network evaluations)."""
        def randn():
            return torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)

        x = mu + self.max_sigma * randn()
        for step in range(self.steps, 0, -1):
            t = torch.full((mu.shape[0],), step, device=mu.device, dtype=torch.long)
            mean = self.reverse_mean_step(x, mu, model(torch.cat([x, mu], 1), t), t)
            x = mean - self._b(self.sigmas[t]) * math.sqrt(self.dt) * randn()
        return x
