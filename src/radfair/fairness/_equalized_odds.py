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
