"""The canonical cohort table: one row per image, shared by every loader and every later stage.

Columns (DESIGN.md "Cohort"): ``image_id, patient_id, study_id, dataset, path, view, sex, age,
age_group, race, insurance`` plus ``y_<label>`` columns holding 1.0, 0.0 or NaN. Identifiers are
namespaced by dataset (``chexpert:patient00001``) so that the union of two releases never merges
two different people. UCSF-PDGM rows add ``mask_path, who_grade, tumor_type``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import (
    BAD_VALUES,
    DUPLICATE_IDS,
    EMPTY_AFTER_FILTER,
    MISSING_COLUMNS,
    RadfairInputError,
    preview,
)

#: The 14 CheXpert findings, canonical snake_case name -> name used in the CheXpert/MIMIC CSVs.
LABELS: dict[str, str] = {
    "atelectasis": "Atelectasis",
    "cardiomegaly": "Cardiomegaly",
    "consolidation": "Consolidation",
    "edema": "Edema",
    "enlarged_cardiomediastinum": "Enlarged Cardiomediastinum",
    "fracture": "Fracture",
    "lung_lesion": "Lung Lesion",
    "lung_opacity": "Lung Opacity",
    "no_finding": "No Finding",
    "pleural_effusion": "Pleural Effusion",
    "pleural_other": "Pleural Other",
    "pneumonia": "Pneumonia",
    "pneumothorax": "Pneumothorax",
    "support_devices": "Support Devices",
}
LABEL_COLUMNS = [f"y_{name}" for name in LABELS]

#: Study 2 (reconstruction) uses 12 findings: no Support Devices, no No Finding.
STUDY2_LABELS = [name for name in LABELS if name not in ("support_devices", "no_finding")]

SEXES = ("Male", "Female")
AGE_GROUPS = ("0-20", "20-40", "40-60", "60-80", "80+")
AGE_EDGES = (0, 20, 40, 60, 80)
RACES = ("White", "Black", "Asian", "Hispanic", "Native", "Other")
INSURANCES = ("Medicare", "Medicaid", "Other")
VIEWS = ("frontal", "lateral", "other", "unknown")

#: Values a raw label cell may hold: positive, negative, uncertain, blank (not mentioned).
RAW_LABEL_VALUES = (1.0, 0.0, -1.0)

#: How uncertain (-1) labels are mapped. Blank ("not mentioned") always maps to 0, as in
#: CheXclusion and both papers; "No Finding" has no uncertain value.
UNCERTAIN_POLICIES = {"zeros": 0.0, "ones": 1.0, "ignore": np.nan}

REQUIRED_COLUMNS = ("image_id", "patient_id", "study_id", "dataset", "path", "view", "sex", "age", "age_group", "race")


def age_group(age: pd.Series) -> pd.Series:
    """Left-closed 20-year bins [0,20), [20,40), ..., [80, inf) labelled as in the paper ("80+")."""
    age = pd.to_numeric(age, errors="coerce")
    bins = list(AGE_EDGES) + [np.inf]
    groups = pd.cut(age, bins=bins, right=False, labels=list(AGE_GROUPS))
    return groups.astype(object).where(groups.notna(), None)


def harmonise_sex(values: pd.Series) -> pd.Series:
    """Map M/F/Male/Female (any case) to Male/Female; anything else (Unknown, blank) to missing."""
    mapping = {"m": "Male", "male": "Male", "f": "Female", "female": "Female"}
    return values.astype("string").str.strip().str.lower().map(mapping).astype(object)


def map_uncertain(raw: pd.Series, policy: str) -> pd.Series:
    """Raw label cells (1, 0, -1, blank) -> 1.0/0.0/NaN under an uncertainty policy."""
    out = raw.astype(float).fillna(0.0)
    return out.where(out != -1.0, UNCERTAIN_POLICIES[policy])


def check_label_values(df: pd.DataFrame, columns, path) -> None:
    """Raw label cells must be 1, 0, -1 or blank; anything else names the column and values."""
    for column in columns:
        numeric = pd.to_numeric(df[column], errors="coerce")
        bad = df[column][(numeric.isna() & df[column].notna()) | (numeric.notna() & ~numeric.isin(RAW_LABEL_VALUES))]
        if len(bad):
            raise RadfairInputError(
                BAD_VALUES.format(path=path, column=column, values=preview(bad), expected="expected 1, 0, -1 or blank")
            )


def require_columns(df: pd.DataFrame, columns, path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise RadfairInputError(MISSING_COLUMNS.format(path=path, columns=missing, expected=list(columns)))


def validate_cohort(df: pd.DataFrame, path="cohort") -> pd.DataFrame:
    """Check a cohort table against the schema; returns it unchanged or raises RadfairInputError."""
    require_columns(df, REQUIRED_COLUMNS, path)
    if df.empty:
        raise RadfairInputError(EMPTY_AFTER_FILTER.format(path=path, step="loading (the cohort is empty)"))
    duplicated = df["image_id"][df["image_id"].duplicated()]
    if len(duplicated):
        raise RadfairInputError(DUPLICATE_IDS.format(path=path, column="image_id", values=preview(duplicated)))
    for column, allowed in (("sex", SEXES), ("age_group", AGE_GROUPS), ("race", RACES), ("view", VIEWS)):
        values = df[column].dropna()
        bad = values[~values.isin(allowed)]
        if len(bad):
            raise RadfairInputError(
                BAD_VALUES.format(path=path, column=column, values=preview(bad), expected=f"expected one of {list(allowed)}")
            )
    for column in [c for c in df.columns if c.startswith("y_")]:
        values = df[column]
        bad = values[values.notna() & ~values.isin((0.0, 1.0))]
        if len(bad):
            raise RadfairInputError(
                BAD_VALUES.format(path=path, column=column, values=preview(bad), expected="expected 1, 0 or NaN")
            )
    return df


def summarise(df: pd.DataFrame) -> dict:
    """Rows, patients, group shares and label prevalences, for printing and for the metadata."""
    out: dict = {"rows": int(len(df)), "patients": int(df["patient_id"].nunique())}
    for attr in ("sex", "age_group", "race", "insurance"):
        if attr in df.columns and df[attr].notna().any():
            out[f"{attr}_share"] = {k: round(float(v), 4) for k, v in df[attr].value_counts(normalize=True).items()}
    labels = [c for c in df.columns if c.startswith("y_")]
    out["prevalence"] = {c[2:]: round(float(df[c].mean()), 4) for c in labels if df[c].notna().any()}
    return out
