import shutil

import numpy as np
import pandas as pd
import pytest

from radfair.data.cohort import build_cohort, save_cohort
from radfair.data.discover import find_release
from radfair.data.mimic import load_mimic
from radfair.data.race import harmonise_one
from radfair.data.schema import LABEL_COLUMNS
from radfair.errors import RadfairInputError, RadfairWarning


@pytest.fixture
def copy_root(synth_root, tmp_path):
    """A private copy of the CSV/metadata files (images are not needed by the loaders)."""
    root, _ = synth_root
    dest = tmp_path / "r"
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns("*.jpg", "*.tfrecord", "*.nii.gz"))
    return dest


@pytest.mark.parametrize(
    "race, ethnicity, expected",
    [
        ("White", "Non-Hispanic/Non-Latino", "White"),
        ("White, non-Hispanic", None, "White"),
        ("White, Hispanic", None, "Hispanic"),
        ("Other", "Hispanic/Latino", "Hispanic"),
        ("Black or African American", None, "Black"),
        ("BLACK/CAPE VERDEAN", None, "Black"),
        ("ASIAN - CHINESE", None, "Asian"),
        ("HISPANIC/LATINO - PUERTO RICAN", None, "Hispanic"),
        ("AMERICAN INDIAN/ALASKA NATIVE", None, "Native"),
        ("Native Hawaiian or Other Pacific Islander", None, "Native"),
        ("MULTIPLE RACE/ETHNICITY", None, "Other"),
        ("OTHER", None, "Other"),
        ("UNKNOWN", None, None),
        ("UNABLE TO OBTAIN", None, None),
        ("PATIENT DECLINED TO ANSWER", None, None),
        ("Patient Refused", "Patient Refused", None),
        (None, None, None),
    ],
)
def test_race_mapping_table(race, ethnicity, expected):
    assert harmonise_one(race, ethnicity) == expected


@pytest.mark.parametrize(
    "race, ethnicity, expected",
    [
        ("White", "Hispanic/Latino", "White"),  # ethnicity is not a group in Table 5
        ("White, Hispanic", None, "White"),
        ("Other, Hispanic", "Hispanic/Latino", "Other"),
        ("Asian - Historical Conv", None, "Asian"),
        ("American Indian or Alaska Native", None, "AI/AN"),
        ("Native American, non-Hispanic", None, "AI/AN"),
        ("Native Hawaiian or Other Pacific Islander", None, "NH/PI"),
        ("Pacific Islander, non-Hispanic", None, "NH/PI"),
        ("HISPANIC/LATINO - PUERTO RICAN", None, "Other"),
        ("Race and Ethnicity Unknown", None, None),
        ("Patient Refused", "Patient Refused", None),
    ],
)
def test_table5_scheme_keeps_ai_an_and_nh_pi_apart_and_ignores_ethnicity(race, ethnicity, expected):
    assert harmonise_one(race, ethnicity, scheme="table5") == expected


def test_race_schemes_merge_their_indigenous_groups_into_other_and_refuse_unknown_names():
    from radfair.data.race import RACE_SCHEMES, harmonise_race, merged_race

    values = pd.Series(["AI/AN", "NH/PI", "Asian", None, "Other"])
    assert merged_race(values, "table5").tolist() == ["Other", "Other", "Asian", None, "Other"]
    assert merged_race(pd.Series(["Native", "Hispanic"]), "six-groups").tolist() == ["Other", "Hispanic"]
    assert RACE_SCHEMES["table5"].groups == ("AI/AN", "Asian", "Black", "NH/PI", "Other", "White")  # the paper's columns
    with pytest.raises(RadfairInputError, match="race_scheme.*table5"):
        harmonise_race(values, scheme="table6")


def test_a_cohort_built_under_the_table5_scheme_records_it_and_splits(synth_root, tmp_path):
    from radfair.data.splits import split_cohort_file

    root, _ = synth_root
    cohort, meta = build_cohort("chexpert", root, race_scheme="table5")
    assert meta["race_scheme"] == "table5" and set(cohort["race"].dropna()) <= {"AI/AN", "Asian", "Black", "NH/PI", "Other", "White"}
    assert "Hispanic" not in set(cohort["race"].dropna())
    six, _ = build_cohort("chexpert", root)
    assert (cohort["race"].isna() == six["race"].isna()).all()  # the same unknowns under both schemes
    save_cohort(cohort, meta, tmp_path / "c.parquet")
    split = split_cohort_file(tmp_path / "c.parquet", tmp_path / "s.parquet")  # validated against its recorded scheme
    assert len(split) == len(cohort)
    with pytest.raises(RadfairInputError, match="--race-scheme"):
        build_cohort("chexpert", root, race_scheme="nine")


