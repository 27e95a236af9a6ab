"""Per-label decision thresholds chosen on validation scores.

Rules (the prediction is always ``score >= threshold``):

* ``f1``: maximise F1 over the precision-recall curve (Seyyed-Kalantari et al. 2021; study 1).
* ``balanced``: minimise |sensitivity - specificity| over the ROC curve (study 2).
* ``youden``: maximise sensitivity + specificity - 1.

Candidate thresholds are the distinct scores; ties in the objective go to the lowest threshold, as
``np.argmax`` over scikit-learn's ascending ``precision_recall_curve`` thresholds does.
"""

from __future__ import annotations

import numpy as np

RULES = ("f1", "balanced", "youden")


def operating_points(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Distinct thresholds (ascending) and the TP and FP counts of ``score >= threshold`` at each."""
    y = np.asarray(y, dtype=float)
    scores = np.asarray(scores, dtype=float)
    keep = ~np.isnan(y)
    y, scores = y[keep], scores[keep]
    order = np.argsort(-scores, kind="mergesort")
    s, t = scores[order], y[order]
    tp = np.cumsum(t)
    fp = np.cumsum(1 - t)
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    thresholds, tp, fp = s[last_of_tie], tp[last_of_tie], fp[last_of_tie]
    return thresholds[::-1], tp[::-1], fp[::-1], int(t.sum()), int(len(t) - t.sum())


def choose_threshold(y: np.ndarray, scores: np.ndarray, rule: str) -> float:
    """The threshold for one label under ``rule``; NaN when the labels hold one class only."""
    thresholds, tp, fp, n_pos, n_neg = operating_points(y, scores)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    if rule == "f1":
        objective = 2 * tp / (2 * tp + fp + (n_pos - tp))
    elif rule == "balanced":
        objective = -np.abs(tp / n_pos - (1 - fp / n_neg))
    elif rule == "youden":
        objective = tp / n_pos - fp / n_neg
    else:
        raise ValueError(f"unknown threshold rule {rule!r}; expected one of {RULES}")
    return float(thresholds[int(np.argmax(objective))])
