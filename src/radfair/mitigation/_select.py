"""Choosing λ_fair from a validation sweep (reconstruction paper §3.5: "a one-dimensional log-scale sweep ... on
the validation split")."""

from __future__ import annotations

import math

import pandas as pd

NEEDED = ("weight", "val_psnr", "val_auroc", "val_eodd")


def choose_weight(table: pd.DataFrame, baseline: dict, *, max_psnr_drop_db: float = 0.5,
                  max_auroc_drop: float = 0.01) -> tuple[float | None, str]:
    """The λ of a validation sweep that most reduces EODD at a bounded cost in PSNR and AUROC.

    Rule: among the rows whose validation PSNR is at most ``max_psnr_drop_db`` dB below the standard
    reconstructor's and whose validation AUROC is at most ``max_auroc_drop`` below it, and whose EODD is
    strictly below the baseline's, take the largest EODD reduction ``baseline val_eodd − val_eodd``; ties
    go to the smaller λ. Rows with a missing (NaN) metric never qualify.

    Parameters
    ----------
    table : DataFrame
        Columns ``weight, val_psnr, val_auroc, val_eodd`` (one row per λ, e.g. from ``validation.json``).
    baseline : dict
        ``val_psnr``, ``val_auroc``, ``val_eodd`` of the standard (unmitigated) reconstructor.

    Returns
    -------
    (weight, reason)
        The chosen λ (None when no λ qualifies) and a one-line reason.
    """
    missing = [c for c in NEEDED if c not in table.columns]
    if missing:
        raise ValueError(f"choose_weight: missing columns {missing}; expected {list(NEEDED)}")
    base = {k: float(baseline[k]) for k in ("val_psnr", "val_auroc", "val_eodd")}
    if any(math.isnan(v) for v in base.values()):
        return None, f"baseline has a missing metric: {base}"
    rows = table.dropna(subset=list(NEEDED))
    psnr_ok = rows["val_psnr"] >= base["val_psnr"] - max_psnr_drop_db
    auroc_ok = rows["val_auroc"] >= base["val_auroc"] - max_auroc_drop
    better = rows["val_eodd"] < base["val_eodd"]
    ok = rows[psnr_ok & auroc_ok & better]
    if ok.empty:
        reasons = []
        if not psnr_ok.any():
            reasons.append(f"every λ loses more than {max_psnr_drop_db} dB PSNR")
        if not auroc_ok.any():
            reasons.append(f"every λ loses more than {max_auroc_drop} AUROC")
        if not better.any():
            reasons.append("no λ reduces validation EODD")
        if not reasons:
            reasons.append("no λ meets both tolerances and reduces EODD at once")
        if rows.empty:
            reasons = ["no row with all metrics defined"]
        return None, "; ".join(reasons)
    ok = ok.assign(reduction=base["val_eodd"] - ok["val_eodd"]).sort_values(["reduction", "weight"], ascending=[False, True])
    best = ok.iloc[0]
    return float(best["weight"]), (f"λ={best['weight']:g} reduces validation EODD by {best['reduction']:.4g} "
                                   f"(PSNR {best['val_psnr'] - base['val_psnr']:+.3g} dB, AUROC {best['val_auroc'] - base['val_auroc']:+.3g})")
