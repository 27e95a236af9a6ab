"""Intervals for max - min statistics, projected from simultaneous max-t bootstrap bands.

The plug-in ``max_g r_g - min_g r_g`` of noisy group rates is biased upward, and its percentile
bootstrap interval inherits (and roughly doubles) that bias: with small groups it misses the truth
almost always. Instead we build a *simultaneous* band on every group rate of the family,

    r_g in [r^_g - c se_g, r^_g + c se_g] for all g,   c = (level)-quantile of max_g |r*_g - r^_g| / se_g

(max-t / "sup-t" bootstrap band; Montiel Olea & Plagborg-Moller 2019, eq. 5), and project it onto the
statistic: every function of the rates takes its min and max over the band's box. When the band
covers (probability >= level by construction), so does the projected interval, whatever the bias.
The plug-in always lies inside its projected interval (r^ lies in the box).

The bias-corrected point estimate is the bootstrap one, ``2 t^ - mean(t*)`` (Efron & Tibshirani
1993, eq. 10.5; advocated for disparity measures by Lum, Zhang & Bower, "De-biasing 'bias'
measurement", FAccT 2022), clipped into the projected interval so that it too lies inside it.

``se_g`` is the bootstrap standard deviation, floored by the binomial ``sqrt(p~(1-p~)/n)`` with
``p~ = (x + 1) / (n + 2)``, so a group whose replicates never vary (e.g. TPR = 1 in 20 positives)
still gets a band of honest width, and the critical value ``c`` is never below the marginal normal
quantile ``z_(1/2 + level/2)`` (a simultaneous band is never narrower than a marginal one).
"""

from __future__ import annotations

import warnings

import numpy as np

from ._stats import normal_quantile


