"""Hand-computed examples and cross-checks against scikit-learn and fairlearn."""

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, equalized_odds_difference, false_positive_rate, true_positive_rate
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

from radfair.fairness import (
    choose_threshold,
    confusion_indicators,
    equalized_odds,
    extreme_groups,
    gap,
    label_winners,
    rates,
    tpr_disparity,
    weighted_auc,
)


def test_rates_hand_computed():
    y = np.array([[1], [1], [1], [0], [0], [np.nan]])
    pred = np.array([[1], [0], [1], [1], [0], [1]])
    counts = confusion_indicators(y, pred).sum(axis=0)  # (L, 4)
    assert counts.tolist() == [[2, 1, 1, 1]]
    r = rates(counts)
    assert r["tpr"][0] == pytest.approx(2 / 3) and r["fpr"][0] == pytest.approx(1 / 2)
    assert r["ppv"][0] == pytest.approx(2 / 3) and r["n"][0] == 5


def test_group_without_positives_is_nan_not_zero_or_one():
    r = rates(np.array([[0.0, 0.0, 1.0, 3.0]]))
    assert np.isnan(r["tpr"][0]) and r["fpr"][0] == 0.25


def test_binary_disparity_hand_computed():
    tpr = np.array([[0.8], [0.6]])  # Male, Female
    d = tpr_disparity(tpr)
    assert d[:, 0] == pytest.approx([0.2, -0.2])
    assert gap(d)[0] == pytest.approx(0.4)


def test_multi_group_disparity_uses_median_including_group_and_skips_nan():
    tpr = np.array([[0.9], [0.7], [0.5], [np.nan]])
    d = tpr_disparity(tpr)
    assert d[:3, 0] == pytest.approx([0.2, 0.0, -0.2]) and np.isnan(d[3, 0])
    assert gap(d)[0] == pytest.approx(0.4)


def test_gap_needs_two_defined_groups():
    assert np.isnan(gap(np.array([[0.1], [np.nan], [np.nan]]))[0])


def test_extreme_groups_counts_labels():
    d = np.array([[0.1, 0.2, -0.1], [-0.1, -0.2, 0.1]])
    assert extreme_groups(d, ["Male", "Female"], favourable=True) == "Male (2/3)"
    assert extreme_groups(d, ["Male", "Female"], favourable=False) == "Female (2/3)"
    tie = np.array([[0.1, -0.1], [-0.1, 0.1]])
    assert extreme_groups(tie, ["A", "B"], favourable=True) == "A, B (1/2)"


def test_extreme_groups_ties_count_for_nobody():
    # label 0: A and B tie at the max; label 1: B and C tie at the min; label 2: all equal
    d = np.array([[0.2, 0.3, 0.0], [0.2, -0.1, 0.0], [-0.4, -0.1, 0.0]])
    assert label_winners(d, favourable=True).tolist() == [-1, 0, -1]
    assert label_winners(d, favourable=False).tolist() == [2, -1, -1]
    assert extreme_groups(d, ["A", "B", "C"], favourable=True) == "A (1/3)"
    assert extreme_groups(d, ["A", "B", "C"], favourable=False) == "C (1/3)"
    assert extreme_groups(np.zeros((3, 2)), ["A", "B", "C"], favourable=True) == "none (0/2)"


@pytest.mark.parametrize("seed", range(5))
def test_binary_extremes_are_complementary(seed):
    rng = np.random.default_rng(seed)
    tpr = rng.choice([0.5, 0.6, 0.7], size=(2, 13))  # frequent exact ties
    tpr[:, 0] = [0.25, np.nan]  # one group undefined: no winner on that label
    d = tpr_disparity(tpr)
    fav, unfav = label_winners(d, True), label_winners(d, False)
    tied = (tpr[0] == tpr[1]) | np.isnan(tpr).any(axis=0)
    assert np.all((fav == -1) == tied) and np.all((unfav == -1) == tied)
    assert np.all(fav[~tied] + unfav[~tied] == 1)
    n_fav = [int(np.sum(fav == g)) for g in range(2)]
    text_fav, text_unfav = extreme_groups(d, ["M", "F"], True), extreme_groups(d, ["M", "F"], False)
    assert n_fav[0] + n_fav[1] == int(np.sum(~tied))
    if n_fav[0] > n_fav[1]:
        assert text_fav.startswith("M (") and text_unfav.startswith("F (")


@pytest.mark.parametrize("seed", range(5))
def test_thresholds_match_sklearn_curves(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(400) < 0.3).astype(float)
    s = np.round(rng.random(400) * 0.5 + 0.4 * y, 2)  # rounded -> ties
    p, r, t = precision_recall_curve(y, s)
    with np.errstate(invalid="ignore"):
        f1 = 2 * p * r / (p + r)
    assert choose_threshold(y, s, "f1") == pytest.approx(t[np.nanargmax(f1[:-1])])
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    ok = np.isfinite(thr)
    j = np.flatnonzero(ok)
    youden = tpr[j] - fpr[j]
    best = j[youden == youden.max()]
    assert choose_threshold(y, s, "youden") == pytest.approx(thr[best].min())
    balance = np.abs(tpr[j] - (1 - fpr[j]))
    best = j[balance == balance.min()]
    assert choose_threshold(y, s, "balanced") == pytest.approx(thr[best].min())


def test_threshold_nan_for_one_class():
    assert np.isnan(choose_threshold(np.zeros(5), np.linspace(0, 1, 5), "f1"))


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties_and_integer_weights(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(300) < 0.4).astype(float)
    s = np.round(rng.random(300) + 0.3 * y, 1)
    assert weighted_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    w = rng.integers(0, 4, 300).astype(float)
    assert weighted_auc(y, s, w) == pytest.approx(roc_auc_score(np.repeat(y, w.astype(int)), np.repeat(s, w.astype(int))), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_group_rates_and_equalized_odds_match_fairlearn(seed):
    rng = np.random.default_rng(seed)
    n = 2000
    groups = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    y = (rng.random(n) < 0.3).astype(int)
    pred = (rng.random(n) < np.where(groups == "a", 0.4, 0.6) * (0.5 + y)).astype(int)
    frame = MetricFrame(metrics={"tpr": true_positive_rate, "fpr": false_positive_rate}, y_true=y, y_pred=pred, sensitive_features=groups)
    codes = pd.Series(groups).map({"a": 0, "b": 1, "c": 2}).to_numpy()
    ind = confusion_indicators(y[:, None], pred[:, None])
    counts = np.stack([ind[codes == g].sum(axis=0) for g in range(3)])  # (G, L, 4)
    r = rates(counts)
    assert r["tpr"][:, 0] == pytest.approx(frame.by_group["tpr"].loc[["a", "b", "c"]].to_numpy(), abs=1e-9)
    assert r["fpr"][:, 0] == pytest.approx(frame.by_group["fpr"].loc[["a", "b", "c"]].to_numpy(), abs=1e-9)
    eo = equalized_odds(r["tpr"], r["fpr"])
    assert eo["eodd_worst"][0] == pytest.approx(equalized_odds_difference(y, pred, sensitive_features=groups, agg="worst_case"), abs=1e-9)
    assert eo["eodd_mean"][0] == pytest.approx(equalized_odds_difference(y, pred, sensitive_features=groups, agg="mean"), abs=1e-9)
