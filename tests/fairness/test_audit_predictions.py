"""Audit a prediction file as people hold it: own column names, logits, -1 labels, no split, the field's threshold rules."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score, roc_curve
from typer.testing import CliRunner

from radfair.cli import app
from radfair.errors import RadfairInputError
from radfair.fairness import AuditConfig, choose_threshold, run_audit

runner = CliRunner()


def prediction_file(n=1500, seed=0):
    """A DenseNet's predictions as published: its own column names, logits, CheXpert labels with -1, no split."""
    rng = np.random.default_rng(seed)
    race = rng.choice(["White", "Black", "Asian"], n, p=[0.6, 0.25, 0.15])
    sex = rng.choice(["M", "F"], n)
    out = pd.DataFrame({"subject": [f"s{k // 2}" for k in range(n)], "Path": [f"img{k}.jpg" for k in range(n)],
                        "race": race, "Sex": sex, "Age": rng.integers(18, 95, n)})
    for finding in ("Pleural Effusion", "Cardiomegaly"):
        y = rng.choice([1.0, 0.0, -1.0, np.nan], n, p=[0.3, 0.55, 0.1, 0.05])
        logit = 2.0 * (y == 1) - 1.0 + rng.standard_normal(n) - 0.6 * (race == "Black") * (y == 1)
        out[finding], out[f"Logit - {finding}"] = y, logit
    return out


MAPPING = ("y_Pleural Effusion=Pleural Effusion,p_Pleural Effusion=Logit - Pleural Effusion,"
           "y_cardiomegaly=Cardiomegaly,p_cardiomegaly=Logit - Cardiomegaly,patient_id=subject,image_id=Path,sex=Sex")


def test_whole_path_own_columns_logits_uncertain_no_split_fpr_target(tmp_path):
    raw = prediction_file()
    path = tmp_path / "predictions.csv"
    raw.to_csv(path, index=False)
    out = tmp_path / "audit"
    r = runner.invoke(app, ["audit", str(path), "--out", str(out), "--columns", MAPPING, "--scores", "logits",
                            "--uncertain", "zeros", "--threshold", "fpr:0.2", "--attributes", "race,sex", "--bootstrap", "50"])
    assert r.exit_code == 0, r.output
    assert "no split column" in r.output and "logits" in r.output
    group = pd.read_csv(out / "group_metrics.csv")
    thresholds = pd.read_csv(out / "thresholds.csv").set_index("label")["threshold"]
    record = json.loads((out / "audit.json").read_text())
    assert "all rows of the table" in record["threshold_source"]
    for label, column in (("pleural_effusion", "Pleural Effusion"), ("cardiomegaly", "Cardiomegaly")):
        y = raw[column].replace(-1.0, 0.0)
        p = 1 / (1 + np.exp(-raw[f"Logit - {column}"]))
        known = y.notna()
        # the threshold at FPR 0.2, independently from scikit-learn's ROC curve: the lowest threshold with FPR <= 0.2
        fpr, tpr, thr = roc_curve(y[known], p[known], drop_intermediate=False)
        expected_t = thr[np.flatnonzero(fpr <= 0.2)[-1]]
        assert thresholds[label] == pytest.approx(expected_t)
        pred = p >= thresholds[label]
        for race, rows in raw[known].groupby("race"):
            yy, pp = y[rows.index], pred[rows.index]
            row = group[(group["attribute"] == "race") & (group["group"] == race) & (group["label"] == label)].iloc[0]
            assert row.tpr == pytest.approx(((pp == 1) & (yy == 1)).sum() / (yy == 1).sum())
            assert row.fpr == pytest.approx(((pp == 1) & (yy == 0)).sum() / (yy == 0).sum())
            assert row.auc == pytest.approx(roc_auc_score(yy, p[rows.index]))
        overall = fpr[np.flatnonzero(fpr <= 0.2)[-1]]
        assert overall <= 0.2


def test_target_rules_pick_the_operating_point():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500).astype(float)
    s = rng.random(500) + 0.4 * y
    t = choose_threshold(y, s, "fpr:0.1")
    assert ((s >= t) & (y == 0)).sum() / (y == 0).sum() <= 0.1
    lower = np.max(s[s < t]) if (s < t).any() else None
    if lower is not None:  # one step lower would exceed the target
        assert ((s >= lower) & (y == 0)).sum() / (y == 0).sum() > 0.1
    t2 = choose_threshold(y, s, "tpr:0.9")
    assert ((s >= t2) & (y == 1)).sum() / (y == 1).sum() >= 0.9
    higher = np.min(s[s > t2])
    assert ((s >= higher) & (y == 1)).sum() / (y == 1).sum() < 0.9


def test_every_missing_column_is_named_at_once_with_the_fix(tmp_path):
    raw = prediction_file(50)
    with pytest.raises(RadfairInputError) as err:
        run_audit(raw, AuditConfig(attributes=["race", "age_group"], bootstrap=0))
    message = str(err.value)
    for needed in ("patient_id", "split", "age_group", "y_<label>/p_<label>", "--columns", "fpr:0.2"):
        assert needed in message


def test_logits_without_the_option_get_the_hint_and_uncertain_labels_too(tmp_path):
    raw = prediction_file(80)
    mapping = {"y_effusion": "Pleural Effusion", "p_effusion": "Logit - Pleural Effusion", "patient_id": "subject"}
    with pytest.raises(RadfairInputError, match="--uncertain"):
        run_audit(raw, AuditConfig(attributes=["race"], bootstrap=0, threshold="0.5", columns=mapping, scores="logits"))
    with pytest.raises(RadfairInputError, match="--scores logits"):
        run_audit(raw, AuditConfig(attributes=["race"], bootstrap=0, threshold="0.5", columns=mapping, uncertain="zeros"))


