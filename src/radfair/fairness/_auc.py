"""AUROC with observation weights, vectorised over bootstrap replicates.

``AUC = sum_i w_i [y_i=1] (W_neg(s < s_i) + 0.5 W_neg(s = s_i)) / (W_pos W_neg)``: the Mann-Whitney
statistic with ties counted half, identical to scikit-learn's ``roc_auc_score`` when all w_i = 1.
Weights are the bootstrap multiplicities of each image's patient.
"""

from __future__ import annotations

import numpy as np


class AucPlan:
    """Sorting and tie structure of one (labels, scores) set, reused for every weight vector."""

    def __init__(self, y: np.ndarray, scores: np.ndarray):
        y = np.asarray(y, dtype=float)
        keep = ~np.isnan(y)
        self.rows = np.flatnonzero(keep)
        order = np.argsort(scores[keep], kind="mergesort")
        self.rows = self.rows[order]
        s = np.asarray(scores, dtype=float)[self.rows]
        self.pos = (y[self.rows] == 1).astype(np.float64)
        n = len(s)
        new_value = np.r_[True, s[1:] != s[:-1]] if n else np.zeros(0, bool)
        starts = np.flatnonzero(new_value)
        tie_id = np.cumsum(new_value) - 1
        ends = np.r_[starts[1:], n] - 1
        self.start = starts[tie_id] if n else np.zeros(0, int)
        self.end = ends[tie_id] if n else np.zeros(0, int)

    def auc(self, weights: np.ndarray) -> np.ndarray:
        """AUC for each row of ``weights`` (B, n_rows_total) -> (B,); NaN without both classes."""
        w = weights[:, self.rows]
        pos_w = w * self.pos
        neg_w = w - pos_w
        cum_neg = np.concatenate([np.zeros((w.shape[0], 1)), np.cumsum(neg_w, axis=1)], axis=1)
        below_and_half_ties = 0.5 * (cum_neg[:, self.end + 1] + cum_neg[:, self.start])
        numerator = np.sum(pos_w * below_and_half_ties, axis=1)
        total_pos, total_neg = pos_w.sum(axis=1), cum_neg[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((total_pos > 0) & (total_neg > 0), numerator / (total_pos * total_neg), np.nan)


def weighted_auc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Single AUROC (weights default to 1)."""
    w = np.ones((1, len(y))) if weights is None else np.asarray(weights, dtype=float)[None, :]
    return float(AucPlan(y, np.asarray(scores, dtype=float)).auc(w)[0])
