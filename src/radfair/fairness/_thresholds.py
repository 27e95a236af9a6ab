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
#: Operating-point rules with a target: ``fpr:0.2`` (the highest sensitivity with FPR <= 0.2; Glocker et al. 2023)
#: and ``tpr:0.9`` (the lowest FPR with sensitivity >= 0.9).
TARGET_RULES = ("fpr", "tpr")


def parse_rule(rule: str) -> tuple[str, float | None] | None:
    """``"f1"`` -> ("f1", None); ``"fpr:0.2"`` -> ("fpr", 0.2); anything else (a number, a file) -> None.

    Raises ValueError for a target rule whose target is not a number in [0, 1].
    """
    text = str(rule).strip().lower()
    if text in RULES:
        return text, None
    name, sep, target = text.partition(":")
    if sep and name in TARGET_RULES:
        try:
            value = float(target)
        except ValueError:
            raise ValueError(f"threshold rule {rule!r}: the target {target!r} is not a number") from None
        if not 0 <= value <= 1:
            raise ValueError(f"threshold rule {rule!r}: the target must lie in [0, 1]")
        return name, value
    return None


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
    """The threshold for one label under ``rule``; NaN when the labels hold one class only.

    ``rule``: one of :data:`RULES`, or a target rule ``fpr:x`` / ``tpr:x`` (:data:`TARGET_RULES`): the lowest
    threshold whose FPR is <= x (so the highest sensitivity at that specificity), or the highest threshold whose
    TPR is >= x. With ties in the scores the achieved rate can differ from the target; it never exceeds an FPR
    target nor falls below a TPR target (a target that no threshold meets gives the closest safe one: above every
    score for ``fpr``, the lowest score for ``tpr``).
    """
    thresholds, tp, fp, n_pos, n_neg = operating_points(y, scores)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    parsed = parse_rule(rule)
    if parsed is not None and parsed[1] is not None:
        name, target = parsed
        if name == "fpr":
            ok = np.flatnonzero(fp / n_neg <= target + 1e-12)
            return float(thresholds[ok[0]]) if len(ok) else float(np.nextafter(thresholds[-1], np.inf))
        ok = np.flatnonzero(tp / n_pos >= target - 1e-12)
        return float(thresholds[ok[-1]]) if len(ok) else float(thresholds[0])
    if rule == "f1":
        objective = 2 * tp / (2 * tp + fp + (n_pos - tp))
    elif rule == "balanced":
        objective = -np.abs(tp / n_pos - (1 - fp / n_neg))
    elif rule == "youden":
        objective = tp / n_pos - fp / n_neg
    else:
        raise ValueError(f"unknown threshold rule {rule!r}; expected one of {RULES}")
    return float(thresholds[int(np.argmax(objective))])
