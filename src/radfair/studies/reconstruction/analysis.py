"""Study 2 shift analysis: the frozen classifier on clean vs reconstructed test images, paired by patient.

Thresholds are chosen once, on the **clean validation** images (balanced rule: argmin |sensitivity −
specificity|, anchor bug 6 of the reference code chose them on test), written to a CSV and applied to both
the clean and the reconstructed test scores. The fairness engine's paired comparison resamples the same
patients for both tables (anchor bug 7: never images), gives the delta's percentile interval and a two-sided
bootstrap p-value (by name, ``analysis.p_value``; the normal-approximation one by default, which has no
floor); Holm and Benjamini–Hochberg are applied within the confirmatory family (``analysis.confirmatory``),
BH within the exploratory rest.
EODD is reported under both names (``eodd_worst``: max of ΔTPR and ΔFPR; ``eodd_mean``: their mean, the
reference code's "EODD"; anchor bug 10).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ...fairness import (
    P_VALUE_METHODS,
    AuditConfig,
    benjamini_hochberg,
    holm,
    p_value_floor,
    resolve_thresholds,
    run_audit,
)
from ...io import write_table

FAIRNESS_METRICS = ("eodd_worst", "eodd_mean", "eop", "gap")
#: Attributes that re-group another (variant -> the attribute it re-groups): the appendix's sensitivity analysis
#: (race with AI/AN and NH/PI within Other, Figures 18-19). Analysed like any attribute, but left out of the
#: confirmatory family, the pooled Tables 1-3, Figures 3-5 and the mitigation losses, where race would count twice.
VARIANTS = {"race_merged": "race"}


def headline_attributes(attributes) -> list[str]:
    """``attributes`` without the re-grouping variants (:data:`VARIANTS`)."""
    return [a for a in attributes if a not in VARIANTS]


def clean_thresholds(clean: pd.DataFrame, labels: list[str], rule: str, path: Path) -> tuple[Path, list[str], list[str]]:
    """Thresholds chosen on the clean validation rows, saved as ``label,threshold`` CSV.

    Returns the CSV, the labels that have a threshold, and the labels that have none (a single class in the
    clean validation rows): those are left out of the analysis and named in the study's warnings, never
    reported as 0 or perfect fairness.
    """
    table = resolve_thresholds(clean, labels, rule)
    defined = table["threshold"].notna()
    write_table(table.loc[defined, ["label", "threshold"]], path)
    return path, table.loc[defined, "label"].tolist(), table.loc[~defined, "label"].tolist()


def paired_shift(clean: pd.DataFrame, reconstructed: pd.DataFrame, labels: list[str], attributes: list[str], thresholds: Path,
                 bootstrap: int, seed: int, level: float, p_value: str = "bootstrap-normal") -> tuple[pd.DataFrame, list[str]]:
    """Comparison rows (reconstructed − clean) for AUROC and every fairness metric, per label and attribute."""
    present = [a for a in attributes if a in clean.columns and clean[a].notna().any()]
    config = AuditConfig(attributes=present, labels=labels, threshold=str(thresholds), bootstrap=bootstrap, seed=seed, level=level,
                         summary_exclude=[], p_value=p_value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = run_audit(clean, config, compare=reconstructed, path="clean scores", compare_path="reconstructed scores")
    comparison = tables["comparison"].rename(columns={"value_a": "baseline", "value_b": "reconstructed"})
    with np.errstate(divide="ignore", invalid="ignore"):
        comparison["pct_change"] = 100 * comparison["delta"] / comparison["baseline"]
    return comparison, sorted({str(w.message) for w in caught})


def adjust_grid(bias_shift: pd.DataFrame) -> pd.DataFrame:
    """Holm and BH over every row of a table (NaN p-values left out of the family)."""
    out = bias_shift.drop(columns=[c for c in ("p_holm", "p_bh") if c in bias_shift.columns]).copy()
    p = out["p_value"].to_numpy(float)
    out["p_holm"], out["p_bh"] = holm(p), benjamini_hochberg(p)
    return out


def confirmatory_mask(bias_shift: pd.DataFrame, family, middle_levels: dict[str, str]) -> np.ndarray:
    """True for the rows of the confirmatory family (:class:`~.config.ConfirmatoryFamily`); re-grouping variants
    (:data:`VARIANTS`) never belong to it.

    ``middle_levels``: each dataset's middle degradation level, used when ``family.levels == "middle"``.
    """
    rows = bias_shift
    in_family = rows["metric"].isin(family.metrics) & rows["mitigation"].isin(family.mitigation)
    in_family &= ~rows["attribute"].isin(list(VARIANTS))  # a re-grouping (race_merged) is exploratory
    if family.levels == "middle":
        in_family &= rows["level"] == rows["dataset"].map(middle_levels)
    elif family.levels != "all":
        in_family &= rows["level"].isin(family.levels)
    return in_family.to_numpy(bool)


def adjust_families(bias_shift: pd.DataFrame, family, middle_levels: dict[str, str], p_value_method: str,
                    bootstrap: int) -> tuple[pd.DataFrame, dict]:
    """Mark each row ``family = confirmatory | exploratory``; Holm and BH within the confirmatory family, BH
    within the exploratory rows (``p_holm`` is NaN there). Returns the table and the ``multiple_testing``
    record for ``study.json``: the family, its size, the p-value method and its floor (the smallest p-value it
    can report; it must lie below alpha / size for Holm to be able to fire), the counts of confirmatory
    findings, and the paper's own count (unadjusted two-sided p < alpha, per dataset and attribute)."""
    out = bias_shift.drop(columns=[c for c in ("p_holm", "p_bh", "family") if c in bias_shift.columns]).copy()
    mask = confirmatory_mask(out, family, middle_levels)
    p = out["p_value"].to_numpy(float)
    out["family"] = np.where(mask, "confirmatory", "exploratory")
    out["p_holm"] = np.nan
    out["p_bh"] = np.nan
    out.loc[mask, "p_holm"] = holm(p[mask])
    out.loc[mask, "p_bh"] = benjamini_hochberg(p[mask])
    out.loc[~mask, "p_bh"] = benjamini_hochberg(p[~mask])
    confirmatory = out[mask & np.isfinite(p)]
    size = int(len(confirmatory))
    floor = p_value_floor(p_value_method, bootstrap)
    alpha = family.alpha
    unadjusted = {}
    for (dataset, attribute), rows in confirmatory.groupby(["dataset", "attribute"], sort=False):
        unadjusted[f"{dataset}/{attribute}"] = f"{int((rows['p_value'] < alpha).sum())} of {len(rows)}"
    levels = family.levels if isinstance(family.levels, str) else ", ".join(family.levels)
    record = {
        "family": f"metrics {family.metrics} x every label and attribute x reconstructor, levels: {levels}"
                  + (f" ({', '.join(f'{d}: {lv}' for d, lv in middle_levels.items())})" if family.levels == "middle" else "")
                  + f", mitigation {family.mitigation}",
        "size": size,
        "p_value_method": p_value_method,
        "p_value_method_text": P_VALUE_METHODS[p_value_method],
        "p_value_floor": floor,
        "alpha": alpha,
        "holm_can_fire": bool(size == 0 or floor < alpha / size),
        "confirmatory_significant_holm": int((confirmatory["p_holm"] < alpha).sum()),
        "confirmatory_significant_bh": int((confirmatory["p_bh"] < alpha).sum()),
        "unadjusted_p_below_alpha": unadjusted,
        "exploratory": f"{int((~mask).sum())} other rows, Benjamini-Hochberg within them (p_holm empty)",
    }
    return out, record