def test_chexpert_cohort_schema_and_join(synth_root):
    root, _ = synth_root
    cohort, meta = build_cohort("chexpert", root)
    assert set(LABEL_COLUMNS) <= set(cohort.columns)
    assert cohort["view"].eq("frontal").all()
    assert cohort["patient_id"].str.startswith("chexpert:patient").all()
    assert cohort["race"].notna().mean() > 0.9
    assert set(cohort["age_group"].dropna()) <= {"0-20", "20-40", "40-60", "60-80", "80+"}
    for col in LABEL_COLUMNS:
        assert set(cohort[col].dropna().unique()) <= {0.0, 1.0}
    assert meta["uncertain_policy"] == "zeros"
    all_views, _ = build_cohort("chexpert", root, views="all")
    assert (all_views["view"] == "lateral").any() and len(all_views) > len(cohort)


def test_root_may_be_the_release_or_above(synth_root):
    root, _ = synth_root
    assert find_release(root, "chexpert") == root / "chexpert"
    assert find_release(root / "chexpert", "chexpert") == root / "chexpert"
    assert find_release(root.parent, "mimic-iv") == root / "mimiciv" / "2.2"


def test_uncertain_policies(synth_root):
    root, _ = synth_root
    zeros, _ = build_cohort("chexpert", root, uncertain="zeros")
    ones, _ = build_cohort("chexpert", root, uncertain="ones")
    ignore, _ = build_cohort("chexpert", root, uncertain="ignore")
    raw = pd.read_csv(root / "chexpert/CheXpert-v1.0/train.csv")
    n_uncertain = (raw["Edema"] == -1).sum()
    assert n_uncertain > 0
    assert ones["y_edema"].sum() - zeros["y_edema"].sum() == ignore["y_edema"].isna().sum() > 0


def test_union_keeps_both_datasets_apart(synth_root):
    root, _ = synth_root
    union, _ = build_cohort("all", root)
    chex, _ = build_cohort("chexpert", root)
    mimic, _ = build_cohort("mimic", root)
    assert len(union) == len(chex) + len(mimic)
    assert union["image_id"].is_unique
    assert union.loc[union.dataset == "chexpert", "insurance"].isna().all()


def test_ucsf_pdgm_ids_labels_and_paths(synth_root):
    root, _ = synth_root
    cohort, _ = build_cohort("ucsf-pdgm", root)
    assert cohort["image_id"].str.fullmatch(r"ucsf-pdgm:UCSF-PDGM-\d{4}").all()
    assert (cohort["y_high_grade"] == (cohort["who_grade"] == 4)).all()
    assert all(p.endswith("_FLAIR.nii.gz") for p in cohort["path"])
    assert all(p.endswith("_tumor_segmentation.nii.gz") for p in cohort["mask_path"])


def _write_mimic(tmp_path, admissions):
    cxr = tmp_path / "mimic-cxr-jpg"
    hosp = tmp_path / "mimiciv" / "hosp"
    cxr.mkdir(parents=True)
    hosp.mkdir(parents=True)
    pd.DataFrame(
        {"dicom_id": ["d1", "d2"], "subject_id": [10000001, 10000001], "study_id": [50000001, 50000002],
         "ViewPosition": ["PA", "AP"], "StudyDate": [21500110, 21560110]}
    ).to_csv(cxr / "mimic-cxr-2.0.0-metadata.csv.gz", index=False)
    labels = pd.DataFrame({"subject_id": [10000001, 10000001], "study_id": [50000001, 50000002]})
    for name in ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture",
                 "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
                 "Pneumothorax", "Support Devices"):
        labels[name] = [1.0, np.nan]
    labels.to_csv(cxr / "mimic-cxr-2.0.0-chexpert.csv.gz", index=False)
    pd.DataFrame({"subject_id": [10000001], "gender": ["F"], "anchor_age": [60], "anchor_year": [2150]}).to_csv(
        hosp / "patients.csv.gz", index=False)
    pd.DataFrame(admissions).to_csv(hosp / "admissions.csv.gz", index=False)
    return tmp_path


def test_mimic_rules_race_mode_insurance_nearest_admission_age(tmp_path):
    root = _write_mimic(tmp_path, {
        "subject_id": [10000001] * 4,
        "hadm_id": [1, 2, 3, 4],
        "admittime": ["2150-01-01 00:00:00", "2151-01-01 00:00:00", "2155-12-01 00:00:00", "2156-06-01 00:00:00"],
        "insurance": ["Medicaid", "Medicaid", "Medicare", "Private"],
        "race": ["BLACK/AFRICAN AMERICAN", "UNKNOWN", "BLACK/CAPE VERDEAN", "WHITE"],
    })
    df, _ = load_mimic(root)
    df = df.set_index("image_id")
    assert (df["race"] == "Black").all()  # 2 Black vs 1 White; UNKNOWN ignored
    assert df.loc["mimic:d1", "insurance"] == "Medicaid"  # nearest admission: 2150-01-01
    assert df.loc["mimic:d2", "insurance"] == "Medicare"  # 2155-12-01 is nearer to 2156-01-10 than 2156-06-01
    assert df.loc["mimic:d1", "age"] == 60 and df.loc["mimic:d2", "age"] == 66
    assert df.loc["mimic:d2", "view"] == "frontal"


