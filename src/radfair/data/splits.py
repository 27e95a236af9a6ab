"""Patient-level train/val/test splits, saved once and reused by every model and modality.

Each patient gets a stable pseudo-random key ``blake2b(seed, patient_id)``; within each stratum
(all patients, or patients sharing the same positive/negative pattern over ``stratify`` labels)
patients are ordered by that key and cut at the cumulative fractions. All images of a patient land
in the same split, and a patient's order does not depend on which other patients are present.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BAD_OPTION, MISSING_COLUMNS, PATIENT_IN_TWO_SPLITS, RadfairInputError, preview
from ..io import output_file, read_metadata, read_table, write_table
from .race import DEFAULT_SCHEME, race_scheme
from .schema import patient_sex, validate_cohort

SPLITS = ("train", "val", "test")
#: Split rules: seeded patient-level fractions, or the release's own split (``official_split`` column).
RULES = ("patient", "official")
#: How releases name their official parts (MIMIC-CXR: ``validate``).
OFFICIAL_NAMES = {"train": "train", "val": "val", "validate": "val", "valid": "val", "validation": "val", "test": "test"}


def patient_key(patient_ids: pd.Series, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per patient, fixed by (seed, patient_id)."""
    def one(pid: str) -> float:
        digest = hashlib.blake2b(f"{seed}:{pid}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little") / 2**64

    return np.array([one(p) for p in patient_ids], dtype=float)


def parse_fractions(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) and v >= 0 for v in values) or abs(sum(values) - 1) > 1e-6:
        raise RadfairInputError(BAD_OPTION.format(option="--fractions", value=text, expected="three non-negative numbers summing to 1, e.g. 0.8,0.1,0.1"))
    return values  # type: ignore[return-value]


def assign_splits(cohort: pd.DataFrame, fractions=(0.8, 0.1, 0.1), seed: int = 0, stratify: list[str] | None = None) -> pd.Series:
    """Return a ``split`` Series (train/val/test) aligned with ``cohort``; patient-level."""
    patients = cohort.groupby("patient_id", sort=True)
    table = pd.DataFrame(index=list(patients.groups))
    if stratify:
        columns = [c if c.startswith("y_") else f"y_{c}" for c in stratify]
        missing = [c for c in columns if c not in cohort.columns]
        if missing:
            raise RadfairInputError(MISSING_COLUMNS.format(path="cohort", columns=missing, expected="label columns to stratify on"))
        positive = patients[columns].max().fillna(0).astype(int).astype(str)
        table["stratum"] = positive.agg("".join, axis=1)
    else:
        table["stratum"] = ""
    table["key"] = patient_key(pd.Series(table.index), seed)
    edges = np.cumsum(fractions)
    assignment = {}
    for _, group in table.groupby("stratum"):
        ordered = group.sort_values("key").index
        n = len(ordered)
        cuts = np.round(edges * n).astype(int)
        labels = np.empty(n, dtype=object)
        labels[: cuts[0]] = SPLITS[0]
        labels[cuts[0] : cuts[1]] = SPLITS[1]
        labels[cuts[1] :] = SPLITS[2]
        assignment.update(dict(zip(ordered, labels, strict=True)))
    return cohort["patient_id"].map(assignment).rename("split")


def assign_official(cohort: pd.DataFrame, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> pd.Series:
    """The release's own split (``official_split``: train/val/test, MIMIC's ``validate`` = val). A release without
    an official validation part (NIH ChestX-ray14: train_val_list.txt / test_list.txt) gets its val patients carved
    from the official train patients, a share ``val / (train + val)`` of ``fractions`` in seeded patient-key order.
    A row without an official part, or a patient in two parts, is an input error."""
    if "official_split" not in cohort.columns:
        raise RadfairInputError(MISSING_COLUMNS.format(path="cohort", columns=["official_split"],
                                                       expected="a release with an official split (NIH ChestX-ray14 lists, MIMIC-CXR split CSV)"))
    raw = cohort["official_split"].astype("string").str.strip().str.lower()
    split = raw.map(OFFICIAL_NAMES)
    if split.isna().any():
        bad = cohort["official_split"][split.isna()]
        raise RadfairInputError(f"cohort: column 'official_split' has {int(split.isna().sum())} row(s) {preview(bad.fillna('<blank>'))} "
                                f"outside the official split; expected one of {sorted(OFFICIAL_NAMES)}")
    split = split.astype(object)
    check_patient_level(cohort.assign(split=split), "official_split")
    if not (split == "val").any():
        train = split == "train"
        patients = pd.Series(cohort.loc[train, "patient_id"].unique())
        order = patients.iloc[np.argsort(patient_key(patients, seed), kind="stable")]
        share = fractions[1] / (fractions[0] + fractions[1]) if fractions[0] + fractions[1] > 0 else 0.0
        val = set(order.iloc[: int(round(share * len(order)))])
        split[train & cohort["patient_id"].isin(val)] = "val"
    return split.rename("split")


def check_patient_level(df: pd.DataFrame, path="table") -> None:
    """Raise if any patient appears in more than one split."""
    per_patient = df.groupby("patient_id")["split"].nunique()
    leaked = per_patient[per_patient > 1]
    if len(leaked):
        raise RadfairInputError(PATIENT_IN_TWO_SPLITS.format(path=path, values=preview(leaked.index)))


def split_cohort_file(cohort_path, out, fractions=(0.8, 0.1, 0.1), seed=0, stratify=None, rule: str | None = None) -> pd.DataFrame:
    """Read a cohort, add ``split`` under ``rule`` (None: the rule its dataset declares, kept in the cohort's
    metadata as ``split_rule``; else ``patient``), write it to ``out``; returns the table."""
    output_file(out)
    table = read_table(cohort_path, "cohort table")  # first: a missing or unreadable file is a one-line error
    meta = read_metadata(cohort_path) if Path(cohort_path).suffix == ".parquet" else {}
    races = race_scheme(meta.get("race_scheme", DEFAULT_SCHEME), f"{cohort_path}: metadata race_scheme").groups
    cohort = patient_sex(validate_cohort(table, cohort_path, races), cohort_path)
    rule = rule or meta.get("split_rule", "patient")
    if rule not in RULES:
        raise RadfairInputError(BAD_OPTION.format(option="--rule", value=rule, expected=list(RULES)))
    if rule == "official" and stratify:
        raise RadfairInputError(BAD_OPTION.format(option="--stratify", value=",".join(stratify), expected="no stratification with --rule official"))
    cohort["split"] = assign_official(cohort, fractions, seed) if rule == "official" else assign_splits(cohort, fractions, seed, stratify)
    check_patient_level(cohort, out)
    meta["split"] = {"rule": rule, "fractions": list(fractions), "seed": seed, "stratify": stratify or [], "unit": "patient"}
    write_table(cohort, out, meta)
    return cohort
