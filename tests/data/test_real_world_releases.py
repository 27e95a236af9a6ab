"""Real release layouts (cases D01 and D04 of the real-world case set), written small by the tests themselves."""

import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from radfair.cli import app
from radfair.data.cohort import build_cohort
from radfair.data.schema import LABELS
from radfair.data.ucsf_pdgm import load_ucsf_pdgm
from radfair.errors import RadfairInputError, RadfairWarning

from .test_loaders import _write_mimic

runner = CliRunner()

ADMISSIONS = {"subject_id": [10000001], "hadm_id": [1], "admittime": ["2150-01-01 00:00:00"], "insurance": ["Medicaid"],
              "ethnicity": ["BLACK/AFRICAN AMERICAN"]}


@pytest.mark.parametrize("layout", ["core", "beside_cxr", "root_mimic_iv"])
def test_D01_mimic_iv_v1_core(tmp_path, layout):
    root = _write_mimic(tmp_path / "r", ADMISSIONS)
    hosp = root / "mimiciv" / "hosp"
    if layout in ("core", "root_mimic_iv"):  # MIMIC-IV 1.0: mimiciv/1.0/core/
        target = root / "mimiciv" / "1.0" / "core"
        target.parent.mkdir(parents=True)
    else:  # CXR_Fairness instructions: the two tables copied beside the MIMIC-CXR-JPG tables
        target = root / "mimic-cxr-jpg"
    target.mkdir(exist_ok=True)
    for name in ("patients.csv.gz", "admissions.csv.gz"):
        shutil.move(hosp / name, target / name)
    shutil.rmtree(root / "mimiciv" / "hosp")
    if layout == "root_mimic_iv":
        cohort, meta = build_cohort("mimic", root / "mimic-cxr-jpg", root_mimic_iv=root / "mimiciv" / "1.0")
    else:
        cohort, meta = build_cohort("mimic", root)
    assert meta["provenance"]["mimic"]["mimic_iv_tables"] == str(target)
    assert (cohort["race"] == "Black").all() and (cohort["sex"] == "Female").all()
    assert (cohort["insurance"] == "Medicaid").all()


def _ucsf_release(folder, ids, versions=("v5",)):
    rows = []
    rng = np.random.default_rng(0)
    for raw in ids:
        exam = raw if "_FU" in raw else f"UCSF-PDGM-{int(raw.rsplit('-', 1)[1]):04d}"
        case = folder / "UCSF-PDGM-v5" / f"{exam}_nifti"
        case.mkdir(parents=True)
        nib.save(nib.Nifti1Image(rng.random((4, 4, 2)).astype(np.float32), np.eye(4)), case / f"{exam}_FLAIR.nii.gz")
        rows.append({"ID": raw, "Sex": "M", "Age at MRI": 58, "WHO CNS Grade": 4,
                     "Final pathologic diagnosis (WHO 2021)": "Glioblastoma, IDH-wildtype"})
    for version in versions:
        pd.DataFrame(rows).to_csv(folder / f"UCSF-PDGM-metadata_{version}.csv", index=False)
    return folder


def test_D04_ucsf_pdgm_followup_ids(tmp_path):
    ids = ["UCSF-PDGM-004", "UCSF-PDGM-433", "UCSF-PDGM-0433_FU007d", "UCSF-PDGM-0500_FU010d", "UCSF-PDGM-0500_FU003d"]
    root = _ucsf_release(tmp_path / "rel", ids, versions=("v2", "v5"))
    with pytest.warns(RadfairWarning) as caught:
        cohort, meta = build_cohort("ucsf-pdgm", tmp_path)
    messages = [str(w.message) for w in caught]
    assert any("read the newest, UCSF-PDGM-metadata_v5.csv (ignored UCSF-PDGM-metadata_v2.csv)" in m for m in messages)
    assert any("2 follow-up exam(s)" in m and "dropped" in m for m in messages)
    assert meta["provenance"]["ucsf-pdgm"]["files"] == [str(root / "UCSF-PDGM-metadata_v5.csv")]
    # baseline kept for 0433; 0500 has follow-ups only: the earliest (FU003d) is kept, under its patient
    assert sorted(cohort["image_id"]) == ["ucsf-pdgm:UCSF-PDGM-0004", "ucsf-pdgm:UCSF-PDGM-0433", "ucsf-pdgm:UCSF-PDGM-0500_FU003d"]
    assert cohort["patient_id"].is_unique and "ucsf-pdgm:UCSF-PDGM-0500" in set(cohort["patient_id"])
    with pytest.warns(RadfairWarning, match="several UCSF-PDGM metadata versions"):
        kept, _ = load_ucsf_pdgm(root, followups="keep")
    assert len(kept) == 5 and kept["patient_id"].nunique() == 3  # a follow-up belongs to its patient (never two splits)
    assert (kept.loc[kept["image_id"] == "ucsf-pdgm:UCSF-PDGM-0433_FU007d", "patient_id"] == "ucsf-pdgm:UCSF-PDGM-0433").all()


