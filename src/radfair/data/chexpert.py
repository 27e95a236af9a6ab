"""CheXpert v1.0 loader (Irvin et al. 2019) with race from the CHEXPERT DEMO spreadsheet.

Layout read::

    <release>/CheXpert-v1.0/train.csv, valid.csv   Path, Sex, Age, Frontal/Lateral, AP/PA, 14 labels
    <release>/CheXpert-v1.0/train/patient00001/study1/view1_frontal.jpg
    <release>/CHEXPERT DEMO.xlsx (or .csv)          PATIENT, GENDER, AGE_AT_CXR, PRIMARY_RACE, ETHNICITY

The downsampled release ``CheXpert-v1.0-small/`` (``Path`` values start with
``CheXpert-v1.0-small/``) is read the same way. ``Path`` values are relative to the release folder
and must end in ``patientNNNNN/studyN/viewN_<view>.jpg`` (patient and study come from them); a row
that does not (third-party copies flatten it to ``patient64541_study1_view1_frontal.jpg``) is an
error naming the file, the line and the expected pattern, never a merged "patient".

The DEMO file (separately licensed) may sit inside the data folder, in the release folder, or in
any of the two folders above it; race is joined on the ``patientXXXXX`` part of ``Path``. Without
it the cohort is built with race missing on every row and one warning saying where the sheet
would go: audits by sex and age work, an audit by race is refused (its column has no values).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd

from ..errors import BAD_VALUES, RadfairInputError, RadfairWarning, preview
from ..readers import read_csv, read_table
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

CSV_COLUMNS = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")
DEMO_COLUMNS = ("PATIENT", "PRIMARY_RACE", "ETHNICITY")
DEMO_NAMES = ("CHEXPERT DEMO.xlsx", "CHEXPERT DEMO.csv")
#: Data folders of the full and the downsampled release, in order of preference.
DATA_FOLDERS = ("CheXpert-v1.0", "CheXpert-v1.0-small")
VIEW_MAP = {"frontal": "frontal", "lateral": "lateral"}
#: The end of every ``Path``: patient, study and view file (the patient id is read from it).
PATH_PATTERN = re.compile(r"(?:^|/)(patient\d+)/(study\d+)/(view\d+_[^/]+)$")
PATH_EXPECTED = ".../patientNNNNN/studyN/viewN_<frontal|lateral>.jpg"


def read_demo(path: Path, race_scheme: str = "six-groups") -> pd.DataFrame:
    """The CHEXPERT DEMO spreadsheet (.xlsx or .csv) with columns PATIENT, PRIMARY_RACE, ETHNICITY; race harmonised
    under ``race_scheme`` (:data:`radfair.data.race.RACE_SCHEMES`)."""
    demo = read_table(path, "the CHEXPERT DEMO spreadsheet")
    require_columns(demo, DEMO_COLUMNS, path)
    demo = demo.drop_duplicates("PATIENT")
    return pd.DataFrame({"patient": demo["PATIENT"].astype(str), "race": harmonise_race(demo["PRIMARY_RACE"], demo["ETHNICITY"], race_scheme)})


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
    parts = raw["Path"].astype(str).str.extract(PATH_PATTERN)
    bad = parts[0].isna()
    if bad.any():
        first = int(bad.to_numpy().argmax())
        raise RadfairInputError(
            f"{path}: column 'Path' line {first + 2} has {raw['Path'].iloc[first]!r} ({int(bad.sum())} such row(s)); "
            f"expected {PATH_EXPECTED} (the patient id is read from it)"
        )
    patient = parts[0]
    study = parts[1]
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


def load_chexpert(root: str | Path, uncertain: str = "zeros", demo: str | Path | None = None,
                  race_scheme: str = "six-groups") -> tuple[pd.DataFrame, dict]:
    """Load CheXpert train+valid into the canonical cohort table.

    Returns the table and a provenance dict (release folder, files used, where race came from).
    ``path`` is absolute. Without the DEMO spreadsheet ``race`` is missing on every row (one warning).
    """
    release = find_release(root, "chexpert")
    data = next(release / name for name in DATA_FOLDERS if (release / name / "train.csv").is_file())
    csvs = [data / name for name in ("train.csv", "valid.csv")]
    frames = [read_label_csv(p, uncertain) for p in csvs if p.is_file()]
    df = pd.concat(frames, ignore_index=True)
    where = (data, release, release.parent, release.parent.parent)
    demo_path = Path(demo) if demo else next((base / name for base in where for name in DEMO_NAMES if (base / name).is_file()), None)
    if demo_path is None:
        warnings.warn(f"{release / DEMO_NAMES[0]}: not found (nor in {data.name}/ or the two folders above); race is missing "
                      f"for all {len(df)} images. CheXpert race comes from the separately licensed CHEXPERT DEMO "
                      "spreadsheet: put it there to audit by race", RadfairWarning, stacklevel=2)
        df["race"] = None
        df = df.drop(columns=["_patient"])
    else:
        races = read_demo(demo_path, race_scheme)
        df = df.merge(races, how="left", left_on="_patient", right_on="patient").drop(columns=["_patient", "patient"])
        df["race"] = df["race"].astype(object).where(df["race"].notna(), None)
    df["age_group"] = age_group(df["age"])
    df["insurance"] = None
    df["path"] = [str(release / p) for p in df.pop("rel_path")]
    provenance = {"release": str(release), "files": [str(p) for p in csvs if p.is_file()] + ([str(demo_path)] if demo_path else []),
                  "race": str(demo_path) if demo_path else "missing (no CHEXPERT DEMO spreadsheet)"}
    return df, provenance


def _load(request: LoadRequest) -> tuple[pd.DataFrame, dict]:
    return load_chexpert(request.root, request.uncertain, race_scheme=request.race_scheme)


DATASET = register(Dataset(
    name="chexpert",
    description="CheXpert v1.0 (full or -small): train.csv + valid.csv, race from CHEXPERT DEMO",
    load=_load,
    releases={"chexpert": tuple(f"{folder}/train.csv" for folder in DATA_FOLDERS)},
    labels=dict(LABELS),
    attributes=("sex", "age_group", "race"),
    synthetic="chexpert",
))
