"""Choosing λ_fair from a validation sweep (reconstruction paper §3.5: "a one-dimensional log-scale sweep ... on
the validation split")."""

from __future__ import annotations

import math

import pandas as pd

NAMES = {"val_auroc": "AUROC", "val_eodd": "EODD", "val_dice": "Dice", "val_dice_gap": "ΔDice"}


def choose_weight(table: pd.DataFrame, baseline: dict, *, max_psnr_drop_db: float = 0.5, max_performance_drop: float = 0.01,
                  performance: str = "val_auroc", fairness: str = "val_eodd") -> tuple[float | None, str]:
    """The λ of a validation sweep that most reduces the fairness gap at a bounded cost in PSNR and task performance.

    Rule: among the rows whose validation PSNR is at most ``max_psnr_drop_db`` dB below the standard
    reconstructor's and whose validation ``performance`` is at most ``max_performance_drop`` below it, and whose
    ``fairness`` gap is strictly below the baseline's, take the largest reduction ``baseline − value``; ties go to
    the smaller λ. Rows with a missing (NaN) metric never qualify.

    Parameters
    ----------
    table : DataFrame
        Columns ``weight, val_psnr`` and the two keys (one row per λ, e.g. from ``validation.json``).
    baseline : dict
        ``val_psnr`` and the two keys of the standard (unmitigated) reconstructor.
    performance, fairness : str
        The keys: ``val_auroc``/``val_eodd`` for a classifier downstream (mean AUROC, mean worst-case EODD),
        ``val_dice``/``val_dice_gap`` for the segmenter (mean Dice, mean ΔDice) — ``performance_key`` and
        ``fairness_key`` of ``validation.json``. ``max_performance_drop`` is in the performance key's units.

    Returns
    -------
    (weight, reason)
        The chosen λ (None when no λ qualifies) and a one-line reason.
    """
    needed = ("weight", "val_psnr", performance, fairness)
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"choose_weight: missing columns {missing}; expected {list(needed)}")
    perf, fair = NAMES.get(performance, performance), NAMES.get(fairness, fairness)
    base = {k: float(baseline[k]) if baseline.get(k) is not None else math.nan for k in ("val_psnr", performance, fairness)}
    if any(math.isnan(v) for v in base.values()):
        return None, f"baseline has a missing metric: {base}"
    rows = table.dropna(subset=list(needed))
    psnr_ok = rows["val_psnr"] >= base["val_psnr"] - max_psnr_drop_db
    performance_ok = rows[performance] >= base[performance] - max_performance_drop
    better = rows[fairness] < base[fairness]
    ok = rows[psnr_ok & performance_ok & better]
    if ok.empty:
        reasons = []
        if not psnr_ok.any():
            reasons.append(f"every λ loses more than {max_psnr_drop_db} dB PSNR")
        if not performance_ok.any():
            reasons.append(f"every λ loses more than {max_performance_drop} {perf}")
        if not better.any():
            reasons.append(f"no λ reduces validation {fair}")
        if not reasons:
            reasons.append(f"no λ meets both tolerances and reduces {fair} at once")
        if rows.empty:
            reasons = ["no row with all metrics defined"]
        return None, "; ".join(reasons)
    ok = ok.assign(reduction=base[fairness] - ok[fairness]).sort_values(["reduction", "weight"], ascending=[False, True])
    best = ok.iloc[0]
    return float(best["weight"]), (f"λ={best['weight']:g} reduces validation {fair} by {best['reduction']:.4g} "
                                   f"(PSNR {best['val_psnr'] - base['val_psnr']:+.3g} dB, {perf} {best[performance] - base[performance]:+.3g})")


def fallback_weight(table: pd.DataFrame, baseline: dict, *, max_psnr_drop_db: float = 0.5, max_performance_drop: float = 0.01,
                    performance: str = "val_auroc", fairness: str = "val_eodd") -> tuple[float, str]:
    """The λ carried forward when :func:`choose_weight` finds none: the one that least exceeds the tolerances.

    Violation of a row = max(PSNR drop / ``max_psnr_drop_db``, ``performance`` drop / ``max_performance_drop``), each
    floored at 0; the smallest violation wins, ties go to the lower ``fairness`` gap, then the smaller λ. (Taking the
    lowest gap instead rewards a reconstructor that wrecks the image: a constant prediction has an EODD of 0.)
    Rows with a missing metric come last.
    """
    base = {k: float(baseline[k]) if baseline.get(k) is not None else math.nan for k in ("val_psnr", performance)}
    psnr_excess = (base["val_psnr"] - table["val_psnr"]) / max_psnr_drop_db
    performance_excess = (base[performance] - table[performance]) / max_performance_drop
    violation = pd.concat([psnr_excess, performance_excess], axis=1).clip(lower=0).max(axis=1, skipna=False)
    ranked = table.assign(violation=violation.fillna(math.inf), gap=table[fairness].fillna(math.inf))
    best = ranked.sort_values(["violation", "gap", "weight"]).iloc[0]
    return float(best["weight"]), (f"the λ that least exceeds the tolerances (λ={best['weight']:g}: "
                                   f"PSNR {best['val_psnr'] - base['val_psnr']:+.3g} dB, "
                                   f"{NAMES.get(performance, performance)} {best[performance] - base[performance]:+.3g}) "
                                   "is carried forward")
