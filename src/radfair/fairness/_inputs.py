"""Prediction files as people hold them, turned into the scored-table contract before the audit's rules apply.

The scored table the audit computes on has ``patient_id``, ``split`` (train/val/test), attribute columns,
``y_<label>`` in {1, 0, NaN} and ``p_<label>`` scores in [0, 1]. Files from other pipelines differ in five
ways, each handled here by a stated rule (every rule applied is returned as a note for ``audit.json``):

* **their own column names** (``Pleural Effusion``, ``Logit - Pleural Effusion``, ``subject``): a mapping
  ``canonical=own`` (:func:`parse_columns`); label names are normalised to snake_case (``y_Pleural Effusion``
  -> ``y_pleural_effusion``);
* **logits** instead of probabilities: ``scores="logits"`` applies the logistic sigmoid;
* **uncertain labels** (CheXpert's -1): ``uncertain`` maps them to 0 (``zeros``), 1 (``ones``) or missing
  (``ignore``), as ``radfair cohort --uncertain`` does;
* **no split column**: allowed when the threshold needs no validation rows (a number, a file, or a target rule
  ``fpr:x`` / ``tpr:x`` chosen on the whole table, the field's operating-point convention); every row is then
  test. ``validate`` / ``valid`` / ``validation`` mean ``val``, ``training`` means ``train``;
* **a numeric attribute**: ``age`` in years is binned into the standard groups (0-20, 20-40, 40-60, 60-80,
  80+; left-closed); any other numeric column with more than ``MAX_NUMERIC_GROUPS`` values is refused with a
  hint to bin it.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..data.schema import AGE_GROUPS, UNCERTAIN_POLICIES, age_group
from ..errors import BAD_OPTION, BAD_VALUES, MISSING_COLUMNS, RadfairInputError, preview
from ._thresholds import parse_rule

SCORE_KINDS = ("probabilities", "logits")
SPLIT_SYNONYMS = {"validate": "val", "valid": "val", "validation": "val", "dev": "val", "training": "train", "testing": "test"}
MAX_NUMERIC_GROUPS = 10
STANDARD_COLUMNS = ("patient_id", "split", "image_id")


def snake_case(name: str) -> str:
    """``"Pleural Effusion"`` -> ``"pleural_effusion"``; ``"No-Finding"`` -> ``"no_finding"``."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def parse_columns(text: str | dict | None) -> dict[str, str]:
    """``"y_effusion=Pleural Effusion,p_effusion=Logit - Pleural Effusion"`` -> {canonical: own}.

    Keys are canonical names (``patient_id``, ``split``, ``image_id``, an attribute, ``y_<label>``,
    ``p_<label>``); values are the file's own column names. Raises :class:`RadfairInputError`.
    """
    if not text:
        return {}
    if isinstance(text, dict):
        return {str(k): str(v) for k, v in text.items()}
    out = {}
    for part in str(text).split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise RadfairInputError(BAD_OPTION.format(option="--columns", value=part,
                                                      expected="canonical=own pairs, e.g. y_pleural_effusion=Pleural Effusion"))
        out[key.strip()] = value.strip()
    return out


def needs_validation(threshold: str, on_test: bool) -> bool:
    """True when the threshold must be chosen on validation rows (a rule other than a target rule)."""
    parsed = parse_rule(str(threshold))
    return parsed is not None and parsed[1] is None and not on_test


