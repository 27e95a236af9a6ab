"""MIMIC-CXR-JPG 2.0.0 + MIMIC-IV (hosp/ in 2.x, core/ in 1.0) loader.

Layout read::

    <cxr>/mimic-cxr-2.0.0-metadata.csv.gz  dicom_id, subject_id, study_id, ViewPosition, StudyDate, ...
    <cxr>/mimic-cxr-2.0.0-chexpert.csv.gz  subject_id, study_id, 14 labels
    <cxr>/mimic-cxr-2.0.0-split.csv.gz     dicom_id, study_id, subject_id, split   (kept as official_split)
    <cxr>/files/p10/p10000032/s50414267/<dicom_id>.jpg
    <iv>/hosp/patients.csv.gz              subject_id, gender, anchor_age, anchor_year, ...
    <iv>/hosp/admissions.csv.gz            subject_id, hadm_id, admittime, insurance, race (or ethnicity)

MIMIC-IV 1.0 keeps the two tables in ``<iv>/core/`` (race column ``ethnicity``); a folder holding
``patients.csv.gz`` and ``admissions.csv.gz`` directly (e.g. copied beside the MIMIC-CXR-JPG tables,
as the CXR_Fairness instructions do) is read as well. ``hosp/`` is preferred over ``core/`` over
the folder itself when more than one exists.

Rules for values that vary across a patient's admissions (documented, tested):

* **race** is a property of the patient: the most frequent known harmonised value over all their
  admissions; ties go to the value of the most recent admission among the tied values.
* **insurance** is a property of the study: the admission whose ``admittime`` is nearest in time to
  the study's ``StudyDate`` (MIMIC-CXR and MIMIC-IV share each patient's date shift). Values are
  mapped to Medicare, Medicaid or Other (Private, No charge, other payers); blank -> missing.
* **age** at the study: ``anchor_age + (study year - anchor_year)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BAD_VALUES, RadfairInputError, preview
from ..readers import decoding, read_csv
from .discover import find_release
from .race import harmonise_race
from .registry import Dataset, LoadRequest, register
from .schema import (
    LABELS,
    age_group,
    check_label_values,
    harmonise_sex,
    map_uncertain,
    parse_age,
    require_columns,
)

METADATA = "mimic-cxr-2.0.0-metadata.csv.gz"
CHEXPERT = "mimic-cxr-2.0.0-chexpert.csv.gz"
SPLIT = "mimic-cxr-2.0.0-split.csv.gz"
#: Where MIMIC-IV keeps patients/admissions: hosp/ (2.x), core/ (1.0), else the folder itself.
IV_FOLDERS = ("hosp", "core")

FRONTAL_POSITIONS = {"PA", "AP", "AP AXIAL", "PA LLD", "PA RLD", "AP LLD", "AP RLD"}
LATERAL_POSITIONS = {"LATERAL", "LL", "RL", "XTABLE LATERAL"}
OTHER_POSITIONS = {"LAO", "RAO", "LPO", "RPO", "SWIMMERS"}
INSURANCE_MAP = {"medicare": "Medicare", "medicaid": "Medicaid"}


def view_of(position: pd.Series, path: Path) -> pd.Series:
    """ViewPosition -> frontal/lateral/other/unknown; an unrecognised code is an input error."""
    pos = position.astype("string").str.strip().str.upper()
    known = FRONTAL_POSITIONS | LATERAL_POSITIONS | OTHER_POSITIONS
    bad = position[pos.notna() & (pos != "") & ~pos.isin(known)]
    if len(bad):
        raise RadfairInputError(
            BAD_VALUES.format(path=path, column="ViewPosition", values=preview(bad), expected=f"expected one of {sorted(known)}")
        )
    view = np.where(pos.isin(FRONTAL_POSITIONS), "frontal", np.where(pos.isin(LATERAL_POSITIONS), "lateral", "other"))
    return pd.Series(np.where(pos.isna() | (pos == ""), "unknown", view), index=position.index)


def harmonise_insurance(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    mapped = text.str.lower().map(INSURANCE_MAP).astype(object)
    other = text.notna() & (text != "") & mapped.isna()
    return mapped.where(~other, "Other")


def patient_race(adm: pd.DataFrame) -> pd.DataFrame:
    """Most frequent known race per patient; ties -> most recent admission among the tied values."""
    known = adm.dropna(subset=["race_group"])
    stats = known.groupby(["subject_id", "race_group"]).agg(n=("race_group", "size"), last=("admittime", "max")).reset_index()
    stats = stats.sort_values(["subject_id", "n", "last"], ascending=[True, False, False])
    return stats.drop_duplicates("subject_id")[["subject_id", "race_group"]].rename(columns={"race_group": "race"})


def study_insurance(studies: pd.DataFrame, adm: pd.DataFrame) -> pd.Series:
    """Insurance of the admission nearest in time to each study (merge_asof, direction='nearest')."""
    left = studies[["subject_id", "study_time"]].reset_index().sort_values("study_time")
    right = adm.dropna(subset=["insurance_group"])[["subject_id", "admittime", "insurance_group"]].sort_values("admittime")
    merged = pd.merge_asof(left, right, left_on="study_time", right_on="admittime", by="subject_id", direction="nearest")
    return merged.set_index("index")["insurance_group"].reindex(studies.index)


def load_mimic(root: str | Path, root_iv: str | Path | None = None, uncertain: str = "zeros",
               race_scheme: str = "six-groups") -> tuple[pd.DataFrame, dict]:
    """Load MIMIC-CXR-JPG joined with MIMIC-IV demographics into the canonical cohort table (race under
    ``race_scheme``, :data:`radfair.data.race.RACE_SCHEMES`)."""
    cxr = find_release(root, "mimic-cxr-jpg")
    iv = find_release(root_iv or root, "mimic-iv")
    meta_path, label_path, split_path = cxr / METADATA, cxr / CHEXPERT, cxr / SPLIT
    meta = read_csv(meta_path, "the MIMIC-CXR metadata CSV", dtype={"dicom_id": str})
    require_columns(meta, ("dicom_id", "subject_id", "study_id", "ViewPosition", "StudyDate"), meta_path)
    labels = read_csv(label_path, "the MIMIC-CXR CheXpert label CSV")
    require_columns(labels, ("subject_id", "study_id") + tuple(LABELS.values()), label_path)
    check_label_values(labels, LABELS.values(), label_path)
    tables = next((iv / sub for sub in IV_FOLDERS if (iv / sub / "patients.csv.gz").is_file()), iv)
    patients_path, adm_path = tables / "patients.csv.gz", tables / "admissions.csv.gz"
    patients = read_csv(patients_path, "the MIMIC-IV patients CSV")
    require_columns(patients, ("subject_id", "gender", "anchor_age", "anchor_year"), patients_path)
    patients["anchor_age"] = parse_age(patients["anchor_age"], patients_path, "anchor_age")
    patients["gender"] = harmonise_sex(patients["gender"], patients_path, "gender")
    adm = read_csv(adm_path, "the MIMIC-IV admissions CSV")
    race_column = "race" if "race" in adm.columns else "ethnicity"
    require_columns(adm, ("subject_id", "admittime", "insurance", race_column), adm_path)
    with decoding(adm_path, "admittime as a date-time"):
        adm["admittime"] = pd.to_datetime(adm["admittime"])
    adm["race_group"] = harmonise_race(adm[race_column], scheme=race_scheme)
    adm["insurance_group"] = harmonise_insurance(adm["insurance"])

    df = meta.merge(labels, on=["subject_id", "study_id"], how="left", validate="many_to_one", indicator="_labelled")
    with decoding(meta_path, "StudyDate as YYYYMMDD"):
        df["study_time"] = pd.to_datetime(df["StudyDate"].astype(str), format="%Y%m%d")
    df = df.merge(patients[["subject_id", "gender", "anchor_age", "anchor_year"]], on="subject_id", how="left")
    df = df.merge(patient_race(adm), on="subject_id", how="left")
    df["insurance"] = study_insurance(df, adm)
    if split_path.is_file():
        split = read_csv(split_path, "the MIMIC-CXR split CSV", dtype={"dicom_id": str})
        require_columns(split, ("dicom_id", "split"), split_path)
        split = split[["dicom_id", "split"]]
        df = df.merge(split.rename(columns={"split": "official_split"}), on="dicom_id", how="left")

    subj = df["subject_id"].astype(int).astype(str)
    study = df["study_id"].astype(int).astype(str)
    rel = "files/p" + subj.str[:2] + "/p" + subj + "/s" + study + "/" + df["dicom_id"] + ".jpg"
    out = pd.DataFrame(
        {
            "image_id": "mimic:" + df["dicom_id"],
            "patient_id": "mimic:" + subj,
            "study_id": "mimic:" + study,
            "dataset": "mimic",
            "path": [str(cxr / p) for p in rel],
            "view": view_of(df["ViewPosition"], meta_path),
            "view_position": df["ViewPosition"].astype(object).where(df["ViewPosition"].notna(), None),
            "sex": df["gender"].astype(object).where(df["gender"].notna(), None),
            "age": (df["anchor_age"] + df["study_time"].dt.year - df["anchor_year"]).astype(float),
            "race": df["race"].astype(object).where(df["race"].notna(), None),
            "insurance": df["insurance"].astype(object).where(df["insurance"].notna(), None),
        }
    )
    out["age_group"] = age_group(out["age"])
    if "official_split" in df.columns:
        out["official_split"] = df["official_split"].values
    for name, column in LABELS.items():
        out[f"y_{name}"] = map_uncertain(df[column], uncertain).values
    # a study without a label row has no labels at all: NaN, not "negative"
    unlabeled = (df["_labelled"] == "left_only").values
    out.loc[unlabeled, [f"y_{n}" for n in LABELS]] = np.nan
    provenance = {"release": str(cxr), "mimic_iv": str(iv), "mimic_iv_tables": str(tables), "files": [str(meta_path), str(label_path), str(patients_path), str(adm_path)]}
    return out, provenance


def _load(request: LoadRequest) -> tuple[pd.DataFrame, dict]:
    return load_mimic(request.root, request.extra_root, request.uncertain, request.race_scheme)


DATASET = register(Dataset(
    name="mimic",
    description="MIMIC-CXR-JPG 2.0.0 with MIMIC-IV demographics (--root-mimic-iv if not below --root)",
    load=_load,
    releases={
        "mimic-cxr-jpg": (METADATA,),
        # MIMIC-IV 2.x keeps patients/admissions in hosp/, 1.0 in core/; CXR_Fairness-style copies put the
        # two files in a folder of their own (often beside the MIMIC-CXR-JPG tables)
        "mimic-iv": ("hosp/patients.csv.gz", "core/patients.csv.gz", "patients.csv.gz"),
    },
    labels=dict(LABELS),
    attributes=("sex", "age_group", "race", "insurance"),
    synthetic="mimic-cxr-jpg",
))
