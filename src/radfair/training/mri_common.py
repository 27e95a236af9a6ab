"""What the UCSF-PDGM downstream run kinds share: the split volume cohort, slices per volume, the best checkpoint.

The run kinds themselves: :mod:`radfair.training.slice_classifier` (``train-slice-classifier``),
:mod:`radfair.training.segmenter` (``train-segmenter``); frozen scoring of any volume table:
:mod:`radfair.training.frozen_mri`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import BAD_VALUES, MISSING_COLUMNS, RadfairInputError, RadfairWarning, preview
from ..io import read_table
from .checkpoint import load_checkpoint
from .classify import read_split_cohort
from .volumes import DownstreamSlices, SliceData, check_volume_table, selected_rows, slice_arrays

MRI_LABELS = ["high_grade", "glioblastoma"]


def check_sizes(config) -> None:
    """Batch sizes and epochs of a downstream run config are positive (one-line input errors)."""
    config.slices.check()  # DownstreamSlices: the size and both selections
    for option, value in (("batch_size", config.batch_size), ("eval_batch_size", config.eval_batch_size), ("loop.epochs", config.loop.epochs)):
        if value < 1:
            raise RadfairInputError(f"{option}: {value!r} is not valid; expected a positive integer")


def one_volume_per_patient(cohort: pd.DataFrame, path) -> None:
    counts = cohort.groupby("patient_id")["image_id"].nunique()
    several = counts[counts > 1]
    if len(several):
        raise RadfairInputError(BAD_VALUES.format(path=path, column="patient_id", values=preview(several.index),
                                                  expected="expected one volume per patient (UCSF-PDGM: one FLAIR volume each)"))


def read_volume_cohort(path, column: str, labels: list[str] | None) -> tuple[pd.DataFrame, list[str]]:
    """A split UCSF-PDGM cohort with its image column and tumour masks checked."""
    cohort, labels = read_split_cohort(path, labels)
    check_volume_table(cohort, path, column)
    one_volume_per_patient(cohort, path)
    return cohort.reset_index(drop=True), labels


def slice_rows(cohort: pd.DataFrame, data: SliceData) -> np.ndarray:
    """For each cached slice, its row in ``cohort`` (by image_id)."""
    return pd.Index(cohort["image_id"].astype(str)).get_indexer(data.index["image_id"].astype(str))


def warn_without_slices(cohort: pd.DataFrame, index: pd.DataFrame, log, where: str, option: str) -> None:
    """Volumes of ``cohort`` with no slice in ``index`` (the slices kept by the selection ``option``) cannot be
    trained on or scored: say how many and which (never drop them silently)."""
    absent = cohort["image_id"][~cohort["image_id"].astype(str).isin(set(index["image_id"].astype(str)))]
    if len(absent):
        message = (f"{where}: {len(absent)} volume(s) {preview(absent, 3)} have no slice kept by {option} (too few slices "
                   "for its slice_range, or no slice with enough tumour pixels); they are left out")
        log(message)
        warnings.warn(message, RadfairWarning, stacklevel=3)


def inference_slices(cohort: pd.DataFrame, path, slices: DownstreamSlices, train: SliceData, column: str, progress: bool,
                     splits: tuple[str, ...] = ("val", "test")) -> tuple[SliceData, np.ndarray]:
    """(data, positions): the inference slices (``slices.inference``) of the cohort's ``splits`` volumes.

    When the training selection covers the inference one (the paper: every slice ⊇ slices 60-130), they are rows of
    the training cache ``train`` (one cache, no second copy); otherwise a cache of those volumes alone is built."""
    scored = cohort["split"].isin(splits).to_numpy()
    if slices.train.covers(slices.inference):
        return train, selected_rows(train, slices.inference, cohort.loc[scored, "image_id"])
    data = slice_arrays(cohort[scored].reset_index(drop=True), path, slices.inferring(), column=column, progress=progress)
    return data, np.arange(len(data))


def best_checkpoint(run_dir: Path) -> dict:
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    if best is None:
        raise RuntimeError("no epoch produced a finite validation loss; nothing to score (training diverged)")
    return best


def volumes_with_cohort(volumes_path, column: str, cohort_path: str, level: str | None) -> pd.DataFrame:
    """Rows of a volume table (a cohort, ``degraded.parquet`` or reconstructed volumes) completed from the run's
    split cohort by ``image_id`` (patient, mask, split, labels, attributes the table lacks)."""
    table = read_table(volumes_path, "volume table")
    missing = [c for c in ("image_id", column) if c not in table.columns]
    if missing:
        raise RadfairInputError(MISSING_COLUMNS.format(path=volumes_path, columns=missing, expected=f"image_id and the image column {column!r}"))
    if "level" in table.columns:
        levels = table["level"].dropna().unique().tolist()
        if level is not None:
            table = table[table["level"] == level]
            if table.empty:
                raise RadfairInputError(BAD_VALUES.format(path=volumes_path, column="level", values=preview([level]),
                                                          expected=f"expected one of {levels}"))
        elif len(levels) > 1:
            raise RadfairInputError(f"{volumes_path}: column 'level' has {len(levels)} levels {preview(levels)}; choose one (level=...)")
    duplicated = table["image_id"][table["image_id"].duplicated()]
    if len(duplicated):
        raise RadfairInputError(BAD_VALUES.format(path=volumes_path, column="image_id", values=preview(duplicated),
                                                  expected="expected each volume once"))
    cohort = read_table(cohort_path, "the run's split cohort")
    extra = [c for c in cohort.columns if c not in table.columns or c == "image_id"]
    merged = table.merge(cohort[extra], on="image_id", how="left", validate="one_to_one")
    unknown = merged["image_id"][~merged["image_id"].isin(cohort["image_id"])]
    if len(unknown):
        raise RadfairInputError(BAD_VALUES.format(path=volumes_path, column="image_id", values=preview(unknown),
                                                  expected=f"expected volumes of the run's cohort {cohort_path}"))
    return merged.reset_index(drop=True)


__all__ = ["MRI_LABELS", "best_checkpoint", "check_sizes", "inference_slices", "one_volume_per_patient", "read_volume_cohort", "slice_rows",
           "volumes_with_cohort", "warn_without_slices"]
