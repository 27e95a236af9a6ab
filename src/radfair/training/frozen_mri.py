"""Frozen scoring of any table of UCSF-PDGM volumes with a finished ``train-slice-classifier`` or ``train-segmenter`` run.

The same preprocessing (:mod:`radfair.training.volumes`) and the run's best checkpoint; used by the
``score-volumes`` run kind and the mitigation's validation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import EMPTY_AFTER_FILTER, RadfairInputError
from ..execution.store import require_record, run_output
from ..io import write_table
from .checkpoint import check_device, load_checkpoint
from .mri_common import one_volume_per_patient, slice_rows, volumes_with_cohort, warn_without_slices
from .segmenter import TRAIN_SEGMENTER, SegmenterStep, build_segmenter, segment_slices, segmentation_table
from .slice_classifier import TRAIN_SLICE_CLASSIFIER, build_classifier, patient_table, score_slices
from .volumes import check_volume_table, slice_arrays

KINDS = {kind.name: kind for kind in (TRAIN_SLICE_CLASSIFIER, TRAIN_SEGMENTER)}


def load_frozen(run_dir: str | Path, device: str = "cpu"):
    """(record, config, model, best) of a finished ``train-slice-classifier`` or ``train-segmenter`` run: the network
    with its best checkpoint's weights, in eval mode, and that checkpoint."""
    run_dir = Path(run_dir)
    record = require_record(run_dir, set(KINDS))
    # a segmenter recorded before the ``norm`` setting existed was trained without BatchNorm
    settings = {"norm": False, **record["config"]} if record["kind"] != TRAIN_SLICE_CLASSIFIER.name else record["config"]
    config = KINDS[record["kind"]].settings.model_validate(settings)
    best = load_checkpoint(run_output(run_dir, "best_checkpoint"))
    if best is None:
        raise RadfairInputError(f"{run_dir}: no best checkpoint yet (status {record.get('status')}); train it first")
    if record["kind"] == TRAIN_SLICE_CLASSIFIER.name:
        model = build_classifier(config.model_copy(update={"weights": None}), len(config.labels), print)
    else:
        model = build_segmenter(config.widths, config.bottleneck, config.norm)
    model.load_state_dict(best["modules"]["model"])
    return record, config, model.to(device).eval(), best


def score_volumes(run_dir: str | Path, volumes_path: str | Path, out: str | Path, *, column: str = "path", level: str | None = None,
                  splits: tuple[str, ...] | None = ("val", "test"), device: str = "cpu", progress: bool = True,
                  persist: bool = True) -> pd.DataFrame:
    """Score the volumes of any table with a finished MRI run's frozen best checkpoint and the run's preprocessing.

    A ``train-slice-classifier`` run writes the scored-table contract (one row per patient, median of slice
    scores); a ``train-segmenter`` run writes the segmentation table. ``volumes_path`` may be the split cohort
    (``column="path"``), ``degraded.parquet`` (``column="path_degraded"``, one ``level``) or a table of
    reconstructed volumes; columns it lacks come from the run's cohort by ``image_id``. The slices scored are the
    run's inference selection (``slices.inference``; the paper: 60-130, whatever the mask), so clean and
    reconstructed tables score the same slices; the segmenter's Dice uses the run's ``empty_slices`` convention.
    ``splits=None`` scores every row. ``persist=False``: the slices are not added to the shared cache (volumes read
    once; :func:`radfair.training.volumes.slice_arrays`).
    """
    check_device(device)
    run_dir = Path(run_dir)
    record, config, model, best = load_frozen(run_dir, device)
    kind = record["kind"]
    table = volumes_with_cohort(volumes_path, column, config.cohort, level)
    if splits is not None and "split" in table.columns:
        table = table[table["split"].isin(splits)].reset_index(drop=True)
    if table.empty:
        raise RadfairInputError(EMPTY_AFTER_FILTER.format(path=volumes_path, step=f"keeping splits {list(splits or [])}"))
    check_volume_table(table, volumes_path, column)
    one_volume_per_patient(table, volumes_path)
    data = slice_arrays(table, volumes_path, config.slices.inferring(), column=column, progress=progress, persist=persist)
    warn_without_slices(table, data.index, lambda m: None, str(volumes_path), "slices.inference")
    owner = slice_rows(table, data)
    all_slices, all_rows = np.arange(len(data)), np.arange(len(table))
    meta = {"run": {"run_dir": str(run_dir), "run_id": record["run_id"], "kind": kind, "best_epoch": best["epoch"],
                    "volumes": str(volumes_path), "column": column, "level": level}}
    if kind == TRAIN_SLICE_CLASSIFIER.name:
        labels = config.labels
        for name in (f"y_{k}" for k in labels):  # scoring needs no labels; keep the contract's columns present
            if name not in table.columns:
                table[name] = np.nan
        slice_scores = score_slices(model, data, table, owner, all_slices, labels, config, device)
        result = patient_table(table, all_rows, slice_scores, labels)
    else:
        step = SegmenterStep(model, None)
        counts = segment_slices(step, data, all_slices, config.eval_batch_size, device, config.empty_slices)
        result = segmentation_table(table, all_rows, counts)
    write_table(result, out, meta)
    return result


__all__ = ["load_frozen", "score_volumes"]
