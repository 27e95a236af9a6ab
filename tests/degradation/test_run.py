import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from radfair.cli import app
from radfair.data.cohort import build_cohort
from radfair.degradation.run import degrade_mri, degrade_xray
from radfair.io import write_table

runner = CliRunner()


@pytest.fixture(scope="module")
def cohorts(synth_root, tmp_path_factory):
    root, _ = synth_root
    folder = tmp_path_factory.mktemp("cohorts")
    for source in ("chexpert", "ucsf-pdgm"):
        write_table(build_cohort(source, root)[0], folder / f"{source}.parquet")
    return folder


def test_xray_resume_redoes_only_missing_chunks_with_identical_numbers(cohorts, tmp_path):
    out = tmp_path / "x"
    first = degrade_xray(cohorts / "chexpert.parquet", out, [1e4, 3e3], size=32, batch=4, limit=10)
    assert len(first) == 20 and first["psnr"].between(5, 60).all()
    parts = sorted((out / "parts").glob("*.parquet"))
    assert len(parts) == 6  # 2 levels x 3 chunks
    parts[1].unlink()
    untouched = parts[0].stat().st_mtime_ns
    second = degrade_xray(cohorts / "chexpert.parquet", out, [1e4, 3e3], size=32, batch=4, limit=10)
    assert parts[0].stat().st_mtime_ns == untouched
    pd.testing.assert_frame_equal(first, second)
    summary = pd.read_csv(out / "quality_summary.csv")
    assert {"(all)", "sex"} <= set(summary["attribute"])


def test_mri_volumes_and_reported_fraction(cohorts, tmp_path):
    table = degrade_mri(cohorts / "ucsf-pdgm.parquet", tmp_path / "m", [4, 8], limit=2)
    assert len(table) == 4
    by_level = table.groupby("acceleration")["sampled_fraction"].mean()
    assert by_level[4] > by_level[8]
    assert all(p.endswith(".nii.gz") for p in table["path_degraded"])
    for path in (*table["path_clean"].unique(), *table["path_degraded"]):  # uint16 scaled by the maximum, not float32
        image = nib.load(path)
        assert image.get_data_dtype() == np.uint16 and image.get_fdata().max() == pytest.approx(image.dataobj.slope * 65535)


def test_cli_bad_inputs_exit_2(cohorts, tmp_path):
    r = runner.invoke(app, ["degrade", "xray", "--cohort", str(cohorts / "chexpert.parquet"), "--out", str(tmp_path / "o"), "--mode", "magic"])
    assert r.exit_code == 2 and "--mode" in r.output
    r = runner.invoke(app, ["degrade", "mri", "--cohort", str(cohorts / "ucsf-pdgm.parquet"), "--out", str(tmp_path / "o"), "--acceleration", "x"])
    assert r.exit_code == 2 and "--acceleration" in r.output
    bad = pd.read_parquet(cohorts / "chexpert.parquet").head(2).assign(path="/nope.jpg")
    bad.to_parquet(tmp_path / "bad.parquet")
    r = runner.invoke(app, ["degrade", "xray", "--cohort", str(tmp_path / "bad.parquet"), "--out", str(tmp_path / "o2"), "--size", "32"])
    assert r.exit_code == 2 and "/nope.jpg: file not found" in r.output
