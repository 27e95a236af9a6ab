"""Differentiable equalized odds (reconstruction paper §3.5, "Differentiable Equalized-Odds"; appendix).

Convention: **worst case** — for every sensitive attribute and label, the largest gap over pairs of the
attribute's groups (max − min) in soft TPR and in soft FPR; the term is the maximum of all of these
(``eodd_worst`` of :mod:`radfair.fairness`, not the mean convention; REFERENCE.md bug 10).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..fairness import choose_threshold


def soft_predictions(p: torch.Tensor, tau: torch.Tensor | float, temperature: float = 0.3) -> torch.Tensor:
    """Soft decisions ``sigmoid((p − τ) / T)`` of probabilities ``p`` (B, L) at thresholds ``τ`` (L,)."""
    return torch.sigmoid((p - tau) / temperature)


class RunningThreshold(nn.Module):
    """Per-label decision threshold τ tracked during fine-tuning (appendix: momentum 0.1).

    In training mode, :meth:`update` moves τ towards the balanced threshold (argmin |sensitivity −
    specificity|, :func:`radfair.fairness.choose_threshold` with rule ``"balanced"``) of the batch's
    downstream probabilities: ``τ ← (1 − m) τ + m τ_batch``; a label whose batch lacks positives or
    negatives keeps its τ. τ is a buffer, so it is saved in checkpoints with the step's modules.
    """

    def __init__(self, n_labels: int, momentum: float = 0.1, initial: float = 0.5, fixed: bool = False):
        super().__init__()
        self.momentum, self.fixed = momentum, fixed
        self.register_buffer("tau", torch.full((n_labels,), float(initial)))

    @torch.no_grad()
    def update(self, p: torch.Tensor, y: torch.Tensor) -> None:
        if not self.training or self.fixed:  # fixed: τ stays at its initial value (the paper's τ = 0.5)
            return
        p_np, y_np = p.detach().float().cpu().numpy(), y.detach().float().cpu().numpy()
        for label in range(self.tau.numel()):
            batch_tau = choose_threshold(y_np[:, label], p_np[:, label], "balanced")
            if np.isfinite(batch_tau):
                self.tau[label] = (1 - self.momentum) * self.tau[label] + self.momentum * batch_tau

    def forward(self) -> torch.Tensor:
        return self.tau


def _group_gap(values: torch.Tensor, cell: torch.Tensor, groups: torch.Tensor) -> torch.Tensor | None:
    """Largest pairwise gap (max − min) between groups of the mean of ``values`` over rows in ``cell``.

    Groups with no row in ``cell`` are skipped; None when fewer than two groups remain.
    """
    means = []
    for code in torch.unique(groups[cell & (groups >= 0)]):
        rows = cell & (groups == code)
        means.append((values * rows).sum() / rows.sum())
    if len(means) < 2:
        return None
    stacked = torch.stack(means)
    return stacked.max() - stacked.min()


def soft_eodd(soft: torch.Tensor, y: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Worst-case soft equalized-odds difference.

    Parameters
    ----------
    soft : Tensor (B, L)
        Soft decisions in [0, 1] (:func:`soft_predictions`).
    y : Tensor (B, L)
        Labels in {0, 1}; NaN = unknown (masked).
    groups : Tensor (B, A) of int
        Group codes per attribute; −1 = missing (masked).

    Returns
    -------
    Tensor (scalar)
        ``max over attributes a, labels l, y ∈ {0, 1} of max_{g,h} |P̃(Ŷ=1 | Y=y, A=g) − P̃(Ŷ=1 | Y=y, A=h)|``
        with P̃ the mean soft decision. (group, label) cells without positives (for TPR) or negatives
        (for FPR) in the batch are skipped; when no gap is defined the result is a zero that still
        depends on ``soft`` (so no NaN ever enters the loss).
    """
    y = y.to(soft.dtype)
    known = ~torch.isnan(y)
    gaps = []
    for a in range(groups.shape[1]):
        g = groups[:, a]
        for label in range(soft.shape[1]):
            for target in (1.0, 0.0):
                cell = known[:, label] & (y[:, label] == target)
                gap = _group_gap(soft[:, label], cell, g)
                if gap is not None:
                    gaps.append(gap)
    return torch.stack(gaps).max() if gaps else soft.sum() * 0.0


def soft_dice(probabilities: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-sample soft Dice (B,) of segmentation probabilities against a binary mask (B, 1, H, W)."""
    dims = tuple(range(1, probabilities.ndim))
    inter = (probabilities * target).sum(dims)
    return (2 * inter + eps) / (probabilities.sum(dims) + target.sum(dims) + eps)


def soft_dice_gap(dice: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Worst-case gap in soft Dice between the groups of any attribute: ``max_a (max_g − min_g) mean Dice``.

    The segmentation counterpart of :func:`soft_eodd` (ΔDice of the paper, made differentiable); rows with
    a missing group (−1) are skipped, as are attributes with fewer than two groups in the batch.
    """
    everyone = torch.ones_like(dice, dtype=torch.bool)
    gaps = [gap for a in range(groups.shape[1]) if (gap := _group_gap(dice, everyone, groups[:, a])) is not None]
    return torch.stack(gaps).max() if gaps else dice.sum() * 0.0
