"""Issue 13, "No stale or silently wrong results": one test per item, named after it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from radfair.cli import app
from radfair.data.cohort import build_cohort, save_cohort
from radfair.data.synthetic import generate
from radfair.data.synthetic.scored import simulate_scored
from radfair.errors import RadfairInputError, RadfairWarning
from radfair.fairness import AuditConfig, run_audit
from radfair.readers import read_gray

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("issue13")
    release = root / "rel"
    generate(release, patients=20, seed=2, image_size=32, mri_patients=2, mri_shape=(16, 16, 4))
    cohort, meta = build_cohort("chexpert", release)
    save_cohort(cohort.head(4), meta, root / "cx.parquet")
    mri, meta = build_cohort("ucsf-pdgm", release)
    save_cohort(mri, meta, root / "mri.parquet")
    return root, release


def _lines(result):
    return [line for line in result.stderr.splitlines() if line.strip()]


# 1 -------------------------------------------------------------------------------------------------
def test_resume_must_not_return_results_for_other_settings(tiny, tmp_path):
    root, _ = tiny
    out = tmp_path / "A"
    xray = ["degrade", "xray", "--cohort", str(root / "cx.parquet"), "--out", str(out), "--photons", "10000", "--batch", "2"]
    assert runner.invoke(app, xray + ["--size", "32"]).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["size"] == 32 and len(manifest["cohort_sha256"]) == 64
    for change, named in ((["--size", "16"], "--size 32"), (["--size", "32", "--seed", "1"], "--seed 0"),
                          (["--size", "32", "--mode", "paper"], "--mode physical")):
        result = runner.invoke(app, xray + change)
        assert result.exit_code == 2 and _lines(result) == [f"error: {out}: made with {named}; use a new --out or --overwrite"]
    other = tmp_path / "other.parquet"
    pd.read_parquet(root / "cx.parquet").head(3).to_parquet(other)
    result = runner.invoke(app, ["degrade", "xray", "--cohort", str(other), "--out", str(out), "--photons", "10000",
                                 "--batch", "2", "--size", "32"])
    assert result.exit_code == 2 and "another --cohort" in _lines(result)[0]
    assert runner.invoke(app, xray + ["--size", "32"]).exit_code == 0  # same settings: resumes
    assert runner.invoke(app, xray + ["--size", "16", "--overwrite"]).exit_code == 0  # recomputed, never mixed
    table = pd.read_parquet(out / "degraded.parquet")
    assert all(Image.open(p).size == (16, 16) for p in table["path_clean"])
    mri = ["degrade", "mri", "--cohort", str(root / "mri.parquet"), "--out", str(tmp_path / "M"), "--limit", "1"]
    assert runner.invoke(app, mri + ["--acceleration", "4"]).exit_code == 0
    result = runner.invoke(app, mri + ["--acceleration", "8"])
    assert result.exit_code == 2 and "made with --acceleration 4" in _lines(result)[0]
    # a non-empty folder radfair did not make is never deleted, not even with --overwrite
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    result = runner.invoke(app, ["degrade", "mri", "--cohort", str(root / "mri.parquet"), "--out", str(tmp_path / "mine"), "--overwrite"])
    assert result.exit_code == 2 and (tmp_path / "mine" / "notes.txt").is_file()


# 2 -------------------------------------------------------------------------------------------------
def test_no_leftovers_from_an_earlier_run_in_an_output_folder(tmp_path):
    scored = tmp_path / "a.csv"
    df = simulate_scored(150, labels=["edema"], seed=0, fractions=(0.0, 0.5, 0.5))
    df.to_csv(scored, index=False)
    df.assign(p_edema=df["p_edema"] ** 1.1).to_csv(tmp_path / "b.csv", index=False)
    out = tmp_path / "out"
    base = ["audit", str(scored), "--out", str(out), "--attributes", "sex", "--bootstrap", "10"]
    assert runner.invoke(app, base + ["--compare", str(tmp_path / "b.csv")]).exit_code == 0
    assert (out / "comparison.csv").is_file() and (out / "thresholds_compare.parquet").is_file()
    assert runner.invoke(app, base).exit_code == 0
    assert not (out / "comparison.csv").exists() and not (out / "thresholds_compare.parquet").exists()
    assert json.loads((out / "audit.json").read_text())["inputs"]["compare"] is None
    assert not list(tmp_path.glob(".out.tmp-*"))


# 3 -------------------------------------------------------------------------------------------------
def test_validation_without_positives_is_nan_everywhere_with_a_warning():
    df = simulate_scored(200, labels=["edema", "fracture"], seed=1, fractions=(0.0, 0.5, 0.5))
    df.loc[df["split"] == "val", "y_fracture"] = 0.0
    with pytest.warns(UserWarning, match="label fracture: the threshold split has no positives"):
        out = run_audit(df, AuditConfig(attributes=["sex"], bootstrap=20))
    gaps = out["gaps"].set_index("label")
    assert np.isnan(gaps.loc["fracture", ["gap", "ci_low", "ci_high"]].astype(float)).all()
    assert np.isfinite(gaps.loc["edema", "gap"])
    fracture = out["group_metrics"].query("label == 'fracture'")
    assert fracture[["tpr", "fpr", "auc"]].isna().all().all()
    assert out["equalized_odds"].set_index("label").loc["fracture", ["eodd_worst", "eop"]].isna().all()


# 4 -------------------------------------------------------------------------------------------------
def test_rows_never_vanish_or_multiply_silently(tiny, tmp_path):
    root, _ = tiny
    cohort = pd.read_parquet(root / "cx.parquet")
    pd.concat([cohort, cohort.head(1)]).to_parquet(tmp_path / "dup.parquet")
    cohort.assign(patient_id=[None] + list(cohort["patient_id"][1:])).to_parquet(tmp_path / "null.parquet")
    cases = [
        (["degrade", "xray", "--cohort", str(tmp_path / "dup.parquet"), "--out", str(tmp_path / "o")], "duplicate image_id"),
        (["split", "--cohort", str(tmp_path / "null.parquet"), "--out", str(tmp_path / "s.parquet")], "'patient_id' is blank in 1 row"),
        (["degrade", "xray", "--cohort", str(root / "cx.parquet"), "--out", str(tmp_path / "o"), "--limit", "-3"], "--limit"),
        (["split", "--cohort", str(root / "cx.parquet"), "--out", str(tmp_path / "s.parquet"), "--fractions", "nan,0.5,0.5"], "--fractions"),
    ]
    for argv, expected in cases:
        result = runner.invoke(app, argv)
        assert result.exit_code == 2 and expected in _lines(result)[0], result.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "s.parquet").exists()


# 5 -------------------------------------------------------------------------------------------------
def test_values_are_not_coerced_without_a_word(tiny, tmp_path):
    _, release = tiny
    chex = tmp_path / "chex"
    shutil.copytree(release / "chexpert", chex, ignore=shutil.ignore_patterns("*.jpg"))
    train = chex / "CheXpert-v1.0" / "train.csv"
    raw = pd.read_csv(train)
    raw.loc[[0, 1], "Sex"] = "X"
    raw.to_csv(train, index=False)
    with pytest.warns(RadfairWarning, match=r"column 'Sex': 2 row\(s\) with unrecognised value\(s\) \['X'\]"):
        cohort, _ = build_cohort("chexpert", chex)
    # the CLI prints the same warning on one line
    result = runner.invoke(app, ["cohort", "--source", "chexpert", "--root", str(chex), "--out", str(tmp_path / "c.parquet")])
    assert result.exit_code == 0 and "warning:" in result.stderr and "'X'" in result.stderr
    # impossible numbers are errors in every loader
    raw.loc[0, "Sex"], raw.loc[0, "Age"] = "Male", -4
    raw.to_csv(train, index=False)
    with pytest.raises(RadfairInputError, match="'Age' has value"):
        build_cohort("chexpert", chex)
    ucsf = tmp_path / "ucsf"
    shutil.copytree(release / "ucsf-pdgm", ucsf)
    meta = pd.read_csv(ucsf / "UCSF-PDGM-metadata_v2.csv")
    meta["Age at MRI"] = meta["Age at MRI"].astype(object)
    meta.loc[0, "Age at MRI"] = "forty"
    meta.to_csv(ucsf / "UCSF-PDGM-metadata_v2.csv", index=False)
    with pytest.raises(RadfairInputError, match="'Age at MRI' has non-numeric value"):
        build_cohort("ucsf-pdgm", ucsf)
    # a patient recorded as both Male and Female: sex becomes missing for that patient, with a count
    raw = pd.read_csv(train).assign(Age=50)
    patient = raw["Path"].str.split("/").str[2]
    first = patient[patient.duplicated(keep=False)].iloc[0]
    rows = raw.index[patient == first]
    raw.loc[rows[0], "Sex"], raw.loc[rows[1:], "Sex"] = "Male", "Female"
    raw.to_csv(train, index=False)
    with pytest.warns(RadfairWarning, match=r"1 patient\(s\) .* recorded as both Male and Female"):
        cohort, _ = build_cohort("chexpert", chex)
    assert cohort.loc[cohort["patient_id"] == f"chexpert:{first}", "sex"].isna().all()
    # the same rule in `split`, for a cohort table made elsewhere
    table = cohort.copy()
    pid = table["patient_id"][table["patient_id"].duplicated(keep=False)].iloc[-1]
    table.loc[table["patient_id"] == pid, "sex"] = ["Male"] + ["Female"] * (int((table["patient_id"] == pid).sum()) - 1)
    table.to_parquet(tmp_path / "c.parquet")
    result = runner.invoke(app, ["split", "--cohort", str(tmp_path / "c.parquet"), "--out", str(tmp_path / "s.parquet")])
    assert result.exit_code == 0 and "recorded as both Male and Female" in result.stderr
    assert pd.read_parquet(tmp_path / "s.parquet").query("patient_id == @pid")["sex"].isna().all()


# 6 -------------------------------------------------------------------------------------------------
def test_images_are_read_at_their_real_depth(tmp_path):
    rng = np.random.default_rng(0)
    eight = rng.integers(0, 256, (24, 24), dtype=np.uint8)
    Image.fromarray(eight).save(tmp_path / "8.png")
    Image.fromarray(eight.astype(np.uint16) * 257).save(tmp_path / "16.png")
    assert Image.open(tmp_path / "16.png").mode.startswith("I")
    a, b = read_gray(tmp_path / "8.png"), read_gray(tmp_path / "16.png")
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (24, 24)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert 0.0 <= b.min() and b.max() <= 1.0
    full = np.linspace(0, 65535, 24 * 24).reshape(24, 24).astype(np.uint16)
    Image.fromarray(full).save(tmp_path / "full16.png")
    np.testing.assert_allclose(read_gray(tmp_path / "full16.png"), full / 65535.0, atol=1e-6)
    Image.fromarray(np.stack([eight] * 3, -1)).save(tmp_path / "rgb.jpg", quality=95)
    assert abs(float(read_gray(tmp_path / "rgb.jpg").mean()) - float(a.mean())) < 0.01


# 7 -------------------------------------------------------------------------------------------------
def test_synth_killed_leaves_no_temp_folder_and_meaningless_counts_are_errors(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    stale = tmp_path / f".syn.tmp-{int(dead.stdout)}-abc123"
    (stale / "chexpert").mkdir(parents=True)
    (stale / "chexpert" / "big.bin").write_bytes(b"0" * 1000)
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "syn"), "--patients", "20", "--image-size", "32", "--mri-patients", "0"])
    assert result.exit_code == 0, result.output
    assert not stale.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["syn"]
    scored = tmp_path / "s.csv"
    simulate_scored(60, labels=["edema"], seed=0, fractions=(0.0, 0.5, 0.5)).to_csv(scored, index=False)
    for argv, option in ((["audit", str(scored), "--out", str(tmp_path / "a"), "--bootstrap", "-1"], "--bootstrap"),
                         (["audit", str(scored), "--out", str(tmp_path / "a"), "--min-group-size", "-5"], "--min-group-size"),
                         (["degrade", "mri", "--cohort", str(scored), "--out", str(tmp_path / "m"), "--mask", "paper",
                           "--n-rays", "0"], "--n-rays")):
        result = runner.invoke(app, argv)
        assert result.exit_code == 2 and _lines(result)[0].startswith(f"error: {option}:"), result.output
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not (tmp_path / "a").exists() and not (tmp_path / "m").exists()
