"""Selection rate, demographic parity and calibration per group, vectorised over replicates.

* Selection rate ``P(score >= threshold)`` over images with a known label; demographic-parity
  difference = max - min selection rate over groups (fairlearn ``demographic_parity_difference``,
  ``method="between_groups"``).
* Calibration with ``K`` equal-width bins on [0, 1], bin k = (k/K, (k+1)/K] except the first, which
  also holds 0 (the binning of scikit-learn ``calibration_curve(strategy="uniform")``).
  ECE = sum_k (n_k / n) |mean(y)_k - mean(p)_k| = sum_k |sum y_k - sum p_k| / n (Guo et al. 2017,
  eq. 3); calibration-in-the-large (CITL) = mean(p) - mean(y) (> 0: over-predicts; Van Calster et
  al. 2019); calibration gap = max - min ECE over groups.

Every quantity is a function of per-bin sums; the audit takes them, for every replicate, from the sorted
sweep (:mod:`._sweep`); ``calibration_values``/``residual_values`` are the per-image rows its tests sum independently.
"""

from __future__ import annotations

import numpy as np

from ._rates import _ratio

N_BINS = 10


def bin_index(scores: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Bin of each score: (k/K, (k+1)/K], first bin [0, 1/K] (scikit-learn's uniform binning)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], scores, side="left")


def calibration_values(y: np.ndarray, scores: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Per-image indicator rows (n, L * K * 3): (count, sum y, sum p) per label and bin; NaN labels give zeros."""
    n, n_labels = y.shape
    known = ~np.isnan(y)
    bins = bin_index(scores, n_bins)
    out = np.zeros((n, n_labels, n_bins, 3))
    rows, cols = np.nonzero(known)
    b = bins[rows, cols]
    out[rows, cols, b, 0] = 1.0
    out[rows, cols, b, 1] = y[rows, cols]
    out[rows, cols, b, 2] = scores[rows, cols]
    return out.reshape(n, -1)


def residual_values(y: np.ndarray, scores: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Compact per-image rows (n, L * (K + 1)): (y - p) per label and bin, then the known-label count.

    ECE and CITL need only these sums (``ece = sum_k |sum (y - p)_k| / n``), which keeps the
    replicate matrix product 2.7 times smaller than the full (count, sum y, sum p) bins.
    """
    n, n_labels = y.shape
    known = ~np.isnan(y)
    bins = bin_index(scores, n_bins)
    out = np.zeros((n, n_labels, n_bins + 1))
    rows, cols = np.nonzero(known)
    out[rows, cols, bins[rows, cols]] = y[rows, cols] - scores[rows, cols]
    out[rows, cols, n_bins] = 1.0
    return out.reshape(n, -1)


def residual_metrics(sums: np.ndarray) -> dict[str, np.ndarray]:
    """From residual sums (..., K + 1) to n_cal, ece and citl (...); equal to ``calibration_metrics``."""
    n = sums[..., -1]
    resid = sums[..., :-1]
    return {"n_cal": n, "ece": _ratio(np.abs(resid).sum(axis=-1), n), "citl": _ratio(-resid.sum(axis=-1), n)}


def calibration_metrics(sums: np.ndarray) -> dict[str, np.ndarray]:
    """From per-bin sums (..., K, 3) to n, ece, citl (...) and per-bin observed / predicted means (..., K)."""
    count, sum_y, sum_p = sums[..., 0], sums[..., 1], sums[..., 2]
    n = count.sum(axis=-1)
    return {
        "n_cal": n,
        "ece": _ratio(np.abs(sum_y - sum_p).sum(axis=-1), n),
        "citl": _ratio(sum_p.sum(axis=-1) - sum_y.sum(axis=-1), n),
        "bin_count": count,
        "bin_observed": _ratio(sum_y, count),
        "bin_predicted": _ratio(sum_p, count),
    }


def selection_rate(counts: np.ndarray) -> np.ndarray:
    """(tp + fp) / n from confusion counts (..., 4)."""
    tp, fn, fp, tn = (counts[..., k] for k in range(4))
    return _ratio(tp + fp, tp + fn + fp + tn)
