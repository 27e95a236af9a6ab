"""The peers' metrics, cross-checked against fairlearn and scikit-learn on the same test rows."""

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_ratio,
    equalized_odds_ratio,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_negative_rate,
    true_positive_rate,
)
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    precision_score,
    roc_auc_score,
)

from radfair.data.synthetic.scored import simulate_scored
from radfair.fairness import AuditConfig, run_audit


@pytest.fixture(scope="module")
def audited():
    df = simulate_scored(900, labels=["edema", "pleural_effusion"], seed=4, effects={("race", "Black"): -1.0})
    tables = run_audit(df, AuditConfig(attributes=["race", "sex"], threshold="youden", bootstrap=30, seed=1))
    return df, tables


def _rows(df, tables, label):
    t = tables["thresholds"].set_index("label").loc[label, "threshold"]
    test = df[(df["split"] == "test") & df[f"y_{label}"].notna()]
    return test, test[f"y_{label}"].astype(int), (test[f"p_{label}"] >= t).astype(int)


@pytest.mark.parametrize("label", ["edema", "pleural_effusion"])
@pytest.mark.parametrize("attribute", ["race", "sex"])
def test_group_rates_counts_brier_ap_equal_fairlearn_and_sklearn(audited, label, attribute):
    df, tables = audited
    test, y, pred = _rows(df, tables, label)
    mf = MetricFrame(metrics={"tpr": true_positive_rate, "fpr": false_positive_rate, "fnr": false_negative_rate,
                              "tnr": true_negative_rate, "sel": selection_rate, "n": count},
                     y_true=y, y_pred=pred, sensitive_features=test[attribute])
    gm = tables["group_metrics"]
    gm = gm[(gm["label"] == label) & (gm["attribute"] == attribute)].set_index("group")
    for group, expected in mf.by_group.iterrows():
        row = gm.loc[group]
        for ours, theirs, denominator in (("tpr", "tpr", "n_pos"), ("fpr", "fpr", "n_neg"), ("fnr", "fnr", "n_pos"),
                                          ("tnr", "tnr", "n_neg")):
            if row[denominator] == 0:  # fairlearn returns 0 here; radfair's convention is NaN (never a perfect 0 or 1)
                assert np.isnan(row[ours])
            else:
                assert row[ours] == pytest.approx(expected[theirs])
        assert row["n"] == expected["n"]
        rows = test[attribute] == group
        tn, fp, fn, tp = confusion_matrix(y[rows], pred[rows], labels=[0, 1]).ravel()
        assert (row["tp"], row["fp"], row["tn"], row["fn"]) == (tp, fp, tn, fn)
        assert row["ppv"] == pytest.approx(precision_score(y[rows], pred[rows], zero_division=np.nan), nan_ok=True)
        assert row["fdr"] == pytest.approx(1 - row["ppv"], nan_ok=True)
        assert row["npv"] == pytest.approx(tn / (tn + fn)) and row["for"] == pytest.approx(fn / (tn + fn))
        assert row["brier"] == pytest.approx(brier_score_loss(y[rows], test.loc[rows, f"p_{label}"]))
        if 0 < y[rows].sum() < rows.sum():
            assert row["average_precision"] == pytest.approx(average_precision_score(y[rows], test.loc[rows, f"p_{label}"]))
            assert row["auc"] == pytest.approx(roc_auc_score(y[rows], test.loc[rows, f"p_{label}"]))
        assert row["brier_ci_low"] <= row["brier"] <= row["brier_ci_high"]
    sel = tables["selection_rates"]
    sel = sel[(sel["label"] == label) & (sel["attribute"] == attribute)].set_index("group")["selection_rate"]
    dp = tables["demographic_parity"].set_index(["label", "attribute"]).loc[(label, attribute)]
    assert dp["dp_ratio"] == pytest.approx(demographic_parity_ratio(y, pred, sensitive_features=test[attribute]))
    assert dp["dp_ratio"] == pytest.approx(sel.min() / sel.max())
    assert dp["dp_ratio_parity"] == (dp["dp_ratio"] >= 0.8)
    eo = tables["equalized_odds"].set_index(["label", "attribute"]).loc[(label, attribute)]
    # groups without positives or negatives have NaN rates in radfair (fairlearn counts them as 0): compare on the others
    tprs, fprs = mf.by_group["tpr"][gm.index[gm["n_pos"] > 0]], mf.by_group["fpr"][gm.index[gm["n_neg"] > 0]]
    assert eo["eop_ratio"] == pytest.approx(tprs.min() / tprs.max())
    assert eo["eo_ratio"] == pytest.approx(min(tprs.min() / tprs.max(), fprs.min() / fprs.max()))
    if ((gm["n_pos"] > 0) & (gm["n_neg"] > 0)).all():  # every group defined: fairlearn's own function agrees
        assert eo["eo_ratio"] == pytest.approx(equalized_odds_ratio(y, pred, sensitive_features=test[attribute]))
    for name in ("eo_ratio", "eop_ratio", "dp_ratio"):
        source = eo if name != "dp_ratio" else dp
        assert 0 <= source[f"{name}_ci_low"] <= source[name] <= source[f"{name}_ci_high"] <= 1


@pytest.mark.parametrize("label", ["edema", "pleural_effusion"])
def test_overall_row_equals_sklearn(audited, label):
    df, tables = audited
    test, y, pred = _rows(df, tables, label)
    perf = tables["performance"].set_index("label").loc[label]
    tn, fp, fn, tp = confusion_matrix(y, pred).ravel()
    assert perf["tpr"] == pytest.approx(tp / (tp + fn)) and perf["fpr"] == pytest.approx(fp / (fp + tn))
    assert perf["selection_rate"] == pytest.approx(pred.mean())
    assert perf["auc"] == pytest.approx(roc_auc_score(y, test[f"p_{label}"]))
    assert perf["brier"] == pytest.approx(brier_score_loss(y, test[f"p_{label}"]))
    assert perf["average_precision"] == pytest.approx(average_precision_score(y, test[f"p_{label}"]))
    assert perf["threshold"] == tables["thresholds"].set_index("label").loc[label, "threshold"]
    for name in ("tpr", "fpr", "selection_rate", "ece", "brier"):
        assert perf[f"{name}_ci_low"] <= perf[name] <= perf[f"{name}_ci_high"]


def test_roc_points_equal_sklearn_and_roc_table_is_the_upper_envelope():
    from sklearn.metrics import roc_curve

    from radfair.fairness._figures import ROC_GRID, roc_curve_points, roc_table

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300).astype(float)
    s = np.round(rng.random(300) + 0.3 * y, 2)  # ties
    fpr, tpr = roc_curve_points(y, s)
    ref_fpr, ref_tpr, _ = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    table = roc_table(y[:, None], s[:, None], ["a"], {"g": (np.zeros(300, np.int64), ["all"])})
    assert len(table) == len(ROC_GRID) and table["tpr"].is_monotonic_increasing
    for f, t in zip(table["fpr"], table["tpr"], strict=True):
        assert t == pytest.approx(ref_tpr[ref_fpr <= f + 1e-12].max())
