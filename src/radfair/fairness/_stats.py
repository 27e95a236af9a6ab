"""Statistics helpers: percentile CIs, centred bootstrap p-values, Holm and BH, t-CIs over seeds."""

from __future__ import annotations

import math
import statistics
import warnings

import numpy as np


def nan_quantiles(values: np.ndarray, qs, axis: int = 0) -> np.ndarray:
    """``np.nanquantile(values, qs, axis)`` (linear interpolation), vectorised: one sort, NaN last, then the
    interpolated order statistics of each slice's finite values. Shape (len(qs), *other axes); all-NaN -> NaN."""
    v = np.moveaxis(np.asarray(values, dtype=float), axis, 0)
    ordered = np.sort(v, axis=0)  # NaN sorts last
    n = np.sum(~np.isnan(v), axis=0)
    out = []
    for q in np.atleast_1d(qs):
        position = q * np.maximum(n - 1, 0)
        lower = np.floor(position).astype(np.int64)
        upper = np.minimum(lower + 1, np.maximum(n - 1, 0))
        low_value = np.take_along_axis(ordered, lower[None], axis=0)[0]
        high_value = np.take_along_axis(ordered, upper[None], axis=0)[0]
        value = low_value + (position - lower) * (high_value - low_value)
        out.append(np.where(n > 0, value, np.nan))
    return np.stack(out)


