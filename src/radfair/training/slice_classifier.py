"""The ``train-slice-classifier`` run kind (Study 2, UCSF-PDGM): a slice classifier trained on clean volumes, then frozen.

Reconstruction paper §3.3 and appendix "Diagnostic Hyperparameters": MONAI ResNet-50 (``resnet18`` for the
demo), masked BCE over ``y_high_grade`` and ``y_glioblastoma`` (:class:`radfair.training.steps.ClassifierStep`)
on the training slices (``slices.train``; the paper: every slice of every volume, :mod:`radfair.training.volumes`).
Val and test patients are scored on their inference slices (``slices.inference``; the paper: slices 60-130, chosen
without the tumour mask): a patient's score is the **median** of those slices' sigmoid scores
(:func:`aggregate_patients`; the paper: "a patient-level score as the median across slices"). Outputs ``scored.parquet`` (one row per val/test patient, the scored-table contract
of :func:`radfair.training.classify.scored_table`, ready for ``radfair audit``), ``slice_scores.parquet``,
``history.csv``, ``metrics.json`` (patient AUROC), the best checkpoint. No threshold is chosen here.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch

from ..config import StrictModel
from ..errors import EMPTY_AFTER_FILTER, RadfairInputError
from ..execution.kinds import declare
from ..io import write_json, write_table
from ..models import load_weights
from ..models.mri import SliceClassifier
from .classify import predict_scores, scored_table
from .inputs import ImageBatches, RowView
from .loop import LoopConfig, fit
from .mri_common import (
    MRI_LABELS,
    best_checkpoint,
    inference_slices,
    read_volume_cohort,
    slice_rows,
    warn_without_slices,
)
from .steps import ClassifierStep, OptimConfig, make_optimizer
from .volumes import DownstreamSlices, SliceData, slice_arrays


class SliceClassifierRunConfig(StrictModel):
    """Everything that determines a trained slice classifier (hashed into the run id). Paper: batch 16, Adam 1e-4, 20 epochs."""

    cohort: str
    column: str = "path"
    labels: list[str] = MRI_LABELS
    model: Literal["resnet50", "resnet18"] = "resnet50"
    conv1_stride: int = 2
    weights: str | None = None
    slices: DownstreamSlices = DownstreamSlices()
    batch_size: int = 16
    eval_batch_size: int = 64
    seed: int = 0
    optim: OptimConfig = OptimConfig(lr=1e-4, weight_decay=0.0)
    loop: LoopConfig = LoopConfig(epochs=20, patience=5)


AGGREGATION = "median over the patient's inference slices (slices.inference)"


def aggregate_patients(slices: pd.DataFrame, labels: list[str], how: str = "median") -> pd.DataFrame:
    """One row per patient: ``p_<label>`` = the median (paper, appendix "Diagnostic Hyperparameters") of the
    patient's slice scores, plus ``n_slices``. No mask enters: which slices are scored is the inference selection."""
    columns = [f"p_{k}" for k in labels]
    grouped = slices.groupby("patient_id", sort=False)
    out = grouped[columns].agg(how)
    out["n_slices"] = grouped.size()
    return out.reset_index()


