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
        n = len(s)
        new_value = np.r_[True, s[1:] != s[:-1]] if n else np.zeros(0, bool)
        starts = np.flatnonzero(new_value)
        tie = np.cumsum(new_value) - 1
        ends = np.r_[starts[1:], n] - 1
        self.pos_idx = np.flatnonzero(positive)
        self.neg_unit = self.unit[~positive]
        self.pos_unit = self.unit[positive]
        # negatives counted up to the end of each positive's tie group / before its start: indices
        # into the negatives-only prefix sum P0[:, k] = weight of the first k negatives (P0[:, 0] = 0)
        neg_upto = np.cumsum(~positive)
        self.hi_idx = neg_upto[ends[tie][self.pos_idx]] if n else np.zeros(0, int)
        before = starts[tie][self.pos_idx] - 1 if n else np.zeros(0, int)
        self.lo_idx = np.where(before >= 0, neg_upto[np.maximum(before, 0)], 0) if n else np.zeros(0, int)

    def auc(self, weights: np.ndarray, dtype=np.float32) -> np.ndarray:
        """AUC for each row of ``weights`` (B, n_units) -> (B,); NaN without both classes.

        Only the negatives' weights are prefix-summed (in presorted score order); each positive reads
        the sums at the two ends of its tie group.
        """
        weights = np.asarray(weights, dtype=dtype)
        b = weights.shape[0]
        prefix = np.zeros((b, len(self.neg_unit) + 1), dtype=dtype)
        np.cumsum(weights[:, self.neg_unit], axis=1, out=prefix[:, 1:])
        pos_w = weights[:, self.pos_unit]
        below = 0.5 * (prefix[:, self.hi_idx] + prefix[:, self.lo_idx])
        numerator = np.einsum("ij,ij->i", pos_w, below, dtype=np.float64)
        total_pos = pos_w.sum(axis=1, dtype=np.float64)
        total_neg = prefix[:, -1].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((total_pos > 0) & (total_neg > 0), numerator / (total_pos * total_neg), np.nan)


def weighted_auc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Single AUROC (weights default to 1), computed in float64."""
    w = np.ones((1, len(y))) if weights is None else np.asarray(weights, dtype=float)[None, :]
    return float(AucPlan(y, scores).auc(w, dtype=np.float64)[0])
