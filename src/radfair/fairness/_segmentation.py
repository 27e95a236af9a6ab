"""Segmentation fairness: per-patient Dice, group Dice, delta-Dice and skewed error ratio.

* Dice per sample: ``2|P & T| / (|P| + |T|)``. What an empty ground truth gives is a named convention
  (:data:`EMPTY_CONVENTIONS`): ``both_empty_nan`` (radfair's default: NaN only when both masks are empty, so an
  empty slice never counts as perfect, while a false positive on it scores 0), ``ignore_empty`` (MONAI's
  ``DiceMetric(ignore_empty=True)``: NaN whenever the truth is empty, whatever the prediction) or
  ``empty_is_one`` (MONAI's ``ignore_empty=False``: 1 if the prediction is empty too, else 0).
* Per-class Dice of label maps (:func:`per_class_dice`) and boundary distances (Hausdorff 95, average surface
  distance; :func:`surface_distances`, computed by MONAI) per sample, then group means with patient-bootstrap
  percentile intervals (:func:`group_means`).
* Group Dice: mean of per-patient Dice within the group.
* ``delta_dice = max_g Dice_g - min_g Dice_g``.
* ``SER = max_g (1 - Dice_g) / min_g (1 - Dice_g)`` (Siddiqui et al. 2024, adapted to Dice in the
  reconstruction paper); 1 means equal error.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

EMPTY_CONVENTIONS = ("both_empty_nan", "ignore_empty", "empty_is_one")


def dice(pred: np.ndarray, target: np.ndarray, empty: str = "both_empty_nan") -> np.ndarray:
    """Dice per sample for boolean masks of shape (N, ...) -> (N,).

    ``empty`` (:data:`EMPTY_CONVENTIONS`) decides samples whose truth is empty: ``both_empty_nan`` gives NaN
    when both masks are empty and 0 when only the prediction has pixels; ``ignore_empty`` (MONAI ``DiceMetric``
    ``ignore_empty=True``) gives NaN whenever the truth is empty; ``empty_is_one`` (MONAI ``ignore_empty=False``)
    gives 1 when both are empty and 0 otherwise. Raises ValueError for another name.
    """
    if empty not in EMPTY_CONVENTIONS:
        raise ValueError(f"unknown empty-truth convention {empty!r}; expected one of {EMPTY_CONVENTIONS}")
    p = np.asarray(pred, dtype=bool).reshape(len(pred), -1)
    t = np.asarray(target, dtype=bool).reshape(len(target), -1)
    inter = np.sum(p & t, axis=1)
    total = p.sum(axis=1) + t.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(total > 0, 2 * inter / np.where(total > 0, total, 1), np.nan)
    truth_empty = t.sum(axis=1) == 0
    if empty == "ignore_empty":
        value = np.where(truth_empty, np.nan, value)
    elif empty == "empty_is_one":
        value = np.where(truth_empty, np.where(p.sum(axis=1) == 0, 1.0, 0.0), value)
    return value


def per_class_dice(pred: np.ndarray, target: np.ndarray, classes, empty: str = "both_empty_nan") -> np.ndarray:
    """Dice per sample and class of integer label maps (N, ...) -> (N, C), classes in the order given."""
    pred, target = np.asarray(pred), np.asarray(target)
    return np.stack([dice(pred == c, target == c, empty) for c in classes], axis=1)


def surface_distances(pred: np.ndarray, target: np.ndarray, spacing=None, percentile: float = 95.0) -> dict[str, np.ndarray]:
    """Hausdorff distance at ``percentile`` (HD95) and symmetric average surface distance per sample (N,), in the
    units of ``spacing`` (voxels without it), for boolean masks (N, ...), computed by MONAI
    (``compute_hausdorff_distance``, ``compute_average_surface_distance``); NaN where either mask is empty."""
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    p = torch.as_tensor(np.asarray(pred, dtype=bool))[:, None].float()
    t = torch.as_tensor(np.asarray(target, dtype=bool))[:, None].float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI warns for empty masks; they are NaN here
        hd = compute_hausdorff_distance(p, t, include_background=True, percentile=percentile, spacing=spacing)
        asd = compute_average_surface_distance(p, t, include_background=True, symmetric=True, spacing=spacing)
    hd, asd = hd[:, 0].double().numpy(), asd[:, 0].double().numpy()
    either_empty = (p.flatten(1).sum(1) == 0).numpy() | (t.flatten(1).sum(1) == 0).numpy()
    return {f"hd{percentile:g}": np.where(either_empty | ~np.isfinite(hd), np.nan, hd),
            "asd": np.where(either_empty | ~np.isfinite(asd), np.nan, asd)}


def group_means(values: np.ndarray, group: np.ndarray, groups: list[str], bootstrap: int = 1000, seed: int = 0,
                level: float = 0.95) -> pd.DataFrame:
    """Mean per group of per-patient values (N,) or (N, K) (e.g. per-class Dice, HD95) with patient-bootstrap
    percentile intervals: columns group, column (0..K-1), n, mean, ci_low, ci_high. NaN values are left out."""
    from ._bootstrap import replicate_chunks
    from ._stats import percentile_ci

    v = np.asarray(values, dtype=float)
    v = v[:, None] if v.ndim == 1 else v
    rows = []
    for k in range(v.shape[1]):
        point = group_dice(v[:, k], group, len(groups))[0]
        reps = [group_dice(v[:, k], group, len(groups), w) for w in replicate_chunks(len(v), bootstrap, seed)]
        low, high = percentile_ci(np.concatenate(reps), level) if reps else (np.full(len(groups), np.nan),) * 2
        for g, name in enumerate(groups):
            n = int(np.sum((group == g) & ~np.isnan(v[:, k])))
            rows.append({"group": name, "column": k, "n": n, "mean": float(point[g]), "ci_low": float(low[g]),
                         "ci_high": float(high[g])})
    return pd.DataFrame(rows)


def group_dice(dice_per_patient: np.ndarray, group: np.ndarray, n_groups: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted mean Dice per group: (B, G) for weights (B, n_patients) or (1, G) without weights."""
    d = np.asarray(dice_per_patient, dtype=float)
    w = np.ones((1, len(d))) if weights is None else weights
    ok = ~np.isnan(d) & (group >= 0)
    onehot = np.zeros((len(d), n_groups))
    onehot[np.flatnonzero(ok), group[ok]] = 1.0
    num = w @ (onehot * np.nan_to_num(d)[:, None])
    den = w @ onehot
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def segmentation_fairness(group_dice_values: np.ndarray) -> dict[str, np.ndarray]:
    """delta_dice and SER from group Dice (..., G)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        hi, lo = np.nanmax(group_dice_values, axis=-1), np.nanmin(group_dice_values, axis=-1)
        err = 1 - group_dice_values
        with np.errstate(invalid="ignore", divide="ignore"):
            ser = np.nanmax(err, axis=-1) / np.nanmin(err, axis=-1)
    return {"delta_dice": hi - lo, "ser": ser}


def segmentation_audit(dice_per_patient: np.ndarray, group: np.ndarray, groups: list[str], bootstrap: int = 1000,
                       seed: int = 0, level: float = 0.95) -> dict:
    """Group Dice (percentile intervals), delta-Dice and SER (max-t projection intervals, ``_intervals``).

    delta_dice = max - min group Dice and SER = max / min group error (1 - Dice) get the projection
    of a simultaneous max-t band on every group's Dice; ``value_bc`` is the bias-corrected estimate
    (Lum, Zhang & Bower 2022) clipped into that interval; both ``value`` and ``value_bc`` lie inside it.

    ``dice_per_patient`` holds one value per patient (e.g. the mean over a volume's slices), ``group``
    the integer group code of each patient (-1 = unknown).
    """
    from ._bootstrap import replicate_chunks
    from ._intervals import bias_corrected, max_t_band, ratio_interval, spread_interval
    from ._stats import percentile_ci

    n_groups = len(groups)
    point_dice = group_dice(dice_per_patient, group, n_groups)[0]
    point = segmentation_fairness(point_dice)
    reps = [group_dice(dice_per_patient, group, n_groups, w) for w in replicate_chunks(len(dice_per_patient), bootstrap, seed)]
    rep_dice = np.concatenate(reps) if reps else np.full((0, n_groups), np.nan)
    rep_fair = segmentation_fairness(rep_dice)
    low, high = percentile_ci(rep_dice, level)
    out = {"groups": {g: {"dice": float(point_dice[i]), "ci_low": float(low[i]), "ci_high": float(high[i])} for i, g in enumerate(groups)}}
    band_lo, band_hi = max_t_band(point_dice, rep_dice, None, level, family_axes=(0,))
    intervals = {"delta_dice": spread_interval(band_lo, band_hi, axis=0), "ser": ratio_interval(1 - band_hi, 1 - band_lo, axis=0)}
    for name in ("delta_dice", "ser"):
        lo, hi = intervals[name]
        bc = bias_corrected(point[name], rep_fair[name][np.isfinite(rep_fair[name])], lo, hi)
        out[name] = {"value": float(point[name]), "value_bc": float(bc), "ci_low": float(lo), "ci_high": float(hi),
                     "ci_method": "max-t projection"}
    return out


SEGMENTATION_METRICS = ("dice", "delta_dice", "ser")


def paired_segmentation_comparison(dice_a: np.ndarray, dice_b: np.ndarray, group: np.ndarray, groups: list[str],
                                   bootstrap: int = 1000, seed: int = 0, level: float = 0.95,
                                   p_value_method: str = "bootstrap-normal") -> list[dict]:
    """Paired patient bootstrap of (b − a) for mean Dice, ΔDice and SER of one attribute (reconstruction paper §3.3).

    ``dice_a`` / ``dice_b``: per-patient Dice on clean and on reconstructed volumes (same patients, same order);
    ``group``: each patient's group code (−1 = unknown, left out of the group metrics but kept in ``dice``).
    Every replicate draws patients once and applies the same multiplicities to both arms. Returns rows
    ``metric, value_a, value_b, delta, ci_low, ci_high, p_value`` (percentile interval of the delta, two-sided
    bootstrap p-value by ``p_value_method``, one of ``radfair.fairness.P_VALUE_METHODS``).
    """
    from ._bootstrap import replicate_chunks
    from ._stats import p_value, percentile_ci

    a, b = np.asarray(dice_a, float), np.asarray(dice_b, float)
    group = np.asarray(group)
    n_groups = len(groups)
    everyone = np.zeros(len(a), dtype=np.int64)

    def metrics(weights: np.ndarray | None) -> dict[str, np.ndarray]:
        out = {}
        for arm, d in (("a", a), ("b", b)):
            fair = segmentation_fairness(group_dice(d, group, n_groups, weights))
            out[f"dice|{arm}"] = group_dice(d, everyone, 1, weights)[:, 0]
            out[f"delta_dice|{arm}"], out[f"ser|{arm}"] = fair["delta_dice"], fair["ser"]
        return out

    point = metrics(None)
    reps: dict[str, list] = {k: [] for k in point}
    for weights in replicate_chunks(len(a), bootstrap, seed):
        for key, value in metrics(weights).items():
            reps[key].append(value)
    rows = []
    for metric in SEGMENTATION_METRICS:
        va, vb = float(point[f"{metric}|a"][0]), float(point[f"{metric}|b"][0])
        deltas = np.concatenate(reps[f"{metric}|b"]) - np.concatenate(reps[f"{metric}|a"])
        low, high = percentile_ci(deltas, level)
        rows.append({"metric": metric, "value_a": va, "value_b": vb, "delta": vb - va, "ci_low": float(low), "ci_high": float(high),
                     "p_value": float(p_value(np.array(vb - va), deltas, p_value_method))})
    return rows
