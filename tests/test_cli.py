import json

import pandas as pd
from typer.testing import CliRunner

from radfair.cli import app

runner = CliRunner()


def test_synth_cohort_split_end_to_end(tmp_path):
    out = tmp_path / "syn"
    r = runner.invoke(app, ["synth", "--out", str(out), "--patients", "40", "--image-size", "32", "--mri-patients", "2"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["cohort", "--source", "all", "--root", str(out), "--out", str(tmp_path / "c.parquet")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["split", "--cohort", str(tmp_path / "c.parquet"), "--out", str(tmp_path / "s.parquet")])
    assert r.exit_code == 0, r.output
    assert set(pd.read_parquet(tmp_path / "s.parquet")["split"]) <= {"train", "val", "test"}


def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path):
    r = runner.invoke(app, ["cohort", "--source", "chexpert", "--root", str(tmp_path / "nope"), "--out", str(tmp_path / "c.parquet")])
    assert r.exit_code == 2
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope" in lines[0]
    assert "Traceback" not in r.output
    assert not (tmp_path / "c.parquet").exists()


def test_audit_warnings_are_summarised_as_counts_per_kind(tmp_path):
    from radfair.data.synthetic.scored import simulate_scored

    simulate_scored(150, labels=["edema", "fracture"], seed=0, fractions=(0.0, 0.5, 0.5)).to_csv(tmp_path / "s.csv", index=False)
    r = runner.invoke(app, ["audit", str(tmp_path / "s.csv"), "--out", str(tmp_path / "o"), "--bootstrap", "0",
                            "--attributes", "race*age_group"])
    assert r.exit_code == 0, r.output
    full = json.loads((tmp_path / "o" / "audit.json").read_text())["warnings"]
    warning_lines = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(full) > 10 and len(warning_lines) <= 4
    assert any(" x no positives in test; TPR is NaN (full list in" in line for line in warning_lines)