def percentile_ci(replicates: np.ndarray, level: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval over ``axis`` (NaN replicates ignored; equal to ``np.nanquantile``)."""
    alpha = (1 - level) / 2
    if np.asarray(replicates).shape[axis] == 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanquantile(replicates, [alpha, 1 - alpha], axis=axis)
        return low, high
    low, high = nan_quantiles(replicates, [alpha, 1 - alpha], axis=axis)
    return low, high


def bootstrap_p_value(estimate: np.ndarray, replicates: np.ndarray, axis: int = 0) -> np.ndarray:
    """Two-sided p-value for H0: parameter = 0, from the bootstrap distribution centred at the estimate.

    ``p = (1 + #{|d*_b - d| >= |d|}) / (1 + B)`` over the finite replicates (Hall & Wilson 1991);
    the centring is what makes it valid (the uncentred version is ~0.5 whatever the effect).
    """
    estimate = np.asarray(estimate, dtype=float)
    centred = np.abs(replicates - np.expand_dims(estimate, axis))
    finite = np.isfinite(replicates)
    extreme = np.sum(finite & (centred >= np.expand_dims(np.abs(estimate), axis) - 1e-12), axis=axis)
    n = np.sum(finite, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (1 + extreme) / (1 + n)
    return np.where(np.isfinite(estimate) & (n > 0), p, np.nan)


#: Two-sided bootstrap p-values for H0: delta = 0, by name (recorded in audit.json / study.json).
P_VALUE_METHODS = {
    "bootstrap-normal": "2 * (1 - Phi(|d| / se*)), se* = standard deviation of the paired bootstrap replicates of the "
                        "delta (normal-approximation bootstrap test; Efron & Tibshirani 1993, sec. 16.4); continuous, so "
                        "Holm can reach any alpha / m",
    "bootstrap-count": "(1 + #{|d* - d| >= |d|}) / (1 + B), centred percentile bootstrap (Hall & Wilson 1991); its "
                       "smallest value is 1 / (B + 1)",
}


def normal_quantile(q: float) -> float:
    """The standard normal quantile ``Phi^-1(q)`` for ``0 < q < 1`` (Wichura's AS241 in the standard library,
    relative error about 1e-16; equal to ``scipy.stats.norm.ppf``, without scipy.stats' 0.3-0.5 s import)."""
    return statistics.NormalDist().inv_cdf(q)


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def two_sided_normal_p(z) -> np.ndarray:
    """``2 (1 - Phi(|z|)) = erfc(|z| / sqrt 2)``, elementwise, float (NaN stays NaN). ``math.erfc`` keeps full
    relative precision in the tail down to the smallest double (p about 1e-308 at |z| = 37.5), as
    ``2 * scipy.stats.norm.sf`` does."""
    z = np.abs(np.asarray(z, dtype=float))
    return np.asarray(_ERFC(z / math.sqrt(2)), dtype=float).reshape(z.shape)


def normal_p_value(estimate: np.ndarray, replicates: np.ndarray, axis: int = 0) -> np.ndarray:
    """Two-sided normal-approximation bootstrap p-value for H0: parameter = 0.

    ``p = 2 (1 - Phi(|d| / se*))`` with ``se*`` the standard deviation of the finite ``replicates`` along
    ``axis``. Unlike the count p-value it has no floor at ``1 / (B + 1)``, so a multiple-testing
    correction over a large family can fire. Replicates that never vary give p = 1 when the estimate is
    0 and p = 0 otherwise; fewer than two finite replicates or a NaN estimate give NaN.
    """
    estimate = np.asarray(estimate, dtype=float)
    replicates = np.asarray(replicates, dtype=float)
    n = np.sum(np.isfinite(replicates), axis=axis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        se = np.nanstd(np.where(np.isfinite(replicates), replicates, np.nan), axis=axis, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.abs(estimate) / se
    p = np.where(se > 0, two_sided_normal_p(z), np.where(estimate == 0, 1.0, 0.0))
    return np.where(np.isfinite(estimate) & (n >= 2), p, np.nan)


def p_value(estimate: np.ndarray, replicates: np.ndarray, method: str = "bootstrap-normal", axis: int = 0) -> np.ndarray:
    """Two-sided bootstrap p-value by name (:data:`P_VALUE_METHODS`); ValueError for an unknown name."""
    if method == "bootstrap-normal":
        return normal_p_value(estimate, replicates, axis)
    if method == "bootstrap-count":
        return bootstrap_p_value(estimate, replicates, axis)
    raise ValueError(f"unknown p-value method {method!r}; expected one of {sorted(P_VALUE_METHODS)}")


def p_value_floor(method: str, n_replicates: int) -> float:
    """The smallest p-value ``method`` can report with ``n_replicates`` replicates."""
    if method == "bootstrap-count":
        return 1.0 / (n_replicates + 1)
    if method == "bootstrap-normal":
        return float(np.finfo(float).tiny)
    raise ValueError(f"unknown p-value method {method!r}; expected one of {sorted(P_VALUE_METHODS)}")


def _adjust(p_values: np.ndarray, step) -> np.ndarray:
    """Apply a step-wise adjustment ``step(sorted p, m) -> adjusted`` to the non-NaN p-values."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if len(ok):
        order = ok[np.argsort(p[ok], kind="mergesort")]
        out[order] = np.minimum(step(p[order], len(ok)), 1.0)
    return out


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error); NaNs are left out of the family."""
    return _adjust(p_values, lambda p, m: np.maximum.accumulate((m - np.arange(m)) * p))


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate); NaNs left out of the family."""
    return _adjust(p_values, lambda p, m: np.minimum.accumulate((p * m / np.arange(1, m + 1))[::-1])[::-1])


def mean_ci_over_seeds(values, level: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and Student-t interval over independent runs (seeds): ``mean +- t_(n-1) * sd / sqrt(n)``.

    With 5 seeds t_4 = 2.776, not 1.96 (a bug in the embeddings paper's code made its intervals
    about 29% too narrow).
    """
    values = np.asarray(values, dtype=float)
    n = np.sum(~np.isnan(values), axis=axis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=axis)
        sd = np.nanstd(values, axis=axis, ddof=1)
    from scipy import stats  # lazy: scipy.stats adds 0.3 s to every command's start
    t = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
    half = np.where(n >= 2, t * sd / np.sqrt(np.maximum(n, 1)), np.nan)
    return mean, mean - half, mean + half


def wilson_interval(successes: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (Wilson 1927), elementwise; NaN where ``n`` is 0.

    Used as the floor of a group rate's bootstrap interval: a group with one positive detected has TPR 1.0 and a
    percentile interval [1, 1]; its Wilson interval is [0.21, 1.0] at 95%.
    """
    x, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    z = normal_quantile(0.5 + level / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    ok = n > 0
    return np.where(ok, np.clip(centre - half, 0, 1), np.nan), np.where(ok, np.clip(centre + half, 0, 1), np.nan)
