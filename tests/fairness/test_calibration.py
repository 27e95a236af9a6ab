import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, demographic_parity_difference, selection_rate
from sklearn.calibration import calibration_curve

from radfair.fairness import AuditConfig, audit_files, run_audit
from radfair.fairness._calibration import (
    bin_index,
    calibration_metrics,
    calibration_values,
    residual_metrics,
    residual_values,
)


def _table(seed=0, n_patients=300):
    rng = np.random.default_rng(seed)
    images = 1 + rng.poisson(1.0, n_patients)
    patient = np.repeat(np.arange(n_patients), images)
    site = np.array(["A", "B", "C"])[rng.integers(0, 3, n_patients)][patient]
    n = len(patient)
    df = pd.DataFrame({"patient_id": patient, "split": "test", "site": site})
    for label, shift in (("a", 0.0), ("b", 0.2)):
        y = (rng.random(n) < 0.4).astype(float)
        p = np.clip(0.3 * y + 0.35 + shift * (site == "B") + rng.normal(0, 0.15, n), 0, 1)
        p[:5] = [0.0, 0.1, 0.2, 1.0, 0.5]  # bin edges
        y[rng.random(n) < 0.05] = np.nan
        df[f"y_{label}"], df[f"p_{label}"] = y, np.round(p, 3)
    return df


def test_binning_matches_sklearn_calibration_curve():
    rng = np.random.default_rng(1)
    p = np.r_[np.round(rng.random(500), 2), 0.0, 0.1, 0.2, 1.0]
    y = (rng.random(len(p)) < p).astype(float)
    sums = calibration_values(y[:, None], p[:, None]).sum(axis=0).reshape(10, 3)
    metrics = calibration_metrics(sums)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    used = metrics["bin_count"] > 0
    np.testing.assert_allclose(metrics["bin_observed"][used], prob_true, atol=1e-12)
    np.testing.assert_allclose(metrics["bin_predicted"][used], prob_pred, atol=1e-12)
    counts = np.bincount(bin_index(p), minlength=10)
    ece_hand = sum(counts[k] / len(p) * abs(y[bin_index(p) == k].mean() - p[bin_index(p) == k].mean()) for k in range(10) if counts[k])
    assert metrics["ece"] == pytest.approx(ece_hand, abs=1e-12)
    assert metrics["citl"] == pytest.approx(p.mean() - y.mean(), abs=1e-12)
    compact = residual_metrics(residual_values(y[:, None], p[:, None]).sum(axis=0).reshape(11))
    assert compact["ece"] == pytest.approx(metrics["ece"], abs=1e-12) and compact["citl"] == pytest.approx(metrics["citl"], abs=1e-12)


def test_audit_selection_and_calibration_match_fairlearn_and_sklearn():
    df = _table()
    out = run_audit(df, AuditConfig(attributes=["site"], threshold="0.5", bootstrap=200, seed=0))
    sel, dp, cal, rel = out["selection_rates"], out["demographic_parity"], out["calibration"], out["reliability"]
    for label in ("a", "b"):
        known = df[f"y_{label}"].notna()
        y = df.loc[known, f"y_{label}"].astype(int).to_numpy()
        pred = (df.loc[known, f"p_{label}"] >= 0.5).astype(int).to_numpy()
        frame = MetricFrame(metrics=selection_rate, y_true=y, y_pred=pred, sensitive_features=df.loc[known, "site"])
        mine = sel[sel["label"] == label].set_index("group")["selection_rate"]
        for group, value in frame.by_group.items():
            assert mine[group] == pytest.approx(value, abs=1e-12)
        expected_dp = demographic_parity_difference(y, pred, sensitive_features=df.loc[known, "site"])
        row = dp[dp["label"] == label].iloc[0]
        assert row["dp_difference"] == pytest.approx(expected_dp, abs=1e-12)
        assert row["ci_low"] <= row["dp_difference"] <= row["ci_high"] and row["ci_low"] <= row["dp_difference_bc"] <= row["ci_high"]
        for group in ("A", "B", "C"):
            part = df[known & (df["site"] == group)]
            yy, pp = part[f"y_{label}"].to_numpy(), part[f"p_{label}"].to_numpy()
            prob_true, prob_pred = calibration_curve(yy, pp, n_bins=10, strategy="uniform")
            curve = rel[(rel["label"] == label) & (rel["group"] == group) & (rel["n"] > 0)]
            np.testing.assert_allclose(curve["observed_rate"], prob_true, atol=1e-12)
            np.testing.assert_allclose(curve["mean_predicted"], prob_pred, atol=1e-12)
            c = cal[(cal["label"] == label) & (cal["group"] == group)].iloc[0]
            assert c["citl"] == pytest.approx(pp.mean() - yy.mean(), abs=1e-12)
            assert c["ece_ci_low"] <= c["ece"] <= c["ece_ci_high"]
    # site B over-predicts label b by construction: the largest calibration-in-the-large
    b = cal[cal["label"] == "b"].set_index("group")["citl"]
    assert b.idxmax() == "B"
    gap = out["calibration_gap"]
    assert (gap["ci_low"] <= gap["calibration_gap"]).all() and (gap["calibration_gap"] <= gap["ci_high"]).all()
    # per-site AUROC: site is an attribute like any other
    gm = out["group_metrics"]
    assert set(gm["group"]) == {"A", "B", "C"} and gm["auc"].notna().all()


def test_audit_files_writes_new_tables_and_reliability_png(tmp_path):
    df = _table(seed=3)
    df.to_csv(tmp_path / "scored.csv", index=False)
    out = tmp_path / "out"
    tables = audit_files(tmp_path / "scored.csv", out, AuditConfig(attributes=["site"], threshold="0.5", bootstrap=20))
    for name in ("selection_rates", "demographic_parity", "calibration", "calibration_gap", "reliability"):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.parquet").is_file()
    png = out / "reliability_site.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert tables["audit"]["figures"] == ["forest_site.png", "roc_site.png", "reliability_site.png"]
    for name in ("forest_site.png", "roc_site.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"label", "attribute", "group", "fpr", "tpr"} <= set(pd.read_csv(out / "roc.csv").columns)
