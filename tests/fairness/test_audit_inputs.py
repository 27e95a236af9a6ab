"""The audit holds its input tables to the loaders' rules (issue: real files, items 1-5).

Each test is named after the real-world case it reproduces (``shared/cases/real-world/<case>``), on a
smaller table written here, and checks the numbers against an independent computation.
"""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from radfair.cli import app
from radfair.errors import RadfairInputError
from radfair.fairness import AuditConfig, run_audit
from radfair.fairness._audit import HARD_PREDICTION_THRESHOLD, clean_scored

runner = CliRunner()


def _table(n_test=24, seed=0, **columns):
    rng = np.random.default_rng(seed)
    n = 2 * n_test
    df = pd.DataFrame({
        "image_id": [f"i{k}" for k in range(n)],
        "patient_id": [f"p{k}" for k in range(n)],
        "split": ["val"] * n_test + ["test"] * n_test,
        "sex": rng.choice(["Male", "Female"], n),
        "y_effusion": rng.integers(0, 2, n).astype(float),
    })
    df["p_effusion"] = np.clip(0.3 * df["y_effusion"] + rng.uniform(0, 0.7, n), 0, 1)
    for name, values in columns.items():
        df[name] = values
    return df


def _audit(df, attributes, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tables = run_audit(df, AuditConfig(attributes=attributes, bootstrap=kw.pop("bootstrap", 20), **kw))
    return tables, [str(w.message) for w in caught]


def _tpr(test, attribute, threshold):
    out = {}
    for group, rows in test.dropna(subset=[attribute]).groupby(attribute):
        pos = rows["y_effusion"] == 1
        out[group] = float(((rows["p_effusion"] >= threshold) & pos).sum() / pos.sum())
    return out


@pytest.mark.parametrize("marker", ["Unknown", "UNKNOWN", "UNABLE TO OBTAIN", "PATIENT DECLINED TO ANSWER", "nan", " ", "unknown/not specified"])
def test_A02_unknown_group_is_missing_not_a_group(marker):
    df = _table()
    df.loc[df.index[df["split"] == "test"][:5], "sex"] = marker
    tables, messages = _audit(df, ["sex"], threshold="0.5")
    gm = tables["group_metrics"]
    assert set(gm["group"]) == {"Male", "Female"}
    test = df[df["split"] == "test"].copy()
    test.loc[test["sex"] == marker, "sex"] = None
    expected = _tpr(test, "sex", 0.5)
    got = gm.set_index("group")["tpr"]
    for group, value in expected.items():
        assert got[group] == pytest.approx(value)
    # the binary rule applies: disparity = TPR_g - TPR_other, gap = 2 |dTPR|
    assert tables["gaps"]["gap"].item() == pytest.approx(2 * abs(expected["Male"] - expected["Female"]))
    assert any("missing (blank or unknown) for 5 of 24 test image(s)" in m for m in messages)
    if marker.strip():
        assert any("unknown marker" in m for m in messages)
    assert tables["audit"]["missing_attribute"]["sex"]["test_images"] == 5


def test_A01_nan_sensitive_rows_are_counted_and_warned():
    df = _table(race=None)
    df["race"] = np.where(np.arange(len(df)) % 3 == 0, None, np.where(np.arange(len(df)) % 2 == 0, "White", "Black"))
    tables, messages = _audit(df, ["sex", "race"])
    test = df[df["split"] == "test"]
    n_missing = int(test["race"].isna().sum())
    gm = tables["group_metrics"]
    assert gm[(gm["attribute"] == "race")]["n"].sum() == len(test) - n_missing
    assert tables["audit"]["missing_attribute"]["race"] == {"test_images": n_missing, "test_images_total": len(test),
                                                            "test_patients": n_missing}
    assert tables["audit"]["missing_attribute"]["sex"]["test_images"] == 0
    summary = tables["summary"].set_index("attribute")
    assert summary.loc["race", "missing_test_images"] == n_missing
    assert any(f"'race' is missing (blank or unknown) for {n_missing} of {len(test)}" in m for m in messages)


def test_A09_patient_in_val_and_test_is_refused():
    df = _table()
    df.loc[df.index[df["split"] == "test"][:3], "patient_id"] = df.loc[df.index[:3], "patient_id"].to_numpy()
    with pytest.raises(RadfairInputError, match="appear in more than one split"):
        _audit(df, ["sex"])
    train_leak = _table()
    train_leak.loc[0, "split"] = "train"
    train_leak.loc[0, "patient_id"] = train_leak.loc[len(train_leak) - 1, "patient_id"]
    with pytest.raises(RadfairInputError, match="more than one split"):
        _audit(train_leak, ["sex"])


def test_A10_duplicate_rows_are_refused_in_both_tables(tmp_path):
    df = _table()
    dup = pd.concat([df, df[df["split"] == "test"].head(2)], ignore_index=True)
    with pytest.raises(RadfairInputError, match=r"duplicate image_id value\(s\) \['i24', 'i25'\]"):
        _audit(dup, ["sex"])
    path, other = tmp_path / "a.csv", tmp_path / "b.csv"
    df.to_csv(path, index=False)
    dup.to_csv(other, index=False)
    r = runner.invoke(app, ["audit", str(path), "--out", str(tmp_path / "out"), "--attributes", "sex",
                            "--bootstrap", "5", "--compare", str(other)])
    assert r.exit_code == 2 and "duplicate image_id" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize("rule", ["f1", "balanced", "youden"])
def test_A07_binary_predictions_are_not_searched(rule):
    df = _table()
    df["p_effusion"] = (df["p_effusion"] >= 0.6).astype(float)
    tables, messages = _audit(df, ["sex"], threshold=rule)
    assert tables["thresholds"]["threshold"].item() == HARD_PREDICTION_THRESHOLD
    assert tables["thresholds"]["rule"].item() == "hard 0/1 predictions"
    assert tables["audit"]["hard_prediction_labels"] == ["effusion"]
    assert any("hard predictions" in m for m in messages)
    test = df[df["split"] == "test"]
    from fairlearn.metrics import equalized_odds_difference
    expected = equalized_odds_difference(test["y_effusion"], test["p_effusion"], sensitive_features=test["sex"])
    assert tables["equalized_odds"]["eodd_worst"].item() == pytest.approx(expected)


def test_scores_with_two_values_other_than_0_1_are_still_scores():
    df = _table()
    df["p_effusion"] = np.where(df["p_effusion"] >= 0.6, 0.9, 0.2)
    tables, _ = _audit(df, ["sex"])
    assert tables["audit"]["hard_prediction_labels"] == []


def test_train_rows_may_have_blank_scores():
    df = _table()
    train = df.head(4).assign(split="train", p_effusion=np.nan, image_id=lambda d: "t" + d["image_id"],
                              patient_id=lambda d: "t" + d["patient_id"])
    tables, _ = _audit(pd.concat([df, train], ignore_index=True), ["sex"])
    assert len(tables["group_metrics"]) == 2


def test_clean_scored_keeps_rows_and_groups():
    df = _table()
    df.loc[3, "sex"] = "PATIENT DECLINED TO ANSWER"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = clean_scored(df, AuditConfig(attributes=["sex"]))
    assert len(out) == len(df) and out["sex"].isna().sum() == 1
    assert (out["sex"].dropna() == df["sex"].drop(3)).all()


def test_threshold_file_error_lists_the_labels_it_has(tmp_path):
    df = _table()
    file = tmp_path / "t.csv"
    pd.DataFrame({"label": ["edema", "pneumonia"], "threshold": [0.5, 0.4]}).to_csv(file, index=False)
    with pytest.raises(RadfairInputError, match=r"the file has label\(s\) \['edema', 'pneumonia'\]"):
        _audit(df, ["sex"], threshold=str(file))


def test_cli_audit_json_records_missing_counts(tmp_path):
    df = _table()
    df.loc[df.index[df["split"] == "test"][:2], "sex"] = "Unknown"
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    r = runner.invoke(app, ["audit", str(path), "--out", str(tmp_path / "o"), "--attributes", "sex", "--bootstrap", "5"])
    assert r.exit_code == 0, r.output
    record = json.loads((tmp_path / "o" / "audit.json").read_text())
    assert record["missing_attribute"]["sex"]["test_images"] == 2


def test_counts_at_fixed_thresholds_equal_the_sweep():
    from radfair.fairness._audit import Evaluation
    from radfair.fairness._bootstrap import replicate_chunks

    df = _table(n_test=60, seed=3)
    test = df[df["split"] == "test"].reset_index(drop=True)
    patients = pd.Index(pd.unique(test["patient_id"]))
    t = np.array([0.45])
    ev = Evaluation(test, ["effusion"], t, ["sex"], patients, auc=True)
    w = next(replicate_chunks(len(patients), 30, 0))
    swept = ev.sweep.run(w)[1]["counts"]
    np.testing.assert_allclose(ev.counts_at(np.repeat(t[None], 30, axis=0), w)[0], swept)


def test_threshold_in_bootstrap_widens_rate_intervals_and_is_reproducible():
    df = _table(n_test=150, seed=4)
    fixed, _ = _audit(df, ["sex"], bootstrap=200)
    moving, _ = _audit(df, ["sex"], bootstrap=200, threshold_in_bootstrap=True)
    again, _ = _audit(df, ["sex"], bootstrap=200, threshold_in_bootstrap=True)
    pd.testing.assert_frame_equal(moving["group_metrics"], again["group_metrics"])
    pd.testing.assert_frame_equal(fixed["group_metrics"][["tpr", "fpr"]], moving["group_metrics"][["tpr", "fpr"]])  # same point
    width = lambda t: (t["group_metrics"]["tpr_ci_high"] - t["group_metrics"]["tpr_ci_low"]).mean()  # noqa: E731
    assert width(moving) > width(fixed)
    assert "re-chooses them in every replicate" in moving["audit"]["conventions"]["bootstrap"]
    with pytest.raises(RadfairInputError, match="threshold-in-bootstrap"):
        _audit(df, ["sex"], threshold="0.5", threshold_in_bootstrap=True)
