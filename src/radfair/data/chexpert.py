"""CheXpert v1.0 loader (Irvin et al. 2019) with race from the CHEXPERT DEMO spreadsheet.

Layout read::

    <release>/CheXpert-v1.0/train.csv, valid.csv   Path, Sex, Age, Frontal/Lateral, AP/PA, 14 labels
    <release>/CheXpert-v1.0/train/patient00001/study1/view1_frontal.jpg
    <release>/CHEXPERT DEMO.xlsx (or .csv)          PATIENT, GENDER, AGE_AT_CXR, PRIMARY_RACE, ETHNICITY

The downsampled release ``CheXpert-v1.0-small/`` (``Path`` values start with
``CheXpert-v1.0-small/``) is read the same way. The DEMO file may sit inside the data folder, in
the release folder, or in any of the two folders above it. ``Path`` values are relative to the
release folder. Race is joined on the ``patientXXXXX`` part of ``Path``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import BAD_VALUES, RadfairInputError, preview
from ..readers import read_csv, read_table
from .discover import find_file, find_release
from .race import harmonise_race
from .schema import (
    LABELS,
    age_group,
    check_label_values,
    harmonise_sex,
    map_uncertain,
    parse_age,
    require_columns,
)

CSV_COLUMNS = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")
DEMO_COLUMNS = ("PATIENT", "PRIMARY_RACE", "ETHNICITY")
DEMO_NAMES = ("CHEXPERT DEMO.xlsx", "CHEXPERT DEMO.csv")
#: Data folders of the full and the downsampled release, in order of preference.
DATA_FOLDERS = ("CheXpert-v1.0", "CheXpert-v1.0-small")
VIEW_MAP = {"frontal": "frontal", "lateral": "lateral"}


def read_demo(path: Path) -> pd.DataFrame:
    """The CHEXPERT DEMO spreadsheet (.xlsx or .csv) with columns PATIENT, PRIMARY_RACE, ETHNICITY."""
    demo = read_table(path, "the CHEXPERT DEMO spreadsheet")
    require_columns(demo, DEMO_COLUMNS, path)
    demo = demo.drop_duplicates("PATIENT")
    return pd.DataFrame({"patient": demo["PATIENT"].astype(str), "race": harmonise_race(demo["PRIMARY_RACE"], demo["ETHNICITY"])})


def read_label_csv(path: Path, uncertain: str) -> pd.DataFrame:
    """One CheXpert CSV (train.csv or valid.csv) mapped to canonical columns."""
    raw = read_csv(path, "a CheXpert label CSV")
    require_columns(raw, CSV_COLUMNS + tuple(LABELS.values()), path)
    check_label_values(raw, LABELS.values(), path)
    age = parse_age(raw["Age"], path, "Age")
    views = raw["Frontal/Lateral"].astype(str).str.strip().str.lower()
    bad_views = raw["Frontal/Lateral"][~views.isin(VIEW_MAP)]
    if len(bad_views):
        raise RadfairInputError(
            BAD_VALUES.format(path=path, column="Frontal/Lateral", values=preview(bad_views), expected="expected Frontal or Lateral")
        )
    parts = raw["Path"].astype(str).str.split("/")
    patient = parts.str[-3]
    study = parts.str[-2]
    out = pd.DataFrame(
        {
            "image_id": "chexpert:" + raw["Path"].astype(str),
            "patient_id": "chexpert:" + patient,
            "study_id": "chexpert:" + patient + "/" + study,
            "dataset": "chexpert",
            "rel_path": raw["Path"].astype(str),
            "view": views.map(VIEW_MAP),
            "view_position": raw["AP/PA"].astype(object).where(raw["AP/PA"].notna(), None),
            "sex": harmonise_sex(raw["Sex"], path, "Sex"),
            "age": age.astype(float),
            "source_file": path.name,
            "_patient": patient,
        }
    )
    for name, column in LABELS.items():
        out[f"y_{name}"] = map_uncertain(raw[column], uncertain)
    return out


def load_chexpert(root: str | Path, uncertain: str = "zeros", demo: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """Load CheXpert train+valid into the canonical cohort table.

    Returns the table and a provenance dict (release folder, files used). ``path`` is absolute.
    """
    release = find_release(root, "chexpert")
    data = next(release / name for name in DATA_FOLDERS if (release / name / "train.csv").is_file())
    csvs = [data / name for name in ("train.csv", "valid.csv")]
    frames = [read_label_csv(p, uncertain) for p in csvs if p.is_file()]
    df = pd.concat(frames, ignore_index=True)
    where = (data, release, release.parent, release.parent.parent)
    demo_path = Path(demo) if demo else find_file(where, DEMO_NAMES, "CheXpert race needs the CHEXPERT DEMO spreadsheet")
    races = read_demo(demo_path)
    df = df.merge(races, how="left", left_on="_patient", right_on="patient").drop(columns=["_patient", "patient"])
    df["race"] = df["race"].astype(object).where(df["race"].notna(), None)
    df["age_group"] = age_group(df["age"])
    df["insurance"] = None
    df["path"] = [str(release / p) for p in df.pop("rel_path")]
    provenance = {"release": str(release), "files": [str(p) for p in csvs if p.is_file()] + [str(demo_path)]}
    return df, provenance
