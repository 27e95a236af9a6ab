"""Adversarial mitigation with a squared-Pearson-correlation objective (reconstruction paper §3.5,
"Adversarial Loss"; Adeli et al. 2019).

Signs (REFERENCE.md bug 11 had both reversed): the **adversary maximises** Corr² between its prediction and
the sensitive attribute; the **reconstructor minimises** λ · Corr².
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def attribute_targets(groups: torch.Tensor, group_sizes: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary coding of the attributes: (targets, known), both (B, C).

    A binary attribute (2 categories) gives one column, ``code == 1``; an attribute with K > 2 categories
    gives K one-vs-rest columns. ``known`` is False where the code is −1 (missing).
    """
    targets, known = [], []
    for a, size in enumerate(group_sizes):
        codes = groups[:, a]
        columns = [1] if size <= 2 else range(size)
        for k in columns:
            targets.append((codes == k).float())
            known.append(codes >= 0)
    return torch.stack(targets, 1), torch.stack(known, 1)


def n_target_columns(group_sizes: Sequence[int]) -> int:
    return sum(1 if size <= 2 else size for size in group_sizes)


def squared_correlation(prediction: torch.Tensor, target: torch.Tensor, known: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean over columns of the squared Pearson correlation between ``prediction`` and ``target`` (B, C),
    over the rows where ``known``; columns with fewer than two known rows or a constant target are skipped
    (a zero that still depends on ``prediction`` when none is left)."""
    values = []
    for c in range(target.shape[1]):
        rows = known[:, c]
        t = target[rows, c]
        if rows.sum() < 2 or t.std() == 0:
            continue
        p = prediction[rows, c]
        pc, tc = p - p.mean(), t - t.mean()
        values.append((pc * tc).mean() ** 2 / ((pc ** 2).mean() * (tc ** 2).mean() + eps))
    return torch.stack(values).mean() if values else prediction.sum() * 0.0


class Adversary(nn.Module):
    """MLP ``features -> hidden (ReLU) -> one output per binary-coded attribute column``."""

    def __init__(self, in_features: int, out_features: int, hidden: Sequence[int] = (128,)):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features.flatten(1).float())