def test_mimic_race_tie_goes_to_most_recent(tmp_path):
    root = _write_mimic(tmp_path, {
        "subject_id": [10000001] * 2,
        "hadm_id": [1, 2],
        "admittime": ["2150-01-01 00:00:00", "2152-01-01 00:00:00"],
        "insurance": ["Other", "Other"],
        "race": ["ASIAN", "WHITE"],
    })
    df, _ = load_mimic(root)
    assert (df["race"] == "White").all()
    assert (df["insurance"] == "Other").all()


# ---- malformed input: one-line errors naming file/column/value -------------------------------------------

def _edit_csv(path, func):
    df = pd.read_csv(path)
    edited = func(df)
    (df if edited is None else edited).to_csv(path, index=False)


def test_missing_column_is_named(copy_root):
    _edit_csv(copy_root / "chexpert/CheXpert-v1.0/train.csv", lambda d: d.drop(columns=["Edema"]))
    with pytest.raises(RadfairInputError, match=r"train\.csv: missing column\(s\) \['Edema'\]"):
        build_cohort("chexpert", copy_root)


def test_bad_label_value_is_named(copy_root):
    _edit_csv(copy_root / "chexpert/CheXpert-v1.0/train.csv", lambda d: d.__setitem__("Edema", d["Edema"].where(d.index != 3, 2.0)))
    with pytest.raises(RadfairInputError, match=r"column 'Edema' has value\(s\) \[2\.0\]"):
        build_cohort("chexpert", copy_root)


def test_bad_age_dtype_is_named(copy_root):
    _edit_csv(copy_root / "chexpert/CheXpert-v1.0/train.csv", lambda d: d.__setitem__("Age", d["Age"].astype(object).where(d.index != 0, "old")))
    with pytest.raises(RadfairInputError, match=r"column 'Age' has non-numeric value\(s\) \['old'\]"):
        build_cohort("chexpert", copy_root)


def test_unknown_view_is_named(copy_root):
    path = copy_root / "mimic-cxr-jpg/2.0.0/mimic-cxr-2.0.0-metadata.csv.gz"
    _edit_csv(path, lambda d: d.__setitem__("ViewPosition", d["ViewPosition"].where(d.index != 0, "SIDEWAYS")))
    with pytest.raises(RadfairInputError, match=r"ViewPosition' has value\(s\) \['SIDEWAYS'\]"):
        build_cohort("mimic", copy_root)


def test_duplicate_image_id(copy_root):
    path = copy_root / "chexpert/CheXpert-v1.0/train.csv"
    df = pd.read_csv(path)
    pd.concat([df, df.iloc[[0]]]).to_csv(path, index=False)
    with pytest.raises(RadfairInputError, match="duplicate image_id"):
        build_cohort("chexpert", copy_root)


def test_missing_release_and_missing_demo(copy_root):
    with pytest.raises(RadfairInputError, match="no ucsf-pdgm release found"):
        build_cohort("ucsf-pdgm", copy_root / "chexpert")
    (copy_root / "chexpert/CHEXPERT DEMO.xlsx").unlink()
    with pytest.warns(RadfairWarning, match=r"CHEXPERT DEMO.xlsx: not found .*race is missing for all \d+ images"):
        cohort, meta = build_cohort("chexpert", copy_root)
    assert cohort["race"].isna().all() and "race_share" not in meta["summary"] and meta["summary"]["race_missing"] == 1.0


def test_empty_after_frontal_filter(copy_root):
    _edit_csv(copy_root / "chexpert/CheXpert-v1.0/train.csv", lambda d: d.__setitem__("Frontal/Lateral", "Lateral"))
    _edit_csv(copy_root / "chexpert/CheXpert-v1.0/valid.csv", lambda d: d.__setitem__("Frontal/Lateral", "Lateral"))
    with pytest.raises(RadfairInputError, match="no rows left after keeping frontal views"):
        build_cohort("chexpert", copy_root)


def test_bad_option_values():
    with pytest.raises(RadfairInputError, match="--uncertain"):
        build_cohort("chexpert", ".", uncertain="maybe")
    with pytest.raises(RadfairInputError, match="--source"):
        build_cohort("padchest", ".")