def patient_table(cohort: pd.DataFrame, rows: np.ndarray, slice_scores: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The scored-table contract, one row per patient of ``cohort.iloc[rows]`` that has slices, in cohort order."""
    patients = aggregate_patients(slice_scores, labels)
    base = cohort.iloc[rows]
    base = base[base["patient_id"].isin(patients["patient_id"])]
    merged = base[["patient_id"]].merge(patients, on="patient_id", how="left")
    table = scored_table(base, labels, merged[[f"p_{k}" for k in labels]].to_numpy(float))
    table["n_slices"] = merged["n_slices"].to_numpy()
    return table


def build_classifier(config: SliceClassifierRunConfig, n_labels: int, log) -> SliceClassifier:
    model = SliceClassifier(config.model, n_labels, conv1_stride=config.conv1_stride)
    if config.weights:
        counts = load_weights(model.backbone, config.weights)
        log(f"weights {config.weights}: {counts['matched']} of {counts['model_tensors']} backbone tensors loaded")
    return model


def _classifier_batches(data: SliceData, y: np.ndarray, slice_rows: np.ndarray, size: int, *, train: bool, seed: int, device):
    device = torch.device(device)
    return ImageBatches(RowView(data.images, slice_rows), torch.from_numpy(y[slice_rows].astype(np.float32)), size,
                        shuffle=train, seed=seed, device=device, channels_last=device.type == "cuda")


def score_slices(model, data: SliceData, cohort: pd.DataFrame, owner: np.ndarray, slices: np.ndarray, labels, config, device) -> pd.DataFrame:
    y = np.zeros((len(data), len(labels)), np.float32)
    batches = _classifier_batches(data, y, slices, config.eval_batch_size, train=False, seed=config.seed, device=device)
    scores = predict_scores(model, batches, device) if len(slices) else np.zeros((0, len(labels)))
    table = data.index.iloc[slices][["image_id", "patient_id", "slice", "tumour_pixels"]].reset_index(drop=True)
    table["split"] = cohort["split"].to_numpy()[owner[slices]] if "split" in cohort.columns else None
    for j, label in enumerate(labels):
        table[f"p_{label}"] = scores[:, j]
    return table


def run_slice_classifier(config_dict: dict, ctx) -> dict[str, str]:
    """The ``train-slice-classifier`` run: train on the train volumes' training slices (early stopping on the val
    volumes'), then score val and test patients on their inference slices with the best checkpoint (median)."""
    config = SliceClassifierRunConfig.model_validate(config_dict)
    cohort, labels = read_volume_cohort(config.cohort, config.column, config.labels)
    data = slice_arrays(cohort, config.cohort, config.slices.training(), column=config.column, progress=ctx.progress)
    warn_without_slices(cohort, data.index, ctx.log, config.cohort, "slices.train")
    owner = slice_rows(cohort, data)
    split = cohort["split"].to_numpy()[owner]
    y = cohort[[f"y_{k}" for k in labels]].to_numpy(np.float32)[owner]
    device = torch.device(ctx.device)
    train_rows, val_rows = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    if not len(train_rows) or not len(val_rows):
        raise RadfairInputError(EMPTY_AFTER_FILTER.format(path=config.cohort, step="keeping train and val slices (slices.train)"))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)  # weights init; restored from last.pt on resume
        model = build_classifier(config, len(labels), ctx.log).to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        step = ClassifierStep(model, make_optimizer(model.parameters(), config.optim))
        train = _classifier_batches(data, y, train_rows, config.batch_size, train=True, seed=config.seed, device=device)
        val = _classifier_batches(data, y, val_rows, config.eval_batch_size, train=False, seed=config.seed, device=device)
        ctx.log(f"{config.model} slice classifier: {train.n_samples} train / {val.n_samples} val slices, labels {labels}, "
                f"{sum(p.numel() for p in model.parameters()):,} parameters, device {device}")
        result = fit(step, train, val, config.loop, ctx.run_dir, device=device, progress=ctx.progress, log=ctx.log)
    best = best_checkpoint(ctx.run_dir)
    model.load_state_dict(best["modules"]["model"])
    scored = cohort["split"].isin(("val", "test")).to_numpy()
    infer, rows = inference_slices(cohort, config.cohort, config.slices, data, config.column, ctx.progress)
    warn_without_slices(cohort[scored], infer.index.iloc[rows], ctx.log, config.cohort, "slices.inference")
    slice_scores = score_slices(model, infer, cohort, slice_rows(cohort, infer), rows, labels, config, device)
    table = patient_table(cohort, np.flatnonzero(scored), slice_scores, labels)
    meta = {"run": {"kind": "train-slice-classifier", "model": config.model, "best_epoch": best["epoch"], "labels": labels,
                    "aggregation": AGGREGATION, "column": config.column}}
    write_table(slice_scores, ctx.run_dir / "slice_scores.parquet", meta)
    write_table(table, ctx.run_dir / "scored.parquet", meta)
    write_table(pd.DataFrame(result.history), ctx.run_dir / "history.csv")
    write_json(ctx.run_dir / "metrics.json", _classifier_metrics(table, labels, result, best["epoch"]))
    return dict(TRAIN_SLICE_CLASSIFIER.outputs)


def _classifier_metrics(table: pd.DataFrame, labels: list[str], result, best_epoch: int) -> dict:
    from .classify import _metrics

    return {**_metrics(table, labels, result, best_epoch), "unit": f"patient ({AGGREGATION})"}


TRAIN_SLICE_CLASSIFIER = declare(
    "train-slice-classifier", settings=SliceClassifierRunConfig, function=run_slice_classifier,
    outputs={"scored": "scored.parquet", "slice_scores": "slice_scores.parquet", "history": "history.csv",
             "metrics": "metrics.json", "best_checkpoint": "checkpoints/best.pt"})


__all__ = ["TRAIN_SLICE_CLASSIFIER", "SliceClassifierRunConfig", "aggregate_patients", "build_classifier", "patient_table",
           "run_slice_classifier", "score_slices"]
