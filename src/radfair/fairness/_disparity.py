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


def extreme_groups(disparity: np.ndarray, groups: list[str], favourable: bool) -> str:
    """Group(s) holding the max (favourable) or min disparity on the most labels, as ``Female (10/13)``.

    ``disparity`` is (G, L); labels where every group is NaN are not counted.
    """
    valid = ~np.all(np.isnan(disparity), axis=0)
    if not valid.any():
        return ""
    d = np.where(np.isnan(disparity[:, valid]), -np.inf if favourable else np.inf, disparity[:, valid])
    winners = np.argmax(d, axis=0) if favourable else np.argmin(d, axis=0)
    counts = np.bincount(winners, minlength=len(groups))
    best = np.flatnonzero(counts == counts.max())
    return f"{', '.join(groups[i] for i in best)} ({counts.max()}/{int(valid.sum())})"
