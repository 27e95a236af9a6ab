"""The sorted sweep (every group's AUROC, confusion counts and calibration sums in one pass) against
independent implementations: scikit-learn, prefix-sum AUROC (AucPlan) and indicator matrix products (GroupCounts)."""

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, confusion_matrix, roc_auc_score

from radfair.fairness import AucPlan, GroupCounts, confusion_indicators, patient_multiplicities
from radfair.fairness._calibration import calibration_values, residual_values
from radfair.fairness._sweep import ScoreSweep


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(3)
    n, n_patients, n_labels = 600, 250, 3
    unit = rng.integers(0, n_patients, n)
    y = (rng.random((n, n_labels)) < 0.3).astype(float)
    y[rng.random((n, n_labels)) < 0.1] = np.nan
    # coarse scores: many ties, some exactly on the calibration edges and on the thresholds
    scores = np.round(np.clip(0.6 * rng.random((n, n_labels)) + 0.3 * np.nan_to_num(y), 0, 1), 1)
    thresholds = np.array([0.4, 0.55, np.nan])
    codes = [np.zeros(n, np.int64), rng.integers(-1, 2, n), rng.integers(0, 4, n)]
    sizes = [1, 2, 4]
    weights = patient_multiplicities(n_patients, 7, rng)
    sweep = ScoreSweep(y, scores, thresholds, unit, codes, sizes)
    return dict(unit=unit, y=y, scores=scores, thresholds=thresholds, codes=codes, sizes=sizes, weights=weights,
                out=sweep.run(weights), point=sweep.run(np.ones((1, n_patients))))


def test_point_estimates_equal_scikit_learn(case):
    y, s, t = case["y"], case["scores"], case["thresholds"]
    for level, (codes, size) in enumerate(zip(case["codes"], case["sizes"], strict=True)):
        point = case["point"][level]
        for g in range(size):
            for j in range(y.shape[1]):
                rows = (codes == g) & ~np.isnan(y[:, j])
                yj, sj = y[rows, j].astype(int), s[rows, j]
                assert point["auc"][0, g, j] == pytest.approx(roc_auc_score(yj, sj), abs=1e-12)
                pred = (sj >= t[j]) if np.isfinite(t[j]) else np.zeros(len(sj), bool)
                tn, fp, fn, tp = confusion_matrix(yj, pred, labels=[0, 1]).ravel()
                assert point["counts"][0, g, j].tolist() == [tp, fn, fp, tn]
                assert point["brier"][0, g, j] == pytest.approx(brier_score_loss(yj, sj), abs=1e-12)
                observed, predicted = calibration_curve(yj, sj, n_bins=10, strategy="uniform")
                count, sum_y, sum_p = point["bins"][0, g, j].T
                filled = count > 0
                assert (sum_y[filled] / count[filled]) == pytest.approx(observed, abs=1e-12)
                assert (sum_p[filled] / count[filled]) == pytest.approx(predicted, abs=1e-12)


def test_replicates_equal_prefix_sums_and_matrix_products(case):
    y, s, unit, w = case["y"], case["scores"], case["unit"], case["weights"]
    with np.errstate(invalid="ignore"):
        pred = s >= case["thresholds"][None, :]
    indicators = confusion_indicators(y, pred).reshape(len(y), -1)
    n_labels = y.shape[1]
    for level, (codes, size) in enumerate(zip(case["codes"], case["sizes"], strict=True)):
        out = case["out"][level]
        counts = GroupCounts(unit, codes, size, indicators).counts(w).reshape(len(w), size, n_labels, 4)
        assert np.array_equal(out["counts"], counts)
        residuals = GroupCounts(unit, codes, size, residual_values(y, s)).counts(w).reshape(len(w), size, n_labels, 11)
        np.testing.assert_allclose(out["residuals"], residuals, atol=1e-9)
        bins = GroupCounts(unit, codes, size, calibration_values(y, s)).counts(w).reshape(len(w), size, n_labels, 10, 3)
        np.testing.assert_allclose(out["bins"], bins, atol=1e-9)
        known = ~np.isnan(y)
        squared = np.concatenate([np.where(known, (s - np.nan_to_num(y)) ** 2, 0.0), known.astype(float)], axis=1)
        sums = GroupCounts(unit, codes, size, squared).counts(w)
        with np.errstate(invalid="ignore", divide="ignore"):
            brier = np.where(sums[..., n_labels:] > 0, sums[..., :n_labels] / sums[..., n_labels:], np.nan)
        np.testing.assert_allclose(out["brier"], brier, atol=1e-12)
        for g in range(size):
            for j in range(n_labels):
                expected = AucPlan(np.where(codes == g, y[:, j], np.nan), s[:, j], unit).auc(w, np.float64)
                np.testing.assert_allclose(out["auc"][:, g, j], expected, rtol=0, atol=1e-12)


def test_a_group_without_both_classes_has_no_auroc():
    y = np.array([[1.0], [1.0], [0.0], [1.0]])
    s = np.array([[0.9], [0.8], [0.1], [0.2]])
    codes = [np.array([0, 0, 1, 1])]
    out = ScoreSweep(y, s, np.array([0.5]), np.arange(4), codes, [2]).run(np.ones((1, 4)))[0]
    assert np.isnan(out["auc"][0, 0, 0]) and out["auc"][0, 1, 0] == 1.0
    assert out["counts"][0, :, 0].tolist() == [[2, 0, 0, 0], [0, 1, 0, 1]]