def normalise_table(df: pd.DataFrame, *, attributes: list[str], columns: dict[str, str] | None = None,
                    scores: str = "probabilities", uncertain: str | None = None, threshold: str = "f1",
                    threshold_on_test: bool = False, path: str = "scored table") -> tuple[pd.DataFrame, list[str]]:
    """The file's table in the scored-table contract, and the notes of every rule applied (in order).

    Raises :class:`RadfairInputError` naming every missing column at once, with the option that fixes it.
    """
    notes: list[str] = []
    if scores not in SCORE_KINDS:
        raise RadfairInputError(BAD_OPTION.format(option="--scores", value=scores, expected=f"one of {list(SCORE_KINDS)}"))
    if uncertain is not None and uncertain not in UNCERTAIN_POLICIES:
        raise RadfairInputError(BAD_OPTION.format(option="--uncertain", value=uncertain, expected=f"one of {list(UNCERTAIN_POLICIES)}"))
    columns = dict(columns or {})
    attribute_parts = {p for a in attributes for p in a.split("*")}
    unknown_keys = [k for k in columns if not (k in STANDARD_COLUMNS or k in attribute_parts or k in ("age", "sex")
                                               or k.startswith(("y_", "p_")))]
    if unknown_keys:
        raise RadfairInputError(BAD_OPTION.format(option="--columns", value=",".join(unknown_keys),
                                                  expected="canonical names on the left: patient_id, split, image_id, an "
                                                           "attribute of --attributes, age, y_<label> or p_<label>"))
    absent = [own for own in columns.values() if own not in df.columns]
    if absent:
        raise RadfairInputError(MISSING_COLUMNS.format(path=path, columns=absent,
                                                       expected=f"the file's own names given in --columns (it has {list(df.columns)[:12]})"))
    df = df.rename(columns={own: canonical for canonical, own in columns.items()})
    if columns:
        notes.append("columns mapped: " + ", ".join(f"{own!r} -> {canonical}" for canonical, own in columns.items()))
    renames = {}
    for column in df.columns:
        for prefix in ("y_", "p_"):
            if str(column).startswith(prefix) and snake_case(column[2:]) != column[2:]:
                renames[column] = prefix + snake_case(column[2:])
    if renames:
        df = df.rename(columns=renames)
        notes.append("label names normalised to snake_case: " + ", ".join(f"{a!r} -> {b}" for a, b in renames.items()))
    if "age_group" in attribute_parts and "age_group" not in df.columns and "age" in df.columns:
        df = df.copy()
        df["age_group"] = age_group(pd.to_numeric(df["age"], errors="coerce"))
        notes.append(f"age_group derived from age (years) into {list(AGE_GROUPS)} (left-closed)")
    _check_columns(df, attributes, threshold, threshold_on_test, path)
    df = df.copy()
    df.attrs = {}
    if "split" not in df.columns:
        df["split"] = "test"
        df.attrs["split_absent"] = True
        notes.append("no split column: every row is test (the threshold needs no validation rows)")
    else:
        raw = df["split"].astype("string")
        text = raw.str.strip().str.lower()
        mapped = text.map(lambda v: SPLIT_SYNONYMS.get(v, v) if isinstance(v, str) else v)
        changed = (mapped != raw).fillna(False)
        if changed.any():
            pairs = pd.DataFrame({"from": raw[changed], "to": mapped[changed]}).drop_duplicates()
            notes.append(f"split values normalised in {int(changed.sum())} row(s): "
                         + ", ".join(f"{a!r} -> {b}" for a, b in zip(pairs["from"], pairs["to"], strict=True)))
        df["split"] = mapped.astype(object).where(raw.notna(), None)
    labels = [c[2:] for c in df.columns if c.startswith("y_") and f"p_{c[2:]}" in df.columns]
    original = df[[f"p_{label}" for label in labels]].copy()
    for label in labels:
        y = pd.to_numeric(df[f"y_{label}"], errors="coerce")
        uncertain_rows = int((y == -1).sum())
        if uncertain_rows:
            if uncertain is None:
                raise RadfairInputError(BAD_VALUES.format(path=path, column=f"y_{label}", values="[-1]",
                                                          expected=f"{uncertain_rows} uncertain (-1) label(s); choose how to "
                                                                   "count them with --uncertain zeros|ones|ignore (Python: "
                                                                   "uncertain=)"))
            df[f"y_{label}"] = y.where(y != -1, UNCERTAIN_POLICIES[uncertain])
            notes.append(f"y_{label}: {uncertain_rows} uncertain (-1) label(s) -> {uncertain}")
        if scores == "logits":
            p = pd.to_numeric(df[f"p_{label}"], errors="coerce")
            df[f"p_{label}"] = 1.0 / (1.0 + np.exp(-p.to_numpy(float)))
    if scores == "logits" and labels:
        raw = {label: pd.to_numeric(original[f"p_{label}"], errors="coerce") for label in labels}
        if all(((v >= 0) & (v <= 1)).all() for v in raw.values()):
            raise RadfairInputError(BAD_VALUES.format(path=path, column=f"p_{labels[0]}", values=preview(raw[labels[0]].dropna()),
                                                      expected="logits, but every score column lies in [0, 1]: these look "
                                                               "like probabilities; drop --scores logits"))
        notes.append("scores are logits: p = 1 / (1 + exp(-logit)) (logistic sigmoid)")
    elif labels:
        for label in labels:
            p = pd.to_numeric(df[f"p_{label}"], errors="coerce")
            outside = df[f"p_{label}"][(p < 0) | (p > 1)]
            if len(outside):
                raise RadfairInputError(BAD_VALUES.format(path=path, column=f"p_{label}", values=preview(outside),
                                                          expected="expected probabilities in [0, 1]; if these are logits, "
                                                                   "pass --scores logits"))
    if "sex" in df.columns and "sex" in attribute_parts:
        text = df["sex"].astype("string").str.strip().str.lower()
        codes = {"m": "Male", "f": "Female", "male": "Male", "female": "Female"}
        recode = text.isin(list(codes)) & (df["sex"].astype("string") != text.map(codes))
        if recode.any():
            df["sex"] = df["sex"].astype(object).where(~recode, text.map(codes))
            notes.append(f"sex: {int(recode.sum())} value(s) spelled M/F (any case) read as Male/Female, as the loaders do")
    for attribute in sorted(attribute_parts & set(df.columns)):
        values = df[attribute]
        if not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)):
            continue
        distinct = values.dropna().nunique()
        if distinct <= MAX_NUMERIC_GROUPS:
            continue
        if attribute == "age":
            df[attribute] = age_group(values)
            notes.append(f"attribute 'age' is numeric ({distinct} values): binned into {list(AGE_GROUPS)} (years, left-closed)")
        else:
            raise RadfairInputError(BAD_VALUES.format(path=path, column=attribute, values=preview(values.dropna()),
                                                      expected=f"a group attribute, not a number with {distinct} values; "
                                                               "bin it into groups first (a column named age is binned "
                                                               f"automatically: --columns age={attribute} --attributes age)"))
    return df, notes


