"""Study 2 shift analysis: the frozen classifier on clean vs reconstructed test images, paired by patient.

Thresholds are chosen once, on the **clean validation** images (balanced rule: argmin |sensitivity −
specificity|, anchor bug 6 of the reference code chose them on test), written to a CSV and applied to both
the clean and the reconstructed test scores. The fairness engine's paired comparison resamples the same
patients for both tables (anchor bug 7: never images), gives the delta's percentile interval and a two-sided
centred bootstrap p-value; Holm and Benjamini–Hochberg are applied across the whole grid afterwards.
EODD is reported under both names (``eodd_worst``: max of ΔTPR and ΔFPR; ``eodd_mean``: their mean, the
reference code's "EODD"; anchor bug 10).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ...fairness import AuditConfig, benjamini_hochberg, holm, resolve_thresholds, run_audit
from ...io import write_table

FAIRNESS_METRICS = ("eodd_worst", "eodd_mean", "eop", "gap")


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
                 bootstrap: int, seed: int, level: float) -> tuple[pd.DataFrame, list[str]]:
    """Comparison rows (reconstructed − clean) for AUROC and every fairness metric, per label and attribute."""
    present = [a for a in attributes if a in clean.columns and clean[a].notna().any()]
    config = AuditConfig(attributes=present, labels=labels, threshold=str(thresholds), bootstrap=bootstrap, seed=seed, level=level,
                         summary_exclude=[])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = run_audit(clean, config, compare=reconstructed, path="clean scores", compare_path="reconstructed scores")
    comparison = tables["comparison"].rename(columns={"value_a": "baseline", "value_b": "reconstructed"})
    with np.errstate(divide="ignore", invalid="ignore"):
        comparison["pct_change"] = 100 * comparison["delta"] / comparison["baseline"]
    return comparison, sorted({str(w.message) for w in caught})


def adjust_grid(bias_shift: pd.DataFrame) -> pd.DataFrame:
    """Holm and BH over every fairness row of the whole grid (NaN p-values left out of the family)."""
    out = bias_shift.drop(columns=[c for c in ("p_holm", "p_bh") if c in bias_shift.columns]).copy()
    p = out["p_value"].to_numpy(float)
    out["p_holm"], out["p_bh"] = holm(p), benjamini_hochberg(p)
    return out
