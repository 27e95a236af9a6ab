import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from radfair.cli import app
from radfair.data.synthetic.scored import simulate_scored
from radfair.fairness import TEST_THRESHOLD_WARNING, AuditConfig, AuditWarning, run_audit

runner = CliRunner()


@pytest.fixture
def scored(tmp_path):
    df = simulate_scored(600, labels=["edema", "no_finding"], seed=1, effects={("race", "Black"): -1.0})
    path = tmp_path / "scored.parquet"
    df.to_parquet(path)
    return df, path


def test_cli_writes_every_output(scored, tmp_path):
    df, path = scored
    other = df.copy()
    other["p_edema"] = np.clip(other["p_edema"] * 0.9, 0, 1)
    other_path = tmp_path / "other.csv"
    other.to_csv(other_path, index=False)
    out = tmp_path / "audit"
    r = runner.invoke(app, ["audit", str(path), "--out", str(out), "--attributes", "sex,race,sex*race,insurance",
                            "--bootstrap", "50", "--compare", str(other_path)])
    assert r.exit_code == 0, r.output
    for name in ("thresholds", "group_metrics", "disparities", "gaps", "summary", "equalized_odds", "comparison"):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.parquet").is_file()
    gm = pd.read_csv(out / "group_metrics.csv")
    assert {"tpr", "tpr_ci_low", "tpr_ci_high", "auc", "small_group"} <= set(gm.columns)
    assert "Female*Black" in set(gm["group"])
    comp = pd.read_csv(out / "comparison.csv")
    assert {"value_a", "value_b", "delta", "p_value", "p_holm", "p_bh"} <= set(comp.columns)
    assert (comp["p_holm"].dropna() >= comp["p_value"].dropna()).all()
    meta = json.loads((out / "audit.json").read_text())
    assert len(meta["inputs"]["scored"]["sha256"]) == 64
    assert meta["conventions"]["eodd_worst"].startswith("max(dTPR, dFPR)")
    summary = pd.read_csv(out / "summary.csv").set_index("attribute")
    assert "no_finding" not in (summary.loc["race", "lowest_label"], summary.loc["race", "highest_label"])


def test_same_seed_same_numbers(scored):
    df, _ = scored
    cfg = AuditConfig(attributes=["sex"], bootstrap=30, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = run_audit(df, cfg)["gaps"]
        b = run_audit(df, cfg)["gaps"]
    pd.testing.assert_frame_equal(a, b)


def test_group_without_positives_warns_and_is_nan(scored):
    df, _ = scored
    df = df.copy()
    df.loc[(df["race"] == "Asian") & (df["split"] == "test"), "y_edema"] = 0.0
    with pytest.warns(AuditWarning, match="race=Asian, label edema: no positives"):
        out = run_audit(df, AuditConfig(attributes=["race"], bootstrap=10))
    row = out["group_metrics"].query("group == 'Asian' and label == 'edema'").iloc[0]
    assert np.isnan(row["tpr"])


def test_threshold_on_test_warns(scored):
    df, _ = scored
    with pytest.warns(AuditWarning, match="TEST split"):
        out = run_audit(df, AuditConfig(attributes=["sex"], bootstrap=0, threshold_on_test=True))
    assert TEST_THRESHOLD_WARNING in out["audit"]["warnings"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.drop(columns=["patient_id"]), "missing column"),
        (lambda d: d.assign(p_edema=d["p_edema"] + 1), "column 'p_edema' has value"),
        (lambda d: d.assign(y_edema=d["y_edema"] * 2), "column 'y_edema' has value"),
        (lambda d: d.assign(split="train"), "no rows left after selecting split == 'val'"),
        (lambda d: d.assign(split="holdout"), "column 'split' has value"),
    ],
)
def test_bad_input_exit_2_one_line(scored, tmp_path, mutate, message):
    df, _ = scored
    path = tmp_path / "bad.csv"
    mutate(df).to_csv(path, index=False)
    r = runner.invoke(app, ["audit", str(path), "--out", str(tmp_path / "o"), "--attributes", "sex", "--bootstrap", "5"])
    assert r.exit_code == 2
    assert message in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "gaps.csv").exists()


def test_unknown_attribute(scored, tmp_path):
    _, path = scored
    r = runner.invoke(app, ["audit", str(path), "--out", str(tmp_path / "o"), "--attributes", "shoe_size"])
    assert r.exit_code == 2 and "shoe_size" in r.output