def max_t_band(point: np.ndarray, reps: np.ndarray, n: np.ndarray | None = None, level: float = 0.95,
               family_axes: tuple[int, ...] = (-1,), bounds: tuple[float, float] | None = (0.0, 1.0),
               ) -> tuple[np.ndarray, np.ndarray]:
    """Simultaneous max-t bootstrap band on ``point`` (...), from replicates ``reps`` (B, ...).

    ``bounds``: the parameter space of every entry (rates, Dice and ECE lie in [0, 1], the default). The
    band is intersected with it, which keeps its coverage (the true values lie inside the bounds) and
    keeps every projected max - min interval inside [0, upper - lower]. None: no clipping.

    ``family_axes`` (axes of ``point``) are the ones the band is simultaneous over; the critical
    value is computed separately for every index of the other axes. ``n`` (same shape as ``point``)
    gives the denominators of rates for the binomial floor of the standard error; None: no floor.
    NaN entries of ``point`` (undefined rates) are left out of the family and stay NaN. With ``bounds``, an
    entry the replicates cannot measure (undefined in more than ``1 - level`` of them, or never varying) gets the
    whole parameter range as its band and leaves the max, so it neither voids nor narrows the others' band.
    """
    point = np.asarray(point, dtype=float)
    reps = np.asarray(reps, dtype=float)
    axes = tuple(a % point.ndim for a in family_axes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        se = np.nanstd(reps, axis=0, ddof=1) if len(reps) > 1 else np.full(point.shape, np.nan)
        if n is not None:
            n = np.asarray(n, dtype=float)
            p = (np.nan_to_num(point) * n + 1) / (n + 2)
            floor = np.sqrt(p * (1 - p) / np.where(n > 0, n, np.nan))
            se = np.fmax(se, floor)
        se = np.where(se > 0, se, np.nan)
        # a member undefined in more than (1 - level) of the replicates (e.g. a group with 1-3 positives) cannot be
        # banded from them: it leaves the max (so it cannot void the others' band) and, with bounds, gets the whole
        # parameter range as its band (any value is possible)
        lost = np.mean(np.isnan(reps), axis=0) if len(reps) else np.zeros(point.shape)
        unstable = ~np.isnan(point) & (lost > 1 - level)
        if bounds is not None and len(reps) > 1:  # replicates that never vary (no binomial floor) measure nothing either
            unstable |= ~np.isnan(point) & np.isnan(se)
        t = np.abs(reps - point) / se  # (B, ...)
        t = np.where(np.isnan(point) | unstable, np.nan, t)
        tmax = np.nanmax(t, axis=tuple(a + 1 for a in axes), keepdims=True)  # (B, ...)
        measured = np.any(~np.isnan(point) & ~unstable, axis=axes, keepdims=True)[None]
        tmax = np.where(np.isnan(tmax) & measured, np.inf, tmax)  # a replicate losing every measured member: no trust
        c = np.quantile(tmax, level, axis=0, method="higher") if len(reps) else np.full(tmax.shape[1:], np.nan)
        c = np.fmax(c, normal_quantile(0.5 + level / 2)) if len(reps) else c  # never below the marginal z
    half = np.where(np.isfinite(c), c * se, np.nan)
    half = np.where(np.isnan(se) & ~np.isnan(point) & ~unstable, np.nan, half)
    low, high = point - half, point + half
    if bounds is not None:
        low, high = np.clip(low, *bounds), np.clip(high, *bounds)
        low, high = np.where(unstable, bounds[0], low), np.where(unstable, bounds[1], high)
    return low, high


def spread_interval(low: np.ndarray, high: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Range of ``max - min`` over ``axis`` for vectors inside the box [low, high]; NaN unless >= 2 defined."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.maximum(np.nanmax(low, axis=axis) - np.nanmin(high, axis=axis), 0.0)
        hi = np.nanmax(high, axis=axis) - np.nanmin(low, axis=axis)
    ok = np.sum(~np.isnan(low) & ~np.isnan(high), axis=axis) >= 2
    return np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)


def ratio_interval(low: np.ndarray, high: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Range of ``max / min`` over ``axis`` for positive vectors inside [low, high] (inf if min can be 0)."""
    low = np.maximum(low, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with np.errstate(divide="ignore", invalid="ignore"):
            lo = np.maximum(np.nanmax(low, axis=axis) / np.nanmin(high, axis=axis), 1.0)
            min_low = np.nanmin(low, axis=axis)
            hi = np.where(min_low > 0, np.nanmax(high, axis=axis) / np.where(min_low > 0, min_low, 1), np.inf)
    ok = np.sum(~np.isnan(low) & ~np.isnan(high), axis=axis) >= 2
    return np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)


def bias_corrected(point: np.ndarray, reps: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Bootstrap bias-corrected estimate ``2 t^ - mean(t*)``, clipped into [low, high]."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(reps, axis=0) if len(reps) else np.full(np.shape(point), np.nan)
    corrected = 2 * np.asarray(point, dtype=float) - mean
    corrected = np.where(np.isnan(corrected), point, corrected)
    return np.clip(corrected, low, high)


def min_max_ratio_interval(low: np.ndarray, high: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Range of ``min / max`` over ``axis`` for non-negative vectors inside the box [low, high], within [0, 1]."""
    low = np.maximum(low, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with np.errstate(divide="ignore", invalid="ignore"):
            max_high, min_low = np.nanmax(high, axis=axis), np.nanmin(low, axis=axis)
            lo = np.where(max_high > 0, min_low / np.where(max_high > 0, max_high, 1.0), 1.0)
            min_high, max_low = np.nanmin(high, axis=axis), np.nanmax(low, axis=axis)
            hi = np.where(max_low > 0, np.minimum(min_high / np.where(max_low > 0, max_low, 1.0), 1.0), 1.0)
    ok = np.sum(~np.isnan(low) & ~np.isnan(high), axis=axis) >= 2
    return np.where(ok, np.clip(lo, 0.0, 1.0), np.nan), np.where(ok, np.clip(hi, 0.0, 1.0), np.nan)
