"""Confusion counts and the rates derived from them, vectorised over any leading axes.

Counts arrays have a last axis of length 4 ordered ``(tp, fn, fp, tn)``. A rate whose denominator
is zero is NaN (never 0 or 1): e.g. TPR of a group with no positives.
"""

from __future__ import annotations

import numpy as np

TP, FN, FP, TN = range(4)


def confusion_indicators(y: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-row one-hot (tp, fn, fp, tn) for arrays of shape (n, L); NaN labels give all zeros."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(y_pred, dtype=bool)
    known = ~np.isnan(y)
    pos, neg = known & (y == 1), known & (y == 0)
    return np.stack([pos & p, pos & ~p, neg & p, neg & ~p], axis=-1).astype(np.float64)


def _ratio(num, den):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Counts and rates from confusion counts (..., 4): n, n_pos, n_neg, tp, fn, fp, tn, TPR (sensitivity),
    FPR, TNR (specificity), PPV (precision), FNR (miss rate), NPV, FDR (1 - PPV) and FOR (false omission rate,
    1 - NPV); each rate NaN where its denominator is 0 (fairlearn / scikit-learn conventions otherwise)."""
    tp, fn, fp, tn = (counts[..., k] for k in range(4))
    return {
        "n": tp + fn + fp + tn,
        "n_pos": tp + fn,
        "n_neg": fp + tn,
        "tp": tp, "fn": fn, "fp": fp, "tn": tn,
        "tpr": _ratio(tp, tp + fn),
        "fpr": _ratio(fp, fp + tn),
        "tnr": _ratio(tn, fp + tn),
        "ppv": _ratio(tp, tp + fp),
        "fnr": _ratio(fn, tp + fn),
        "npv": _ratio(tn, tn + fn),
        "fdr": _ratio(fp, tp + fp),
        "for": _ratio(fn, tn + fn),
    }