def _check_columns(df: pd.DataFrame, attributes: list[str], threshold: str, on_test: bool, path: str) -> None:
    """Every missing column at once, with the option that fixes it."""
    missing, hints = [], []
    if "patient_id" not in df.columns:
        missing.append("patient_id")
        hints.append("--columns patient_id=<your patient column> (the bootstrap resamples patients)")
    if "split" not in df.columns and needs_validation(threshold, on_test):
        missing.append("split")
        hints.append(f"a split column (train/val/test), or a threshold that needs no validation rows: --threshold VALUE|FILE, "
                     f"--threshold fpr:0.2 / tpr:0.9, or --threshold-on-test (the rule {threshold!r} is chosen on val)")
    absent_attributes = sorted({p for a in attributes for p in a.split("*")} - set(df.columns))
    if absent_attributes:
        missing += absent_attributes
        hints.append("--attributes naming your columns, or --columns <attribute>=<your column>")
    if not any(c.startswith("y_") and f"p_{c[2:]}" in df.columns for c in df.columns):
        missing.append("y_<label>/p_<label>")
        unpaired = [c for c in df.columns if str(c).startswith(("y_", "p_"))]
        hints.append("--columns y_<label>=<your label column>,p_<label>=<your score column> with the same <label>"
                     + (f" (unpaired now: {unpaired})" if unpaired else ""))
    if missing:
        raise RadfairInputError(MISSING_COLUMNS.format(path=path, columns=missing, expected="; ".join(hints)))
