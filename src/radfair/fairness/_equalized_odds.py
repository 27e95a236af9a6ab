"""Equalized odds (Hardt et al. 2016) and equal opportunity, both conventions named.

* ``eodd_worst = max(dTPR, dFPR)``: the paper text's worst case over y in {0, 1} and group pairs;
  equals fairlearn ``equalized_odds_difference(agg="worst_case")``.
* ``eodd_mean = (dTPR + dFPR) / 2``: what the reconstruction paper's code computes; equals
  fairlearn ``agg="mean"``.
* ``eop = dTPR``: equal opportunity difference.

``dX = max_g X_g - min_g X_g`` over groups whose rate is defined (NaN groups skipped); NaN when
fewer than two groups are defined, and ``eodd_worst``/``eodd_mean`` are NaN when either part is.
"""

from __future__ import annotations

import numpy as np

from ._disparity import spread


def equalized_odds(tpr: np.ndarray, fpr: np.ndarray) -> dict[str, np.ndarray]:
    """From group rates (..., G, L) to eodd_worst, eodd_mean and eop of shape (..., L)."""
    d_tpr, d_fpr = spread(tpr), spread(fpr)
    return {"eodd_worst": np.maximum(d_tpr, d_fpr), "eodd_mean": (d_tpr + d_fpr) / 2, "eop": d_tpr}


def min_max_ratio(values: np.ndarray) -> np.ndarray:
    """min / max over groups (axis -2) of non-negative rates (..., G, L) -> (..., L), ignoring NaN groups.

    fairlearn's ratio convention (``demographic_parity_ratio``, ``equalized_odds_ratio``): 1 is parity, 0 the
    largest disparity; NaN with fewer than two defined groups; a max of 0 (every group at 0) gives 1.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanmin(values, axis=-2), np.nanmax(values, axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(high > 0, low / np.where(high > 0, high, 1.0), 1.0)
    return np.where(np.sum(~np.isnan(values), axis=-2) >= 2, ratio, np.nan)


def equalized_odds_ratios(tpr: np.ndarray, fpr: np.ndarray) -> dict[str, np.ndarray]:
    """Ratio forms (..., L): ``eo_ratio`` = min(TPR ratio, FPR ratio) (fairlearn ``equalized_odds_ratio``,
    agg="worst_case"), ``eop_ratio`` = TPR ratio (min/max TPR over groups)."""
    tpr_ratio, fpr_ratio = min_max_ratio(tpr), min_max_ratio(fpr)
    return {"eo_ratio": np.fmin(tpr_ratio, fpr_ratio), "eop_ratio": tpr_ratio}
