"""TPR disparity, gaps and most (un)favourable groups (CheXclusion; emb-vs-image paper eqs. 1-3).

* Binary attribute (exactly two groups): ``disp_g = TPR_g - TPR_(not g)`` (eq. 1).
* Otherwise: ``disp_g = TPR_g - median_k TPR_k`` over groups with at least one positive,
  the median including g itself (eq. 2).
* ``gap_l = max_g disp_g - min_g disp_g`` (eq. 3); the average gap is the mean over labels.

All functions take TPR arrays of shape (..., G, L) and ignore NaN groups (no positives).
"""

from __future__ import annotations

import warnings

import numpy as np


def tpr_disparity(tpr: np.ndarray) -> np.ndarray:
    """Disparity per group, same shape as ``tpr`` (..., G, L)."""
    n_groups = tpr.shape[-2]
    if n_groups == 2:
        return tpr - tpr[..., ::-1, :]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices -> NaN
        median = np.nanmedian(tpr, axis=-2, keepdims=True)
    return tpr - median


def _nan_extreme(values: np.ndarray, axis: int, func) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return func(values, axis=axis)


def gap(disparity: np.ndarray) -> np.ndarray:
    """max - min disparity over groups: (..., G, L) -> (..., L); NaN unless two or more groups are defined."""
    value = _nan_extreme(disparity, -2, np.nanmax) - _nan_extreme(disparity, -2, np.nanmin)
    return np.where(np.sum(~np.isnan(disparity), axis=-2) >= 2, value, np.nan)


def spread(values: np.ndarray) -> np.ndarray:
    """max - min over groups (axis -2), ignoring NaN groups."""
    return gap(values)


def label_winners(disparity: np.ndarray, favourable: bool, tol: float = 1e-12) -> np.ndarray:
    """Index of the group holding the strict max (favourable) or min disparity per label, -1 if none.

    ``disparity`` is (G, L). A label with fewer than two defined groups, or where two or more groups
    tie at the extreme (within ``tol``), has no winner: a tie favours nobody. With two groups the
    favourable and unfavourable winners are therefore always complementary.
    """
    d = np.asarray(disparity, dtype=float)
    if d.shape[0] == 0:
        return np.full(d.shape[1], -1, dtype=np.int64)
    sign = 1.0 if favourable else -1.0
    filled = np.where(np.isnan(d), -np.inf, sign * d)
    best = np.max(filled, axis=0)
    at_best = np.isfinite(filled) & (filled >= best - tol)
    unique = (at_best.sum(axis=0) == 1) & (np.sum(~np.isnan(d), axis=0) >= 2)
    return np.where(unique, np.argmax(filled, axis=0), -1)


def extreme_groups(disparity: np.ndarray, groups: list[str], favourable: bool) -> str:
    """Group(s) holding the strict max (favourable) or min disparity on the most labels, as ``Female (10/13)``.

    ``disparity`` is (G, L). The denominator counts labels with at least two defined groups; a label
    where groups tie at the extreme counts for no group (``label_winners``). Returns ``""`` when no
    label is counted and ``"none (0/L)"`` when every counted label is a tie.
    """
    d = np.asarray(disparity, dtype=float)
    valid = np.sum(~np.isnan(d), axis=0) >= 2
    if not valid.any():
        return ""
    winners = label_winners(d[:, valid], favourable)
    counts = np.bincount(winners[winners >= 0], minlength=len(groups))
    total = int(valid.sum())
    if counts.max() == 0:
        return f"none (0/{total})"
    best = np.flatnonzero(counts == counts.max())
    return f"{', '.join(groups[i] for i in best)} ({counts.max()}/{total})"