def test_numeric_age_is_binned_and_other_numbers_refused():
    raw = prediction_file(400)
    mapping = {"y_effusion": "Pleural Effusion", "p_effusion": "Logit - Pleural Effusion", "patient_id": "subject", "age": "Age"}
    tables = run_audit(raw, AuditConfig(attributes=["age"], bootstrap=0, threshold="0.5", columns=mapping, scores="logits",
                                        uncertain="ignore"))
    assert set(tables["group_metrics"]["group"]) <= {"0-20", "20-40", "40-60", "60-80", "80+"}
    assert any("binned" in note for note in tables["audit"]["input_rules"])
    raw["score_bin"] = np.arange(len(raw))
    with pytest.raises(RadfairInputError, match="bin it into groups"):
        run_audit(raw, AuditConfig(attributes=["score_bin"], bootstrap=0, threshold="0.5", columns=mapping, scores="logits",
                                   uncertain="ignore"))


def test_split_synonyms_and_bootstrap_zero_prints_no_empty_interval(tmp_path):
    raw = prediction_file(400)
    raw["split"] = np.where(np.arange(len(raw)) % 3 == 0, "Validate", "test")
    raw.loc[raw["subject"].isin(raw.loc[raw["split"] == "Validate", "subject"]), "split"] = "Validate"
    path = tmp_path / "p.csv"
    raw.to_csv(path, index=False)
    r = runner.invoke(app, ["audit", str(path), "--out", str(tmp_path / "o"), "--columns", MAPPING, "--scores", "logits",
                            "--uncertain", "ones", "--attributes", "race", "--bootstrap", "0"])
    assert r.exit_code == 0, r.output
    assert "'Validate' -> val" in r.output and "()" not in r.output and "no bootstrap: no interval" in r.output


def test_what_a_new_user_got_wrong_is_caught():
    """Found by a fresh user: probabilities passed as logits, copies without image_id, a wrongly keyed --columns,
    age_group asked of a file with age, frames paired by position in the API."""
    raw = prediction_file(300)
    mapping = {"y_effusion": "Pleural Effusion", "p_effusion": "Logit - Pleural Effusion", "patient_id": "subject"}
    probabilities = raw.assign(**{"Logit - Pleural Effusion": 1 / (1 + np.exp(-raw["Logit - Pleural Effusion"]))})
    with pytest.raises(RadfairInputError, match="look like probabilities; drop --scores logits"):
        run_audit(probabilities, AuditConfig(attributes=["race"], bootstrap=0, threshold="0.5", columns=mapping, scores="logits",
                                             uncertain="zeros"))
    copies = pd.concat([raw, raw.head(5)], ignore_index=True).drop(columns=["Path"])
    with pytest.warns(Warning, match="5 row\\(s\\) repeat another row"):
        run_audit(copies, AuditConfig(attributes=["race"], bootstrap=0, threshold="0.5", columns=mapping, scores="logits",
                                      uncertain="zeros"))
    with pytest.raises(RadfairInputError, match="--columns"):
        run_audit(raw, AuditConfig(attributes=["race"], bootstrap=0, threshold="0.5", columns=mapping | {"patient": "subject"},
                                   scores="logits", uncertain="zeros"))
    tables = run_audit(raw, AuditConfig(attributes=["age_group"], bootstrap=0, threshold="0.5", columns=mapping | {"age": "Age"},
                                        scores="logits", uncertain="zeros"))
    assert any("age_group derived from age" in note for note in tables["audit"]["input_rules"])
    from radfair.fairness import audit as audit_arrays

    y = raw[["Pleural Effusion", "Cardiomegaly"]].replace(-1.0, 0.0)
    with pytest.raises(RadfairInputError, match="paired by name"):
        audit_arrays(y, raw[["Logit - Cardiomegaly", "Logit - Pleural Effusion"]], sensitive_features=raw[["race"]],
                     scores="logits")


def test_a_group_with_one_positive_gets_a_wilson_floor_and_no_finding():
    from radfair.fairness import wilson_interval
    from radfair.report.findings import disparity_findings

    rng = np.random.default_rng(5)
    n = 600
    group = np.where(np.arange(n) < 580, "A", "B")
    y = (rng.random(n) < 0.3).astype(float)
    y[group == "B"] = 0.0
    y[np.flatnonzero(group == "B")[0]] = 1.0  # B: one positive, detected
    score = np.clip(0.5 * y + 0.5 * rng.random(n), 0, 1)
    score[np.flatnonzero(group == "B")[0]] = 0.99
    df = pd.DataFrame({"patient_id": np.arange(n).astype(str), "split": "test", "g": group, "y_a": y, "p_a": score})
    with pytest.warns(Warning, match="small_group"):
        tables = run_audit(df, AuditConfig(attributes=["g"], threshold="0.5", bootstrap=100))
    row = tables["group_metrics"].set_index("group").loc["B"]
    low, high = wilson_interval(np.array(1.0), np.array(1.0))
    assert row["tpr"] == 1.0 and row["tpr_ci_low"] <= float(low) + 1e-12 and row["small_group"]
    found = disparity_findings(tables["disparities"])
    assert not any(f.startswith("B patients") for f in found)  # one positive: never a finding
