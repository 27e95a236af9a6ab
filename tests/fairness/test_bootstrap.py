"""Statistical tests of the statistics: coverage, p-value calibration, patient vs image resampling."""

import warnings

import numpy as np
import pandas as pd
import pytest

from radfair.data.synthetic.scored import simulate_scored
from radfair.fairness import AuditConfig, GroupCounts, patient_multiplicities, percentile_ci, rates, run_audit


def test_multiplicities_resample_patients_and_keep_strata_sizes():
    rng = np.random.default_rng(0)
    w = patient_multiplicities(50, 200, rng)
    assert w.shape == (200, 50) and (w.sum(axis=1) == 50).all()
    strata = np.repeat([0, 1], [10, 40])
    ws = patient_multiplicities(50, 200, rng, strata)
    assert (ws[:, :10].sum(axis=1) == 10).all() and (ws[:, 10:].sum(axis=1) == 40).all()


def test_group_counts_equal_direct_weighting():
    rng = np.random.default_rng(1)
    patient = rng.integers(0, 30, 200)
    group = rng.integers(-1, 3, 200)
    values = rng.random((200, 4))
    w = patient_multiplicities(30, 5, rng)
    got = GroupCounts(patient, group, 3, values).counts(w)
    for b in range(5):
        for g in range(3):
            rows = group == g
            assert got[b, g] == pytest.approx((w[b, patient[rows]][:, None] * values[rows]).sum(axis=0))


def _tpr_ci(patient, y, pred, group, n_groups, rng, n_boot=400):
    ind = np.stack([(y == 1) & pred, (y == 1) & ~pred, (y == 0) & pred, (y == 0) & ~pred], axis=-1).astype(float)
    counter = GroupCounts(patient, group, n_groups, ind)
    w = patient_multiplicities(patient.max() + 1, n_boot, rng)
    return percentile_ci(rates(counter.counts(w))["tpr"])


@pytest.mark.slow
def test_ci_coverage_of_known_subgroup_tpr_is_near_nominal():
    rng = np.random.default_rng(2)
    true_tpr = np.array([0.8, 0.6])
    covered, sims = 0, 200
    for _ in range(sims):
        n_pat = 300
        patient = np.repeat(np.arange(n_pat), 2)
        group = np.repeat(rng.integers(0, 2, n_pat), 2)
        y = (rng.random(2 * n_pat) < 0.4).astype(float)
        pred = rng.random(2 * n_pat) < true_tpr[group]
        low, high = _tpr_ci(patient, y, pred, group, 2, rng)
        covered += int(low[0] <= true_tpr[0] <= high[0])
    assert 0.90 <= covered / sims <= 0.98


def test_patient_bootstrap_wider_than_image_bootstrap_when_images_correlated():
    rng = np.random.default_rng(3)
    n_pat, k = 400, 5
    patient = np.repeat(np.arange(n_pat), k)
    y = np.ones(n_pat * k)
    pred = np.repeat(rng.random(n_pat) < 0.6, k)  # all images of a patient share the outcome
    group = np.zeros(n_pat * k, dtype=int)
    low_p, high_p = _tpr_ci(patient, y, pred, group, 1, rng)
    low_i, high_i = _tpr_ci(np.arange(n_pat * k), y, pred, group, 1, rng)
    assert (high_p - low_p)[0] > 1.8 * (high_i - low_i)[0]


def test_patient_bootstrap_equals_image_bootstrap_with_one_image_per_patient():
    rng = np.random.default_rng(4)
    n = 500
    y = (rng.random(n) < 0.5).astype(float)
    pred = rng.random(n) < 0.7
    group = np.zeros(n, dtype=int)
    a = _tpr_ci(np.arange(n), y, pred, group, 1, np.random.default_rng(9))
    b = _tpr_ci(np.arange(n), y, pred, group, 1, np.random.default_rng(9))
    assert a[0] == pytest.approx(b[0]) and a[1] == pytest.approx(b[1])


def _paired_p(seed, effect):
    """p-value of the EOP change between two scorings of the same patients.

    The baseline has a real sex gap (as diagnostic models do); under the null the second scoring
    has the same gap and independent noise. (At a true gap of exactly zero, |dTPR| sits on its kink
    and the bootstrap test is conservative: still valid, but with a false-positive rate below 5%.)
    """
    base = simulate_scored(1500, labels=["edema"], seed=seed, fractions=(0, 0.3, 0.7), prevalence=0.3, effects={("sex", "Female"): -1.0})
    other = base.copy()
    rng = np.random.default_rng(seed + 1000)
    logit = np.log(base["p_edema"] / (1 - base["p_edema"]))
    female = (base["sex"] == "Female").to_numpy()
    shift = np.where(female & (base["y_edema"] == 1), -effect, 0.0)
    other["p_edema"] = 1 / (1 + np.exp(-(logit + shift + rng.normal(0, 0.6, len(base)))))
    base["p_edema"] = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.6, len(base)))))
    cfg = AuditConfig(attributes=["sex"], bootstrap=200, seed=seed, threshold="0.5", auc=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        comp = run_audit(base, cfg, compare=other)["comparison"]
    return comp.set_index(["attribute", "metric"]).loc[("sex", "eop"), "p_value"]


@pytest.mark.slow
def test_paired_p_values_calibrated_under_null_and_small_under_effect():
    null = np.array([_paired_p(s, 0.0) for s in range(120)])
    assert 0.02 <= np.mean(null < 0.05) <= 0.08
    assert 0.3 < np.mean(null) < 0.7
    power = np.array([_paired_p(s, 1.0) for s in range(20)])
    assert np.mean(power < 0.05) >= 0.8


def test_audit_recovers_planted_sex_effect():
    df = simulate_scored(3000, labels=["edema", "cardiomegaly"], effects={("sex", "Female"): -1.0}, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = run_audit(df, AuditConfig(attributes=["sex"], bootstrap=100))
    summary = out["summary"].set_index("attribute").loc["sex"]
    assert summary["unfavorable"] == "Female (2/2)"
    d = out["disparities"].query("group == 'Female'")
    assert (d["ci_high"] < 0).all()
    assert isinstance(out["group_metrics"], pd.DataFrame)
