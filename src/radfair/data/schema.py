"""The canonical cohort table: one row per image, shared by every loader and every later stage.

Columns (DESIGN.md "Cohort"): ``image_id, patient_id, study_id, dataset, path, view, sex, age,
age_group, race, insurance`` plus ``y_<label>`` columns holding 1.0, 0.0 or NaN. Identifiers are
namespaced by dataset (``chexpert:patient00001``) so that the union of two releases never merges
two different people. UCSF-PDGM rows add ``mask_path, who_grade, tumor_type``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import (
    BAD_DTYPE,
    BAD_VALUES,
    COERCED_TO_MISSING,
    DUPLICATE_IDS,
    EMPTY_AFTER_FILTER,
    MISSING_COLUMNS,
    NULL_VALUES,
    RadfairInputError,
    RadfairWarning,
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


#: Age limits in years; a value outside them (or not a number) is an input error in every loader.
AGE_RANGE = (0.0, 130.0)
#: Texts that mean "not recorded": mapped to missing without a warning.
MISSING_TEXTS = ("", "unknown", "u", "unk", "not recorded", "nan", "none", "null", "na", "n/a", "missing")
#: Phrases that mark a categorical value as unknown wherever they occur in it, case-insensitive
#: (MIMIC-IV's ``UNABLE TO OBTAIN``, ``PATIENT DECLINED TO ANSWER``, ``UNKNOWN/NOT SPECIFIED``...).
#: Together with ``MISSING_TEXTS`` this is the one list of unknown markers used by every loader and by
#: ``radfair audit`` on attribute columns.
UNKNOWN_PHRASES = ("unknown", "declined", "refused", "unable to obtain", "not reported", "unavailable",
                   "not specified", "not available")


def unknown_marker_mask(values: pd.Series) -> pd.Series:
    """True where a value is blank, NaN or an unknown marker (``MISSING_TEXTS``, ``UNKNOWN_PHRASES``).

    Non-text values (numbers) are unknown only when NaN. Shape: same as ``values``.
    """
    codes, uniques = pd.factorize(values)  # each distinct value tested once (a column holds few); NA -> code -1
    distinct = pd.Series(uniques, dtype=object)
    text = distinct.astype("string").str.strip().str.lower()
    is_text = distinct.map(lambda v: isinstance(v, str)).astype(bool)
    phrase = text.str.contains("|".join(UNKNOWN_PHRASES), regex=True).fillna(False).astype(bool)
    marker = (is_text & (text.isin(MISSING_TEXTS).fillna(False).astype(bool) | phrase)).to_numpy(bool)
    return pd.Series(np.r_[marker, True][codes], index=values.index)


def warn_unrecognised(raw: pd.Series, mapped: pd.Series, path, column: str) -> None:
    """Warn once, with a count, about values that were given but mapped to missing."""
    text = raw.astype("string").str.strip().str.lower()
    lost = raw[raw.notna() & ~text.isin(MISSING_TEXTS) & mapped.isna()]
    if len(lost):
        warnings.warn(COERCED_TO_MISSING.format(path=path, column=column, count=len(lost), values=preview(lost)),
                      RadfairWarning, stacklevel=3)


def harmonise_sex(values: pd.Series, path="table", column: str = "Sex") -> pd.Series:
    """Map M/F/Male/Female (any case) to Male/Female; blank/Unknown to missing; any other value to
    missing with a warning and a count (the rule for every categorical column)."""
    mapping = {"m": "Male", "male": "Male", "f": "Female", "female": "Female"}
    mapped = values.astype("string").str.strip().str.lower().map(mapping).astype(object)
    warn_unrecognised(values, mapped, path, column)
    return mapped


def parse_age(values: pd.Series, path, column: str) -> pd.Series:
    """Ages in years as floats; blank -> NaN; text or a value outside AGE_RANGE is an input error."""
    age = pd.to_numeric(values, errors="coerce")
    text = values[age.isna() & values.notna() & (values.astype("string").str.strip() != "")]
    if len(text):
        raise RadfairInputError(BAD_DTYPE.format(path=path, column=column, values=preview(text)))
    low, high = AGE_RANGE
    impossible = values[age.notna() & ((age < low) | (age > high))]
    if len(impossible):
        raise RadfairInputError(BAD_VALUES.format(path=path, column=column, values=preview(impossible),
                                                  expected=f"expected ages from {low:g} to {high:g} years"))
    return age.astype(float)


def patient_sex(df: pd.DataFrame, path="cohort") -> pd.DataFrame:
    """Sex is a property of the patient: a patient recorded as both Male and Female gets missing
    sex on every image, with one warning giving the count of such patients."""
    known = df.dropna(subset=["sex"])
    n_values = known.groupby("patient_id")["sex"].nunique()
    conflicted = n_values.index[n_values > 1]
    if len(conflicted):
        warnings.warn(f"{path}: {len(conflicted)} patient(s) {preview(conflicted)} recorded as both Male and Female; "
                      "their sex is treated as missing", RadfairWarning, stacklevel=2)
        df = df.copy()
        df.loc[df["patient_id"].isin(conflicted), "sex"] = None
    return df


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


def validate_cohort(df: pd.DataFrame, path="cohort", races: tuple[str, ...] = RACES) -> pd.DataFrame:
    """Check a cohort table against the schema (``races``: the groups of its race scheme, by default Study 1's six,
    :data:`radfair.data.race.RACE_SCHEMES`); returns it unchanged or raises RadfairInputError."""
    require_columns(df, REQUIRED_COLUMNS, path)
    if df.empty:
        raise RadfairInputError(EMPTY_AFTER_FILTER.format(path=path, step="loading (the cohort is empty)"))
    for column in ("image_id", "patient_id", "path"):
        blank = df[column].isna() | (df[column].astype("string").str.strip() == "")
        if blank.any():
            raise RadfairInputError(NULL_VALUES.format(path=path, column=column, count=int(blank.sum())))
    duplicated = df["image_id"][df["image_id"].duplicated()]
    if len(duplicated):
        raise RadfairInputError(DUPLICATE_IDS.format(path=path, column="image_id", values=preview(duplicated)))
    for column, allowed in (("sex", SEXES), ("age_group", AGE_GROUPS), ("race", races), ("view", VIEWS)):
        values = df[column].dropna()
        bad = values[~values.isin(allowed)]
        if len(bad):
            raise RadfairInputError(
                BAD_VALUES.format(path=path, column=column, values=preview(bad), expected=f"expected one of {list(allowed)}")
            )
    parse_age(df["age"], path, "age")
    for column in [c for c in df.columns if c.startswith("y_")]:
        values = df[column]
        bad = values[values.notna() & ~values.isin((0.0, 1.0))]
        if len(bad):
            raise RadfairInputError(
                BAD_VALUES.format(path=path, column=column, values=preview(bad), expected="expected 1, 0 or NaN")
            )
    return df


def summarise(df: pd.DataFrame) -> dict:
    """Rows, patients, group shares and label prevalences, for printing and for the metadata.

    ``<attr>_share`` is each group's share of the rows whose attribute is known; ``<attr>_missing`` is
    the share of all rows whose attribute is missing (so a share among 3 known rows of 30000 is never
    read as a share of the cohort).
    """
    out: dict = {"rows": int(len(df)), "patients": int(df["patient_id"].nunique())}
    for attr in ("sex", "age_group", "race", "insurance"):
        if attr not in df.columns:
            continue
        if df[attr].notna().any():
            out[f"{attr}_share"] = {k: round(float(v), 4) for k, v in df[attr].value_counts(normalize=True).items()}
        out[f"{attr}_missing"] = float(df[attr].isna().mean()) if len(df) else 0.0
    labels = [c for c in df.columns if c.startswith("y_")]
    out["prevalence"] = {c[2:]: round(float(df[c].mean()), 4) for c in labels if df[c].notna().any()}
    return out
