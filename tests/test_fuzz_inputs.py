"""Fuzz every CLI command with malformed inputs and faults.

Each case must end with exit code 2, exactly one line on stderr starting ``error:`` that names the
file, column or value at fault, no traceback, and no partial output: an output path that did not
exist is still absent, and one that existed is unchanged.
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from radfair.cli import app
from radfair.data.cohort import build_cohort, save_cohort
from radfair.data.synthetic import generate
from radfair.data.synthetic.scored import simulate_scored

runner = CliRunner()
CASES: dict[str, callable] = {}


def case(func):
    CASES[func.__name__] = func
    return func


@dataclass
class Base:
    """Tiny valid inputs shared by every case (copied before a case changes them)."""

    release: Path
    cohort_x: Path
    cohort_mri: Path
    scored: Path


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Base:
    root = tmp_path_factory.mktemp("fuzz_base")
    release = root / "rel"
    generate(release, patients=20, seed=1, image_size=32, mri_patients=2, mri_shape=(16, 16, 4))
    cohort, meta = build_cohort("chexpert", release)
    save_cohort(cohort.head(3), meta, root / "cohort_x.parquet")
    mri, meta = build_cohort("ucsf-pdgm", release)
    save_cohort(mri, meta, root / "cohort_mri.parquet")
    simulate_scored(120, labels=["edema"], seed=0, fractions=(0.0, 0.5, 0.5)).to_csv(root / "scored.csv", index=False)
    return Base(release, root / "cohort_x.parquet", root / "cohort_mri.parquet", root / "scored.csv")


# ---- helpers to build broken inputs -------------------------------------------------------------

def chexpert_release(tmp: Path, base: Base, edit=None, name: str = "CheXpert-v1.0") -> Path:
    """A copy of the synthetic CheXpert release (labels only), ``edit`` applied to train.csv."""
    rel = tmp / "chex"
    shutil.copytree(base.release / "chexpert", rel, ignore=shutil.ignore_patterns("*.jpg"))
    if name != "CheXpert-v1.0":
        (rel / "CheXpert-v1.0").rename(rel / name)
    if edit is not None:
        train = rel / name / "train.csv"
        df = pd.read_csv(train)
        edit(df, train)
    return rel


def copy_release(tmp: Path, base: Base, *parts: str) -> Path:
    for part in parts:
        shutil.copytree(base.release / part, tmp / "rel" / part, ignore=shutil.ignore_patterns("*.jpg", "*.tfrecord"))
    return tmp / "rel"


def rewrite_csv_gz(path: Path, edit) -> None:
    df = pd.read_csv(path)
    edit(df)
    df.to_csv(path, index=False, compression="gzip")


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def cohort_table(tmp: Path, base: Base, edit, name="c.parquet") -> Path:
    df = pd.read_parquet(base.cohort_x)
    df = edit(df) if edit else df
    path = tmp / name
    df.to_parquet(path) if name.endswith(".parquet") else df.to_csv(path, index=False)
    return path


def scored_table(tmp: Path, base: Base, edit, name="s.csv") -> Path:
    df = pd.read_csv(base.scored)
    df = edit(df) if edit else df
    path = tmp / name
    df.to_parquet(path) if name.endswith(".parquet") else df.to_csv(path, index=False)
    return path


def xray_cohort_with(tmp: Path, base: Base, writer) -> Path:
    """The X-ray cohort with its first image replaced by what ``writer(path)`` writes."""
    df = pd.read_parquet(base.cohort_x)
    bad = tmp / "bad.jpg"
    writer(bad)
    df.loc[0, "path"] = str(bad)
    df.to_parquet(tmp / "cx.parquet")
    return tmp / "cx.parquet"


def mri_cohort_with(tmp: Path, base: Base, writer) -> Path:
    df = pd.read_parquet(base.cohort_mri)
    bad = tmp / "bad.nii.gz"
    writer(bad, Path(df.loc[0, "path"]))
    df.loc[0, "path"] = str(bad)
    df.to_parquet(tmp / "cm.parquet")
    return tmp / "cm.parquet"


def a_file(tmp: Path) -> Path:
    (tmp / "a_file").write_text("not a folder\n")
    return tmp / "a_file"


XRAY = ["degrade", "xray", "--photons", "10000", "--size", "16", "--batch", "2"]
MRI = ["degrade", "mri", "--acceleration", "4"]


def cohort_cmd(root: Path, out: Path, source: str = "chexpert") -> list[str]:
    return ["cohort", "--source", source, "--root", str(root), "--out", str(out)]


# ---- synth --------------------------------------------------------------------------------------

@case
def synth_too_few_patients(tmp, base):
    return ["synth", "--out", str(tmp / "o"), "--patients", "5"], tmp / "o", "--patients"


@case
def synth_bad_image_size(tmp, base):
    return ["synth", "--out", str(tmp / "o"), "--image-size", "30"], tmp / "o", "--image-size"


@case
def synth_negative_mri_patients(tmp, base):
    return ["synth", "--out", str(tmp / "o"), "--patients", "20", "--mri-patients", "-1"], tmp / "o", "--mri-patients"


@case
def synth_out_is_a_file(tmp, base):
    return ["synth", "--out", str(a_file(tmp)), "--patients", "20", "--image-size", "32"], a_file(tmp), "a_file"


@case
def synth_out_below_a_file(tmp, base):
    return ["synth", "--out", str(a_file(tmp) / "x"), "--patients", "20"], a_file(tmp) / "x", "a_file"


@case
def synth_out_not_empty(tmp, base):
    (tmp / "o").mkdir()
    (tmp / "o" / "mine.txt").write_text("keep me")
    return ["synth", "--out", str(tmp / "o"), "--patients", "20"], tmp / "o", "--overwrite"


# ---- cohort -------------------------------------------------------------------------------------

@case
def cohort_unknown_source(tmp, base):
    return cohort_cmd(base.release, tmp / "c.parquet", "chexpurt"), tmp / "c.parquet", "chexpurt"


@case
def cohort_root_missing(tmp, base):
    return cohort_cmd(tmp / "nope", tmp / "c.parquet"), tmp / "c.parquet", "nope"


@case
def cohort_empty_train_csv(tmp, base):
    rel = chexpert_release(tmp, base, lambda df, p: p.write_bytes(b""))
    return cohort_cmd(rel, tmp / "c.parquet"), tmp / "c.parquet", "train.csv"


@case
def cohort_header_only_train_csv(tmp, base):
    rel = chexpert_release(tmp, base, lambda df, p: df.head(0).to_csv(p, index=False))
    (rel / "CheXpert-v1.0" / "valid.csv").unlink()
    return cohort_cmd(rel, tmp / "c.parquet"), tmp / "c.parquet", "no rows"


@case
def cohort_binary_garbage_train_csv(tmp, base):
    rel = chexpert_release(tmp, base, lambda df, p: p.write_bytes(np.random.default_rng(0).bytes(4000)))
    return cohort_cmd(rel, tmp / "c.parquet"), tmp / "c.parquet", "train.csv"


@case
def cohort_corrupt_demo_xlsx(tmp, base):
    rel = chexpert_release(tmp, base)
    (rel / "CHEXPERT DEMO.xlsx").write_bytes(b"PK\x03\x04 this is not a workbook")
    return cohort_cmd(rel, tmp / "c.parquet"), tmp / "c.parquet", "CHEXPERT DEMO.xlsx"


@case
def cohort_age_text(tmp, base):
    def edit(df, p):
        df["Age"] = df["Age"].astype(object)
        df.loc[0, "Age"] = "sixty"
        df.to_csv(p, index=False)
    return cohort_cmd(chexpert_release(tmp, base, edit), tmp / "c.parquet"), tmp / "c.parquet", "sixty"


@case
def cohort_age_negative(tmp, base):
    def edit(df, p):
        df.loc[0, "Age"] = -4
        df.to_csv(p, index=False)
    return cohort_cmd(chexpert_release(tmp, base, edit), tmp / "c.parquet"), tmp / "c.parquet", "-4"


@case
def cohort_label_value_2(tmp, base):
    def edit(df, p):
        df.loc[0, "Edema"] = 2
        df.to_csv(p, index=False)
    return cohort_cmd(chexpert_release(tmp, base, edit), tmp / "c.parquet"), tmp / "c.parquet", "Edema"


@case
def cohort_missing_sex_column(tmp, base):
    rel = chexpert_release(tmp, base, lambda df, p: df.drop(columns="Sex").to_csv(p, index=False))
    return cohort_cmd(rel, tmp / "c.parquet"), tmp / "c.parquet", "Sex"


@case
def cohort_truncated_csv_gz(tmp, base):
    rel = copy_release(tmp, base, "mimic-cxr-jpg", "mimiciv")
    truncate(rel / "mimic-cxr-jpg" / "2.0.0" / "mimic-cxr-2.0.0-metadata.csv.gz")
    return cohort_cmd(rel, tmp / "c.parquet", "mimic"), tmp / "c.parquet", "metadata.csv.gz"


@case
def cohort_gzip_of_garbage(tmp, base):
    rel = copy_release(tmp, base, "mimic-cxr-jpg", "mimiciv")
    (rel / "mimiciv" / "2.2" / "hosp" / "patients.csv.gz").write_bytes(b"\x1f\x8b\x08garbage")
    return cohort_cmd(rel, tmp / "c.parquet", "mimic"), tmp / "c.parquet", "patients.csv.gz"


@case
def cohort_mimic_anchor_age_text(tmp, base):
    rel = copy_release(tmp, base, "mimic-cxr-jpg", "mimiciv")
    rewrite_csv_gz(rel / "mimiciv" / "2.2" / "hosp" / "patients.csv.gz", lambda df: df.__setitem__("anchor_age", "forty"))
    return cohort_cmd(rel, tmp / "c.parquet", "mimic"), tmp / "c.parquet", "anchor_age"


@case
def cohort_mimic_bad_study_date(tmp, base):
    rel = copy_release(tmp, base, "mimic-cxr-jpg", "mimiciv")
    rewrite_csv_gz(rel / "mimic-cxr-jpg" / "2.0.0" / "mimic-cxr-2.0.0-metadata.csv.gz",
                   lambda df: df.__setitem__("StudyDate", "yesterday"))
    return cohort_cmd(rel, tmp / "c.parquet", "mimic"), tmp / "c.parquet", "StudyDate"


@case
def cohort_ucsf_age_text(tmp, base):
    rel = copy_release(tmp, base, "ucsf-pdgm")
    meta = rel / "ucsf-pdgm" / "UCSF-PDGM-metadata_v2.csv"
    df = pd.read_csv(meta)
    df["Age at MRI"] = df["Age at MRI"].astype(object)
    df.loc[0, "Age at MRI"] = "forty"
    df.to_csv(meta, index=False)
    return cohort_cmd(rel, tmp / "c.parquet", "ucsf-pdgm"), tmp / "c.parquet", "forty"


@case
def cohort_ucsf_empty_metadata(tmp, base):
    rel = copy_release(tmp, base, "ucsf-pdgm")
    (rel / "ucsf-pdgm" / "UCSF-PDGM-metadata_v2.csv").write_bytes(b"")
    return cohort_cmd(rel, tmp / "c.parquet", "ucsf-pdgm"), tmp / "c.parquet", "UCSF-PDGM-metadata_v2.csv"


@case
def cohort_out_is_a_folder(tmp, base):
    (tmp / "c.parquet").mkdir()
    return cohort_cmd(base.release, tmp / "c.parquet"), tmp / "c.parquet", "c.parquet"


@case
def cohort_out_below_a_file(tmp, base):
    return cohort_cmd(base.release, a_file(tmp) / "c.parquet"), a_file(tmp) / "c.parquet", "a_file"


# ---- split --------------------------------------------------------------------------------------

def split_cmd(cohort: Path, out: Path, *extra: str) -> list[str]:
    return ["split", "--cohort", str(cohort), "--out", str(out), *extra]


@case
def split_cohort_not_parquet(tmp, base):
    (tmp / "c.parquet").write_text("image_id,patient_id\na,b\n")
    return split_cmd(tmp / "c.parquet", tmp / "s.parquet"), tmp / "s.parquet", "c.parquet"


@case
def split_cohort_missing(tmp, base):
    return split_cmd(tmp / "none.parquet", tmp / "s.parquet"), tmp / "s.parquet", "none.parquet"


@case
def split_cohort_empty_csv(tmp, base):
    (tmp / "c.csv").write_bytes(b"")
    return split_cmd(tmp / "c.csv", tmp / "s.parquet"), tmp / "s.parquet", "c.csv"


@case
def split_fractions_nan(tmp, base):
    return split_cmd(base.cohort_x, tmp / "s.parquet", "--fractions", "nan,0.5,0.5"), tmp / "s.parquet", "nan,0.5,0.5"


@case
def split_fractions_two(tmp, base):
    return split_cmd(base.cohort_x, tmp / "s.parquet", "--fractions", "0.5,0.5"), tmp / "s.parquet", "--fractions"


@case
def split_null_patient_id(tmp, base):
    path = cohort_table(tmp, base, lambda df: df.assign(patient_id=[None] + list(df["patient_id"][1:])))
    return split_cmd(path, tmp / "s.parquet"), tmp / "s.parquet", "patient_id"


@case
def split_duplicate_image_id(tmp, base):
    path = cohort_table(tmp, base, lambda df: pd.concat([df, df.head(1)], ignore_index=True))
    return split_cmd(path, tmp / "s.parquet"), tmp / "s.parquet", "image_id"


@case
def split_impossible_age(tmp, base):
    path = cohort_table(tmp, base, lambda df: df.assign(age=-4.0))
    return split_cmd(path, tmp / "s.parquet"), tmp / "s.parquet", "age"


@case
def split_unknown_stratify_label(tmp, base):
    return split_cmd(base.cohort_x, tmp / "s.parquet", "--stratify", "nosuch"), tmp / "s.parquet", "y_nosuch"


# ---- audit --------------------------------------------------------------------------------------

def audit_cmd(scored: Path, out: Path, *extra: str) -> list[str]:
    return ["audit", str(scored), "--out", str(out), "--attributes", "sex", "--bootstrap", "20", *extra]


@case
def audit_garbage_parquet(tmp, base):
    (tmp / "s.parquet").write_bytes(b"PAR1 definitely not parquet PAR1")
    return audit_cmd(tmp / "s.parquet", tmp / "o"), tmp / "o", "s.parquet"


@case
def audit_empty_csv(tmp, base):
    (tmp / "s.csv").write_bytes(b"")
    return audit_cmd(tmp / "s.csv", tmp / "o"), tmp / "o", "s.csv"


@case
def audit_header_only_csv(tmp, base):
    path = scored_table(tmp, base, lambda df: df.head(0))
    return audit_cmd(path, tmp / "o"), tmp / "o", "no rows"


@case
def audit_truncated_csv_gz(tmp, base):
    path = tmp / "s.csv.gz"
    path.write_bytes(gzip.compress(base.scored.read_bytes()))
    truncate(path)
    return audit_cmd(path, tmp / "o"), tmp / "o", "s.csv.gz"


@case
def audit_negative_bootstrap(tmp, base):
    return audit_cmd(base.scored, tmp / "o") + ["--bootstrap", "-1"], tmp / "o", "--bootstrap"


@case
def audit_negative_min_group_size(tmp, base):
    return audit_cmd(base.scored, tmp / "o", "--min-group-size", "-5"), tmp / "o", "--min-group-size"


@case
def audit_one_group_attribute(tmp, base):
    path = scored_table(tmp, base, lambda df: df.assign(sex="Male"))
    return audit_cmd(path, tmp / "o"), tmp / "o", "'sex'"


@case
def audit_identifier_attribute(tmp, base):
    path = scored_table(tmp, base, lambda df: df.assign(mrn=[f"id{i}" for i in range(len(df))]))
    return audit_cmd(path, tmp / "o") + ["--attributes", "mrn"], tmp / "o", "identifier"


@case
def audit_compare_other_patients(tmp, base):
    other = tmp / "other.csv"
    simulate_scored(120, labels=["edema"], seed=9, fractions=(0.0, 0.5, 0.5)).assign(
        image_id=lambda d: "x" + d["image_id"].astype(str)).to_csv(other, index=False)
    return audit_cmd(base.scored, tmp / "o", "--compare", str(other)), tmp / "o", "other.csv"


@case
def audit_scores_as_text(tmp, base):
    path = scored_table(tmp, base, lambda df: df.assign(p_edema=df["p_edema"].astype(str)), "s.parquet")
    return audit_cmd(path, tmp / "o"), tmp / "o", "p_edema"


@case
def audit_score_out_of_range(tmp, base):
    path = scored_table(tmp, base, lambda df: df.assign(p_edema=df["p_edema"] + 1))
    return audit_cmd(path, tmp / "o"), tmp / "o", "p_edema"


@case
def audit_bad_split_value(tmp, base):
    path = scored_table(tmp, base, lambda df: df.assign(split=df["split"].replace("val", "holdout")))
    return audit_cmd(path, tmp / "o"), tmp / "o", "split"


@case
def audit_threshold_out_of_range(tmp, base):
    return audit_cmd(base.scored, tmp / "o", "--threshold", "2"), tmp / "o", "--threshold"


@case
def audit_threshold_file_garbage(tmp, base):
    (tmp / "t.csv").write_bytes(b"\x00\x01\x02binary\xff\xfe")
    return audit_cmd(base.scored, tmp / "o", "--threshold", str(tmp / "t.csv")), tmp / "o", "t.csv"


@case
def audit_threshold_file_text_value(tmp, base):
    (tmp / "t.csv").write_text("label,threshold\nedema,high\n")
    return audit_cmd(base.scored, tmp / "o", "--threshold", str(tmp / "t.csv")), tmp / "o", "'high'"


@case
def audit_compare_truncated_parquet(tmp, base):
    path = scored_table(tmp, base, None, "b.parquet")
    truncate(path, 0.7)
    return audit_cmd(base.scored, tmp / "o", "--compare", str(path)), tmp / "o", "b.parquet"


@case
def audit_unknown_label(tmp, base):
    return audit_cmd(base.scored, tmp / "o", "--labels", "nosuch"), tmp / "o", "y_nosuch"


@case
def audit_out_is_a_file(tmp, base):
    return audit_cmd(base.scored, a_file(tmp)), a_file(tmp), "a_file"


@case
def audit_out_below_a_file(tmp, base):
    return audit_cmd(base.scored, a_file(tmp) / "o"), a_file(tmp) / "o", "a_file"


# ---- degrade xray -------------------------------------------------------------------------------

@case
def xray_zero_byte_jpg(tmp, base):
    path = xray_cohort_with(tmp, base, lambda p: p.write_bytes(b""))
    return XRAY + ["--cohort", str(path), "--out", str(tmp / "o")], tmp / "o", "bad.jpg"


@case
def xray_corrupt_jpg(tmp, base):
    path = xray_cohort_with(tmp, base, lambda p: p.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64))
    return XRAY + ["--cohort", str(path), "--out", str(tmp / "o")], tmp / "o", "bad.jpg"


@case
def xray_truncated_png(tmp, base):
    def writer(p):
        Image.fromarray(np.full((32, 32), 9, np.uint8)).save(p, format="PNG")
        truncate(p, 0.6)
    path = xray_cohort_with(tmp, base, writer)
    return XRAY + ["--cohort", str(path), "--out", str(tmp / "o")], tmp / "o", "bad.jpg"


@case
def xray_cohort_of_volumes(tmp, base):
    return XRAY + ["--cohort", str(base.cohort_mri), "--out", str(tmp / "o")], tmp / "o", "nii.gz"


@case
def xray_duplicate_image_id(tmp, base):
    path = cohort_table(tmp, base, lambda df: pd.concat([df, df.head(1)], ignore_index=True))
    return XRAY + ["--cohort", str(path), "--out", str(tmp / "o")], tmp / "o", "image_id"


@case
def xray_negative_limit(tmp, base):
    return XRAY + ["--cohort", str(base.cohort_x), "--out", str(tmp / "o"), "--limit", "-3"], tmp / "o", "--limit"


@case
def xray_photons_nan(tmp, base):
    return ["degrade", "xray", "--cohort", str(base.cohort_x), "--out", str(tmp / "o"), "--photons", "nan"], tmp / "o", "--photons"


@case
def xray_unknown_mode(tmp, base):
    return XRAY + ["--cohort", str(base.cohort_x), "--out", str(tmp / "o"), "--mode", "fancy"], tmp / "o", "fancy"


@case
def xray_missing_image(tmp, base):
    path = cohort_table(tmp, base, lambda df: df.assign(path=df["path"] + ".gone"))
    return XRAY + ["--cohort", str(path), "--out", str(tmp / "o")], tmp / "o", ".gone"


@case
def xray_cohort_without_path_column(tmp, base):
    path = cohort_table(tmp, base, lambda df: df.drop(columns="path"))
    return XRAY + ["--cohort", str(path), "--out", str(tmp / "o")], tmp / "o", "path"


@case
def xray_out_is_a_file(tmp, base):
    return XRAY + ["--cohort", str(base.cohort_x), "--out", str(a_file(tmp))], a_file(tmp), "a_file"


@case
def xray_rerun_other_size(tmp, base):
    out = tmp / "o"
    first = runner.invoke(app, XRAY + ["--cohort", str(base.cohort_x), "--out", str(out)])
    assert first.exit_code == 0, first.output
    return ["degrade", "xray", "--photons", "10000", "--size", "32", "--batch", "2", "--cohort", str(base.cohort_x),
            "--out", str(out)], out, "made with --size 16"


# ---- degrade mri --------------------------------------------------------------------------------

@case
def mri_truncated_nii_gz(tmp, base):
    def writer(bad, good):
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return MRI + ["--cohort", str(mri_cohort_with(tmp, base, writer)), "--out", str(tmp / "o")], tmp / "o", "bad.nii.gz"


@case
def mri_garbage_nii_gz(tmp, base):
    path = mri_cohort_with(tmp, base, lambda bad, good: bad.write_bytes(b"not a volume"))
    return MRI + ["--cohort", str(path), "--out", str(tmp / "o")], tmp / "o", "bad.nii.gz"


@case
def mri_zero_rays(tmp, base):
    return MRI + ["--cohort", str(base.cohort_mri), "--out", str(tmp / "o"), "--mask", "paper", "--n-rays", "0"], tmp / "o", "--n-rays"


@case
def mri_acceleration_one(tmp, base):
    return ["degrade", "mri", "--cohort", str(base.cohort_mri), "--out", str(tmp / "o"), "--acceleration", "1"], tmp / "o", "--acceleration"


@case
def mri_cohort_of_images(tmp, base):
    return MRI + ["--cohort", str(base.cohort_x), "--out", str(tmp / "o")], tmp / "o", "NIfTI"


@case
def mri_rerun_other_acceleration(tmp, base):
    out = tmp / "o"
    first = runner.invoke(app, MRI + ["--cohort", str(base.cohort_mri), "--out", str(out), "--limit", "1"])
    assert first.exit_code == 0, first.output
    return ["degrade", "mri", "--acceleration", "8", "--cohort", str(base.cohort_mri), "--out", str(out), "--limit", "1"], out, "--acceleration 4"


# ---- demo ---------------------------------------------------------------------------------------

@case
def demo_negative_bootstrap(tmp, base):
    return ["demo", "--out", str(tmp / "o"), "--bootstrap", "-1"], tmp / "o", "--bootstrap"


@case
def demo_too_few_patients(tmp, base):
    return ["demo", "--quick", "--out", str(tmp / "o"), "--patients", "3"], tmp / "o", "--patients"


@case
def demo_out_is_a_file(tmp, base):
    return ["demo", "--out", str(a_file(tmp))], a_file(tmp), "a_file"


def _snapshot(path: Path):
    if not path.exists():
        return None
    if path.is_file():
        return ("file", path.read_bytes())
    return sorted((str(p.relative_to(path)), p.stat().st_size if p.is_file() else -1) for p in path.rglob("*"))


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_input_is_one_line_exit_2_and_no_partial_output(name, base, tmp_path):
    argv, out, expected = CASES[name](tmp_path, base)
    before = _snapshot(out)
    result = runner.invoke(app, argv)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert _snapshot(out) == before, f"{out} changed"
    leftovers = [p.name for p in out.parent.glob(f".{out.name}.tmp-*")]
    assert not leftovers, leftovers
