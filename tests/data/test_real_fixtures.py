"""Real public images (tests/fixtures/NOTICE.md): NIH ChestX-ray14 64x64 radiographs with their real Data_Entry rows,
and one TCGA-LGG FLAIR volume with its tumour label map. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from radfair.cli import app
from radfair.data.cohort import build_cohort, save_cohort
from radfair.data.splits import split_cohort_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
runner = CliRunner()


@pytest.fixture(scope="module")
def nih(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nih")
    cohort, meta = build_cohort("nih-cxr14", FIXTURES)
    save_cohort(cohort, meta, folder / "cohort.parquet")
    split_cohort_file(folder / "cohort.parquet", folder / "split.parquet", fractions=(0.6, 0.2, 0.2), seed=0)
    return folder


def test_real_nih_release_reads_every_row(nih):
    cohort = pd.read_parquet(nih / "split.parquet")
    assert len(cohort) == 162 and cohort["patient_id"].nunique() == 93
    first = cohort.set_index("image_id").loc["nih-cxr14:00000001_001.png"]  # Cardiomegaly|Emphysema, 58, M, PA
    assert (first["y_cardiomegaly"], first["y_emphysema"], first["y_no_finding"]) == (1.0, 1.0, 0.0)
    assert (first["age"], first["sex"], first["view_position"]) == (58.0, "Male", "PA")
    assert cohort["split"].notna().all() and cohort.groupby("patient_id")["split"].nunique().max() == 1
    assert cohort["y_no_finding"].mean() == pytest.approx(76 / 162)


def _levels(summary: pd.DataFrame) -> pd.Series:
    return summary[summary["attribute"] == "(all)"].set_index("level")["psnr"]


def test_real_radiographs_lose_psnr_as_dose_falls(nih, tmp_path):
    from radfair.degradation.run import degrade_xray

    degrade_xray(nih / "cohort.parquet", tmp_path / "dx", [1e5, 1e4, 3e3], size=64, limit=24, seed=0)
    psnr = _levels(pd.read_csv(tmp_path / "dx" / "quality_summary.csv"))
    values = [psnr[f"xray_physical_{n}"] for n in (100000, 10000, 3000)]
    assert values[0] > values[1] > values[2] > 15


def test_real_flair_volume_gains_psnr_with_sampled_fraction(tmp_path):
    from radfair.degradation.run import degrade_mri

    cohort, meta = build_cohort("manifest", FIXTURES / "tcga_lgg_flair" / "manifest.csv", views="all")
    assert cohort["mask_path"].map(lambda p: Path(p).is_file()).all()
    save_cohort(cohort, meta, tmp_path / "mri.parquet")
    degrade_mri(tmp_path / "mri.parquet", tmp_path / "dm", [4, 8, 16], seed=0)
    psnr = _levels(pd.read_csv(tmp_path / "dm" / "quality_summary.csv"))
    values = [psnr[f"mri_golden_angle_R{r}"] for r in (4, 8, 16)]
    assert values[0] > values[1] > values[2]


@pytest.mark.slow
def test_real_nih_cohort_split_train_audit(nih, tmp_path):
    """A tiny DenseNet on 95 real training images: the pipeline runs and every number is finite and in range
    (no claim about skill: AUROC on 39 test images is noise-dominated)."""
    r = runner.invoke(app, ["train", "--cohort", str(nih / "split.parquet"), "--out", str(tmp_path / "run"), "--input", "images",
                            "--model", "densenet121", "--labels", "no_finding", "--image-size", "64", "--epochs", "3",
                            "--patience", "3", "--batch-size", "16", "--lr", "1e-3", "--threads", "1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["audit", str(tmp_path / "run" / "scored.parquet"), "--out", str(tmp_path / "audit"),
                            "--attributes", "sex,age_group", "--bootstrap", "200"])
    assert r.exit_code == 0, r.output
    perf = pd.read_csv(tmp_path / "audit" / "performance.csv")
    assert 0 <= perf["auc"].iloc[0] <= 1 and perf["ci_low"].iloc[0] <= perf["auc"].iloc[0] <= perf["ci_high"].iloc[0]
    gaps = pd.read_csv(tmp_path / "audit" / "gaps.csv").set_index("attribute")
    assert {"sex", "age_group"} <= set(gaps.index) and (gaps["ci_low"] <= gaps["ci_high"]).all()
