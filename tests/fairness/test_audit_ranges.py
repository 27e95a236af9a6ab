"""Every statistic the audit writes, its interval and its bias-corrected estimate stay in the statistic's range.

A property test over random tables with 2 to 6 groups of 2 to 200 patients (1-3 images each), the
small-group regime where the max-t band used to leave [0, 1] (intervals up to 2.70 for EODD).
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from radfair.fairness import AuditConfig, run_audit

UNIT = (0.0, 1.0)
SIGNED = (-1.0, 1.0)


def _random_table(rng):
    n_groups = int(rng.integers(2, 7))
    sizes = rng.integers(2, 201, n_groups)
    rows = []
    for g, size in enumerate(sizes):
        for p in range(int(size)):
            split = "val" if rng.random() < 0.3 else "test"
            for k in range(int(rng.integers(1, 4))):
                y = float(rng.random() < 0.3)
                rows.append({"image_id": f"g{g}p{p}i{k}", "patient_id": f"g{g}p{p}", "split": split, "group": f"G{g}",
                             "y_a": y, "p_a": float(np.clip(0.25 * y + rng.beta(2, 3) + 0.2 * g / n_groups, 0, 1)),
                             "y_b": float(rng.random() < 0.1), "p_b": float(rng.random())})
    return pd.DataFrame(rows), n_groups


def _check(values, bounds, what):
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy()
    assert np.all(v >= bounds[0] - 1e-12) and np.all(v <= bounds[1] + 1e-12), f"{what} outside {bounds}: {v[(v < bounds[0]) | (v > bounds[1])][:5]}"


def _inside(table, value, low, high, what):
    ok = table[[value, low, high]].dropna()
    assert (ok[value] >= ok[low] - 1e-12).all() and (ok[value] <= ok[high] + 1e-12).all(), what


@pytest.mark.parametrize("seed", range(12))
def test_every_audit_statistic_stays_in_range(seed):
    rng = np.random.default_rng(seed)
    df, n_groups = _random_table(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = run_audit(df, AuditConfig(attributes=["group"], threshold=["f1", "balanced", "0.5"][seed % 3],
                                      bootstrap=60, seed=seed, summary_exclude=[]))
    gap_bounds = (0.0, 2.0) if n_groups == 2 else UNIT
    gm = t["group_metrics"]
    for name in ("tpr", "fpr", "tnr", "ppv", "auc"):
        for column in (name, f"{name}_ci_low", f"{name}_ci_high"):
            _check(gm[column], UNIT, f"group_metrics.{column}")
    for column in ("tpr_disparity", "ci_low", "ci_high"):
        _check(t["disparities"][column], SIGNED, f"disparities.{column}")
    for column in ("gap", "gap_bc", "ci_low", "ci_high"):
        _check(t["gaps"][column], gap_bounds, f"gaps.{column}")
    for column in ("average_gap", "average_gap_bc", "ci_low", "ci_high"):
        _check(t["summary"][column], gap_bounds, f"summary.{column}")
    _inside(t["gaps"], "gap", "ci_low", "ci_high", "gap in its interval")
    _inside(t["gaps"], "gap_bc", "ci_low", "ci_high", "gap_bc in its interval")
    eo = t["equalized_odds"]
    for name in ("eodd_worst", "eodd_mean", "eop"):
        for column in (name, f"{name}_bc", f"{name}_ci_low", f"{name}_ci_high"):
            _check(eo[column], UNIT, f"equalized_odds.{column}")
        _inside(eo, name, f"{name}_ci_low", f"{name}_ci_high", f"{name} in its interval")
        _inside(eo, f"{name}_bc", f"{name}_ci_low", f"{name}_ci_high", f"{name}_bc in its interval")
    for column in ("selection_rate", "ci_low", "ci_high"):
        _check(t["selection_rates"][column], UNIT, f"selection_rates.{column}")
    for name in ("demographic_parity", "calibration_gap"):
        table = t[name]
        value = "dp_difference" if name == "demographic_parity" else "calibration_gap"
        for column in (value, f"{value}_bc", "ci_low", "ci_high"):
            _check(table[column], UNIT, f"{name}.{column}")
        _inside(table, f"{value}_bc", "ci_low", "ci_high", f"{value}_bc in its interval")
    cal = t["calibration"]
    for column in ("ece", "ece_ci_low", "ece_ci_high"):
        _check(cal[column], UNIT, f"calibration.{column}")
    for column in ("citl", "citl_ci_low", "citl_ci_high"):
        _check(cal[column], SIGNED, f"calibration.{column}")
    for column in ("auc", "ci_low", "ci_high"):
        _check(t["performance"][column], UNIT, f"performance.{column}")