def test_ucsf_pdgm_bad_id_names_the_expected_forms(tmp_path):
    _ucsf_release(tmp_path / "rel", ["UCSF-PDGM-004"])
    meta = tmp_path / "rel" / "UCSF-PDGM-metadata_v5.csv"
    pd.read_csv(meta).assign(ID="UCSF-PDGM-004-followup").to_csv(meta, index=False)
    with pytest.raises(RadfairInputError, match=r"column 'ID' has value\(s\) \['UCSF-PDGM-004-followup'\].*_FU<days>d"):
        build_cohort("ucsf-pdgm", tmp_path)


# ---- CheXpert without its race sheet, and with flattened Path values --------------------------------------

def _chexpert(folder, paths):
    """A tiny CheXpert-v1.0-small train.csv (no DEMO sheet) with the given Path values."""
    data = folder / "CheXpert-v1.0-small"
    data.mkdir(parents=True)
    table = pd.DataFrame({"Path": paths, "Sex": ["Male", "Female"] * (len(paths) // 2), "Age": 50,
                          "Frontal/Lateral": "Frontal", "AP/PA": "PA"})
    for name in LABELS.values():
        table[name] = [1.0, 0.0] * (len(paths) // 2)
    table.to_csv(data / "train.csv", index=False)
    return folder


def test_chexpert_without_demo_sheet_builds_with_race_missing_and_audit_by_race_is_refused(tmp_path):
    paths = [f"CheXpert-v1.0-small/train/patient{i:05d}/study1/view1_frontal.jpg" for i in range(1, 21)]
    root = _chexpert(tmp_path / "rel", paths)
    r = runner.invoke(app, ["cohort", "--source", "chexpert", "--root", str(root), "--out", str(tmp_path / "c.parquet")])
    assert r.exit_code == 0, r.output
    assert r.output.count("CHEXPERT DEMO.xlsx: not found") == 1 and "race is missing for all 20 images" in r.output
    assert str(root / "CHEXPERT DEMO.xlsx") in r.output  # says where the sheet would go
    assert "race: missing on every image" in r.output
    cohort = pd.read_parquet(tmp_path / "c.parquet")
    assert cohort["race"].isna().all() and cohort["sex"].notna().all()
    scored = cohort.assign(split=["val", "val", "test", "test"] * 5, p_edema=np.linspace(0.05, 0.95, 20))
    scored.to_parquet(tmp_path / "scored.parquet")
    r = runner.invoke(app, ["audit", str(tmp_path / "scored.parquet"), "--out", str(tmp_path / "a"), "--attributes", "race",
                            "--labels", "edema", "--bootstrap", "0"])
    assert r.exit_code == 2 and "column 'race' has no values (missing in all 20 rows)" in r.output
    assert "CHEXPERT DEMO.xlsx" in r.output
    r = runner.invoke(app, ["audit", str(tmp_path / "scored.parquet"), "--out", str(tmp_path / "a"), "--attributes", "sex",
                            "--labels", "edema", "--bootstrap", "0"])
    assert r.exit_code == 0, r.output


def test_chexpert_flattened_paths_are_an_error_not_one_patient(tmp_path):
    paths = [f"CheXpert-v1.0-small/train/patient{64541 + i}_study1_view1_frontal.jpg" for i in range(4)]
    root = _chexpert(tmp_path / "rel", paths)
    with pytest.raises(RadfairInputError, match=r"train.csv: column 'Path' line 2 has "
                                                r"'CheXpert-v1.0-small/train/patient64541_study1_view1_frontal.jpg' "
                                                r"\(4 such row\(s\)\); expected .*/patientNNNNN/studyN/viewN_"):
        build_cohort("chexpert", root)


def test_cohort_summary_shows_the_missing_share(tmp_path):
    paths = [f"CheXpert-v1.0-small/train/patient{i:05d}/study1/view1_frontal.jpg" for i in range(1, 2001)]
    root = _chexpert(tmp_path / "rel", paths)
    pd.DataFrame({"PATIENT": ["patient00001", "patient00002", "patient00003"], "PRIMARY_RACE": ["Black", "Black", "White"],
                  "ETHNICITY": ["Non-Hispanic"] * 3}).to_csv(root / "CHEXPERT DEMO.csv", index=False)
    r = runner.invoke(app, ["cohort", "--source", "chexpert", "--root", str(root), "--out", str(tmp_path / "c.parquet")])
    assert r.exit_code == 0, r.output
    assert "race: Black 66.7%, White 33.3% of the 0.1% with a value; missing 99.9%" in r.output
