"""AUROC with observation weights, vectorised over bootstrap replicates.

``AUC = sum_i w_i [y_i=1] (W_neg(s < s_i) + 0.5 W_neg(s = s_i)) / (W_pos W_neg)``: the Mann-Whitney
statistic with ties counted half, identical to scikit-learn's ``roc_auc_score`` when all w_i = 1.
Weights are the bootstrap multiplicities of each image's patient. Replicates run in float32: the
multiplicities and their prefix sums are integers below 2**23, so every sum is exact; the final
dot product accumulates in float64.
"""

from __future__ import annotations

import numpy as np


class AucPlan:
    """Sort order and tie structure of one (labels, scores) set, reused for every weight matrix.

    ``unit`` maps each row to the column of the weight matrix it takes its weight from (its
    patient); by default every row is its own unit.
    """

    def __init__(self, y: np.ndarray, scores: np.ndarray, unit: np.ndarray | None = None):
        y = np.asarray(y, dtype=float)
        scores = np.asarray(scores, dtype=float)
        unit = np.arange(len(y)) if unit is None else np.asarray(unit)
        keep = np.flatnonzero(~np.isnan(y))
        order = keep[np.argsort(scores[keep], kind="mergesort")]
        s = scores[order]
        positive = y[order] == 1
        self.unit = unit[order]
        self.negative = (~positive).astype(np.float32)
        self.pos_idx = np.flatnonzero(positive)
        n = len(s)
        new_value = np.r_[True, s[1:] != s[:-1]] if n else np.zeros(0, bool)
        starts = np.flatnonzero(new_value)
        tie = np.cumsum(new_value) - 1
        ends = np.r_[starts[1:], n] - 1
        # prefix sums of negative weight at the end of each positive's tie group and just before its start
        self.hi_idx = ends[tie][self.pos_idx] if n else np.zeros(0, int)
        before = starts[tie][self.pos_idx] - 1 if n else np.zeros(0, int)
        self.lo_idx = np.maximum(before, 0)
        self.lo_valid = (before >= 0).astype(np.float32)

    def auc(self, weights: np.ndarray, dtype=np.float32) -> np.ndarray:
        """AUC for each row of ``weights`` (B, n_units) -> (B,); NaN without both classes."""
        w = np.asarray(weights, dtype=dtype)[:, self.unit]
        prefix_neg = np.cumsum(w * self.negative.astype(dtype), axis=1)
        below = 0.5 * (prefix_neg[:, self.hi_idx] + prefix_neg[:, self.lo_idx] * self.lo_valid.astype(dtype))
        pos_w = w[:, self.pos_idx]
        numerator = np.einsum("ij,ij->i", pos_w, below, dtype=np.float64)
        total_pos = pos_w.sum(axis=1, dtype=np.float64)
        total_neg = prefix_neg[:, -1].astype(np.float64) if w.shape[1] else np.zeros(len(w))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((total_pos > 0) & (total_neg > 0), numerator / (total_pos * total_neg), np.nan)


def weighted_auc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Single AUROC (weights default to 1), computed in float64."""
    w = np.ones((1, len(y))) if weights is None else np.asarray(weights, dtype=float)[None, :]
    return float(AucPlan(y, scores).auc(w, dtype=np.float64)[0])
