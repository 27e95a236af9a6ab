"""The UCSF-PDGM downstream models of Study 2 as run kinds: a slice classifier and a tumour segmenter.

Reconstruction paper §3.3 and appendix "Diagnostic Hyperparameters": both are trained at the slice level on
clean volumes and then frozen; the lead scores degraded and reconstructed volumes with them
(:func:`score_volumes`), with the same preprocessing (:mod:`radfair.training.volumes`) and the best checkpoint.

* ``train-slice-classifier`` (:func:`run_slice_classifier`): MONAI ResNet-50 (``resnet18`` for the demo),
  masked BCE over ``y_high_grade`` and ``y_glioblastoma`` (:class:`radfair.training.steps.ClassifierStep`).
  A patient's score is the **median** of its slices' sigmoid scores (:func:`aggregate_patients`).
  Outputs ``scored.parquet`` (one row per val/test patient, the scored-table contract of
  :func:`radfair.training.classify.scored_table`, ready for ``radfair audit``), ``slice_scores.parquet``,
  ``history.csv``, ``metrics.json`` (patient AUROC), the best checkpoint. No threshold is chosen here.
* ``train-segmenter`` (:func:`run_segmenter`): the radfair U-Net with one logit channel, soft Dice + BCE
  (or L1 on the sigmoid, the paper's code) on slices (:class:`SegmenterStep`). Outputs
  ``segmentation.parquet`` (one row per val/test patient: ``dice`` of the stacked kept slices at
  sigmoid >= 0.5, the counts ``intersection, pred_pixels, true_pixels`` it is computed from, and
  ``dice_slice_mean``, the paper's mean of per-slice Dice), ``history.csv``, ``metrics.json``, the best checkpoint.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..config import StrictModel, parse_config
from ..errors import (
    BAD_VALUES,
    EMPTY_AFTER_FILTER,
    MISSING_COLUMNS,
    RadfairInputError,
    RadfairWarning,
    preview,
)
from ..fairness import dice as mask_dice
from ..io import read_table, write_json, write_table
from ..models import load_weights
from ..models.mri import SliceClassifier, build_segmenter
from .checkpoint import check_device, load_checkpoint
from .classify import predict_scores, read_split_cohort, scored_table
from .inputs import ImageBatches, RowView
from .loop import LoopConfig, fit
from .steps import ClassifierStep, OptimConfig, make_optimizer
from .volumes import SegmentationBatches, SliceData, SliceSettings, check_volume_table, slice_arrays

MRI_LABELS = ["high_grade", "glioblastoma"]


class SliceClassifierRunConfig(StrictModel):
    """Everything that determines a trained slice classifier (hashed into the run id). Paper: batch 16, Adam 1e-4, 20 epochs."""

    cohort: str
    column: str = "path"
    labels: list[str] = MRI_LABELS
    model: Literal["resnet50", "resnet18"] = "resnet50"
    conv1_stride: int = 2
    weights: str | None = None
    slices: SliceSettings = SliceSettings()
    batch_size: int = 16
    eval_batch_size: int = 64
    seed: int = 0
    optim: OptimConfig = OptimConfig(lr=1e-4, weight_decay=0.0)
    loop: LoopConfig = LoopConfig(epochs=20, patience=5)


class SegmenterRunConfig(StrictModel):
    """Everything that determines a trained segmenter. Paper: batch 8, Adam 1e-3, 20 epochs, Dice + L1 (0.5 each)."""

    cohort: str
    column: str = "path"
    widths: list[int] = [64, 128, 256, 512]
    bottleneck: int = 1024
    pixel_loss: Literal["bce", "l1"] = "bce"
    dice_weight: float = 0.5
    slices: SliceSettings = SliceSettings()
    batch_size: int = 8
    eval_batch_size: int = 32
    seed: int = 0
    optim: OptimConfig = OptimConfig(lr=1e-3, weight_decay=0.0)
    loop: LoopConfig = LoopConfig(epochs=20, patience=5)


RUN_CONFIGS = {"train-slice-classifier": SliceClassifierRunConfig, "train-segmenter": SegmenterRunConfig}


def resolve_config(kind: str, **settings) -> SliceClassifierRunConfig | SegmenterRunConfig:
    """Validate settings for ``kind`` and make paths absolute."""
    if kind not in RUN_CONFIGS:
        raise RadfairInputError(f"run kind {kind!r}; expected one of {sorted(RUN_CONFIGS)}")
    config = parse_config(RUN_CONFIGS[kind], settings, f"{kind} settings")
    config.slices.check()
    for option, value in (("batch_size", config.batch_size), ("eval_batch_size", config.eval_batch_size), ("loop.epochs", config.loop.epochs)):
        if value < 1:
            raise RadfairInputError(f"{option}: {value!r} is not valid; expected a positive integer")
    if kind == "train-segmenter" and config.slices.size % 2 ** len(config.widths):
        raise RadfairInputError(f"slices.size: {config.slices.size} is not divisible by 2**{len(config.widths)} (the U-Net's levels)")
    updates = {"cohort": str(Path(config.cohort).resolve())}
    if getattr(config, "weights", None):
        updates["weights"] = str(Path(config.weights).resolve())
    return config.model_copy(update=updates)


def run_spec(kind: str, device: str = "cpu", cpus: int = 0, label: str = "", **settings):
    """A :class:`radfair.execution.RunSpec` for a slice classifier or a segmenter (the cohort is a checksummed input)."""
    from ..execution import RunSpec

    config = resolve_config(kind, **settings)
    return RunSpec(kind, config.model_dump(mode="json"), inputs={"cohort": config.cohort}, cpus=cpus, device=device,
                   label=label or f"{kind}-seed{config.seed}")


# --------------------------------------------------------------------------------------------- data

def _one_volume_per_patient(cohort: pd.DataFrame, path) -> None:
    counts = cohort.groupby("patient_id")["image_id"].nunique()
    several = counts[counts > 1]
    if len(several):
        raise RadfairInputError(BAD_VALUES.format(path=path, column="patient_id", values=preview(several.index),
                                                  expected="expected one volume per patient (UCSF-PDGM: one FLAIR volume each)"))


def read_volume_cohort(path, column: str, labels: list[str] | None) -> tuple[pd.DataFrame, list[str]]:
    """A split UCSF-PDGM cohort with its image column and tumour masks checked."""
    cohort, labels = read_split_cohort(path, labels)
    check_volume_table(cohort, path, column)
    _one_volume_per_patient(cohort, path)
    return cohort.reset_index(drop=True), labels


def _slice_rows(cohort: pd.DataFrame, data: SliceData) -> np.ndarray:
    """For each cached slice, its row in ``cohort`` (by image_id)."""
    return pd.Index(cohort["image_id"].astype(str)).get_indexer(data.index["image_id"].astype(str))


def _warn_without_slices(cohort: pd.DataFrame, data: SliceData, log, where: str) -> None:
    """Volumes with no kept slice cannot be scored: say how many and which (never drop them silently)."""
    absent = cohort["image_id"][~cohort["image_id"].astype(str).isin(set(data.index["image_id"].astype(str)))]
    if len(absent):
        message = (f"{where}: {len(absent)} volume(s) {preview(absent, 3)} have no slice with enough tumour pixels "
                   "(slices.min_tumour_pixels); they get no score")
        log(message)
        warnings.warn(message, RadfairWarning, stacklevel=3)


def aggregate_patients(slices: pd.DataFrame, labels: list[str], how: str = "median") -> pd.DataFrame:
    """One row per patient: ``p_<label>`` = the median (paper) of the patient's slice scores, plus ``n_slices``."""
    columns = [f"p_{k}" for k in labels]
    grouped = slices.groupby("patient_id", sort=False)
    out = grouped[columns].agg(how)
    out["n_slices"] = grouped.size()
    return out.reset_index()


def _patient_table(cohort: pd.DataFrame, rows: np.ndarray, slice_scores: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The scored-table contract, one row per patient of ``cohort.iloc[rows]`` that has slices, in cohort order."""
    patients = aggregate_patients(slice_scores, labels)
    base = cohort.iloc[rows]
    base = base[base["patient_id"].isin(patients["patient_id"])]
    merged = base[["patient_id"]].merge(patients, on="patient_id", how="left")
    table = scored_table(base, labels, merged[[f"p_{k}" for k in labels]].to_numpy(float))
    table["n_slices"] = merged["n_slices"].to_numpy()
    return table


# --------------------------------------------------------------------------------------------- classifier

def _classifier(config: SliceClassifierRunConfig, n_labels: int, log) -> SliceClassifier:
    model = SliceClassifier(config.model, n_labels, conv1_stride=config.conv1_stride)
    if config.weights:
        counts = load_weights(model.backbone, config.weights)
        log(f"weights {config.weights}: {counts['matched']} of {counts['model_tensors']} backbone tensors loaded")
    return model


def _classifier_batches(data: SliceData, y: np.ndarray, slice_rows: np.ndarray, size: int, *, train: bool, seed: int, device):
    device = torch.device(device)
    return ImageBatches(RowView(data.images, slice_rows), torch.from_numpy(y[slice_rows].astype(np.float32)), size,
                        shuffle=train, seed=seed, device=device, channels_last=device.type == "cuda")


def _score_slices(model, data: SliceData, cohort: pd.DataFrame, owner: np.ndarray, slices: np.ndarray, labels, config, device) -> pd.DataFrame:
    y = np.zeros((len(data), len(labels)), np.float32)
    batches = _classifier_batches(data, y, slices, config.eval_batch_size, train=False, seed=config.seed, device=device)
    scores = predict_scores(model, batches, device) if len(slices) else np.zeros((0, len(labels)))
    table = data.index.iloc[slices][["image_id", "patient_id", "slice", "tumour_pixels"]].reset_index(drop=True)
    table["split"] = cohort["split"].to_numpy()[owner[slices]] if "split" in cohort.columns else None
    for j, label in enumerate(labels):
        table[f"p_{label}"] = scores[:, j]
    return table


def run_slice_classifier(config_dict: dict, ctx) -> dict[str, str]:
    """The ``train-slice-classifier`` run: train on train slices (early stopping on val slices), then score val and
    test patients with the best checkpoint (median over slices)."""
    config = SliceClassifierRunConfig.model_validate(config_dict)
    cohort, labels = read_volume_cohort(config.cohort, config.column, config.labels)
    data = slice_arrays(cohort, config.cohort, config.slices, column=config.column, progress=ctx.progress)
    _warn_without_slices(cohort, data, ctx.log, config.cohort)
    owner = _slice_rows(cohort, data)
    split = cohort["split"].to_numpy()[owner]
    y = cohort[[f"y_{k}" for k in labels]].to_numpy(np.float32)[owner]
    device = torch.device(ctx.device)
    train_rows, val_rows = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    if not len(train_rows) or not len(val_rows):
        raise RadfairInputError(EMPTY_AFTER_FILTER.format(path=config.cohort, step="keeping train and val slices with tumour"))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)  # weights init; restored from last.pt on resume
        model = _classifier(config, len(labels), ctx.log).to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        step = ClassifierStep(model, make_optimizer(model.parameters(), config.optim))
        train = _classifier_batches(data, y, train_rows, config.batch_size, train=True, seed=config.seed, device=device)
        val = _classifier_batches(data, y, val_rows, config.eval_batch_size, train=False, seed=config.seed, device=device)
        ctx.log(f"{config.model} slice classifier: {train.n_samples} train / {val.n_samples} val slices, labels {labels}, "
                f"{sum(p.numel() for p in model.parameters()):,} parameters, device {device}")
        result = fit(step, train, val, config.loop, ctx.run_dir, device=device, progress=ctx.progress, log=ctx.log)
    best = _best(ctx.run_dir)
    model.load_state_dict(best["modules"]["model"])
    scored = np.flatnonzero(np.isin(split, ("val", "test")))
    slice_scores = _score_slices(model, data, cohort, owner, scored, labels, config, device)
    rows = np.flatnonzero(cohort["split"].isin(("val", "test")).to_numpy())
    table = _patient_table(cohort, rows, slice_scores, labels)
    meta = {"run": {"kind": "train-slice-classifier", "model": config.model, "best_epoch": best["epoch"], "labels": labels,
                    "aggregation": "median over the patient's kept slices", "column": config.column}}
    write_table(slice_scores, ctx.run_dir / "slice_scores.parquet", meta)
    write_table(table, ctx.run_dir / "scored.parquet", meta)
    write_table(pd.DataFrame(result.history), ctx.run_dir / "history.csv")
    write_json(ctx.run_dir / "metrics.json", _classifier_metrics(table, labels, result, best["epoch"]))
    return {"scored": "scored.parquet", "slice_scores": "slice_scores.parquet", "history": "history.csv",
            "metrics": "metrics.json", "best_checkpoint": "checkpoints/best.pt"}


def _best(run_dir: Path) -> dict:
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    if best is None:
        raise RuntimeError("no epoch produced a finite validation loss; nothing to score (training diverged)")
    return best


def _classifier_metrics(table: pd.DataFrame, labels: list[str], result, best_epoch: int) -> dict:
    from .classify import _metrics

    return {**_metrics(table, labels, result, best_epoch), "unit": "patient (median of slice scores)"}


# --------------------------------------------------------------------------------------------- segmenter

def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice of sigmoid(logits) against ``target`` over the whole batch (empty slices stay defined)."""
    prob = torch.sigmoid(logits.float())
    inter = (prob * target).sum()
    return 1 - (2 * inter + eps) / (prob.sum() + target.sum() + eps)


class SegmenterStep:
    """Tumour U-Net: ``dice_weight`` · soft Dice + (1 − ``dice_weight``) · BCE-with-logits (or L1 on the sigmoid)."""

    def __init__(self, net: torch.nn.Module, optimizer: torch.optim.Optimizer, pixel_loss: str = "bce", dice_weight: float = 0.5):
        self.net = net
        self.modules = {"model": net}
        self.optimizers = {"model": optimizer}
        self.pixel_loss, self.dice_weight = pixel_loss, dice_weight

    def loss(self, batch: dict) -> torch.Tensor:
        logits, target = self.net(batch["x"]).float(), batch["mask"]
        if self.pixel_loss == "bce":
            pixel = F.binary_cross_entropy_with_logits(logits, target)
        else:
            pixel = F.l1_loss(torch.sigmoid(logits), target)
        return self.dice_weight * soft_dice_loss(logits, target) + (1 - self.dice_weight) * pixel

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        optimizer = self.optimizers["model"]
        optimizer.zero_grad(set_to_none=True)
        loss = self.loss(batch)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    def eval_step(self, batch: dict) -> dict[str, torch.Tensor]:
        return {"loss": self.loss(batch)}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Boolean tumour masks: sigmoid(logits) >= 0.5, i.e. logits >= 0."""
        return self.net(x).float() >= 0


def dice_from_counts(intersection, pred_pixels, true_pixels) -> np.ndarray:
    """Dice = 2|P & T| / (|P| + |T|); NaN when both masks are empty (as :func:`radfair.fairness.dice`)."""
    inter, total = np.asarray(intersection, float), np.asarray(pred_pixels, float) + np.asarray(true_pixels, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2 * inter / np.where(total > 0, total, 1), np.nan)


def _segment_slices(step: SegmenterStep, data: SliceData, slices: np.ndarray, batch_size: int, device) -> pd.DataFrame:
    """Per-slice counts of the predicted and true masks, and the slice's Dice."""
    step.net.eval()
    batches = SegmentationBatches(RowView(data.images, slices), RowView(data.masks, slices), batch_size, shuffle=False, device=device)
    parts = []
    for batch in batches.epoch(0):
        with torch.autocast(torch.device(device).type, enabled=False):  # scoring in float32 on every device
            pred = step.predict(batch["x"].float())
        true = batch["mask"] > 0.5
        pred_np, true_np = pred[:, 0].cpu().numpy(), true[:, 0].cpu().numpy()
        parts.append(np.stack([(pred_np & true_np).sum((1, 2)), pred_np.sum((1, 2)), true_np.sum((1, 2))], 1))
        parts[-1] = np.concatenate([parts[-1], mask_dice(pred_np, true_np)[:, None]], 1)
    counts = np.concatenate(parts) if parts else np.zeros((0, 4))
    table = data.index.iloc[slices][["image_id", "patient_id", "slice"]].reset_index(drop=True)
    table["intersection"], table["pred_pixels"], table["true_pixels"] = (counts[:, k].astype(np.int64) for k in range(3))
    table["dice_slice"] = counts[:, 3]
    return table


SEGMENTATION_CARRIED = ("image_id", "patient_id", "split", "sex", "age", "age_group")


def segmentation_table(cohort: pd.DataFrame, rows: np.ndarray, slice_counts: pd.DataFrame) -> pd.DataFrame:
    """One row per patient of ``cohort.iloc[rows]`` with slices: stacked-mask Dice, its counts, mean per-slice Dice."""
    grouped = slice_counts.groupby("patient_id", sort=False)
    per = grouped[["intersection", "pred_pixels", "true_pixels"]].sum()
    per["dice_slice_mean"] = grouped["dice_slice"].mean()  # NaN slices (both empty) skipped, as in the paper's code
    per["n_slices"] = grouped.size()
    per = per.reset_index()
    base = cohort.iloc[rows]
    base = base[base["patient_id"].isin(per["patient_id"])]
    keep = [c for c in SEGMENTATION_CARRIED if c in base.columns]
    table = base[keep].reset_index(drop=True).merge(per, on="patient_id", how="left")
    table.insert(len(keep), "dice", dice_from_counts(table["intersection"], table["pred_pixels"], table["true_pixels"]))
    return table


def _segmenter(config: SegmenterRunConfig, device) -> SegmenterStep:
    net = build_segmenter(config.widths, config.bottleneck).to(device)
    return SegmenterStep(net, make_optimizer(net.parameters(), config.optim), config.pixel_loss, config.dice_weight)


def run_segmenter(config_dict: dict, ctx) -> dict[str, str]:
    """The ``train-segmenter`` run: train on train slices, then per-patient Dice of val and test with the best checkpoint."""
    config = SegmenterRunConfig.model_validate(config_dict)
    cohort, _ = read_volume_cohort(config.cohort, config.column, None)
    data = slice_arrays(cohort, config.cohort, config.slices, column=config.column, progress=ctx.progress)
    _warn_without_slices(cohort, data, ctx.log, config.cohort)
    owner = _slice_rows(cohort, data)
    split = cohort["split"].to_numpy()[owner]
    train_rows, val_rows = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
    if not len(train_rows) or not len(val_rows):
        raise RadfairInputError(EMPTY_AFTER_FILTER.format(path=config.cohort, step="keeping train and val slices"))
    device = torch.device(ctx.device)

    def batches(rows, train):
        return SegmentationBatches(RowView(data.images, rows), RowView(data.masks, rows),
                                   config.batch_size if train else config.eval_batch_size, shuffle=train, seed=config.seed, device=device)

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        step = _segmenter(config, device)
        ctx.log(f"U-Net segmenter {config.widths}/{config.bottleneck}: {len(train_rows)} train / {len(val_rows)} val slices, "
                f"{sum(p.numel() for p in step.net.parameters()):,} parameters, device {device}")
        result = fit(step, batches(train_rows, True), batches(val_rows, False), config.loop, ctx.run_dir, device=device,
                     progress=ctx.progress, log=ctx.log)
    best = _best(ctx.run_dir)
    step.net.load_state_dict(best["modules"]["model"])
    counts = _segment_slices(step, data, np.flatnonzero(np.isin(split, ("val", "test"))), config.eval_batch_size, device)
    table = segmentation_table(cohort, np.flatnonzero(cohort["split"].isin(("val", "test")).to_numpy()), counts)
    meta = {"run": {"kind": "train-segmenter", "best_epoch": best["epoch"], "threshold": "sigmoid >= 0.5",
                    "dice": "stacked kept slices per patient; dice_slice_mean = mean of per-slice Dice", "column": config.column}}
    write_table(table, ctx.run_dir / "segmentation.parquet", meta)
    write_table(pd.DataFrame(result.history), ctx.run_dir / "history.csv")
    write_json(ctx.run_dir / "metrics.json", {
        "best_epoch": best["epoch"], "epochs_run": len(result.history), "stopped_early": result.stopped_early,
        "dice": {s: _mean_or_none(table.loc[table["split"] == s, "dice"]) for s in ("val", "test")}})
    return {"segmentation": "segmentation.parquet", "history": "history.csv", "metrics": "metrics.json",
            "best_checkpoint": "checkpoints/best.pt"}


def _mean_or_none(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.mean()) if len(values) else None


# --------------------------------------------------------------------------------------------- frozen scoring

def _volumes_with_cohort(volumes_path, column: str, cohort_path: str, level: str | None) -> pd.DataFrame:
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


def load_frozen(run_dir: str | Path, device: str = "cpu"):
    """(record, config, model, best) of a finished ``train-slice-classifier`` or ``train-segmenter`` run: the network
    with its best checkpoint's weights, in eval mode, and that checkpoint."""
    from ..execution.store import require_record

    run_dir = Path(run_dir)
    record = require_record(run_dir, set(RUN_CONFIGS))
    config = RUN_CONFIGS[record["kind"]].model_validate(record["config"])
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    if best is None:
        raise RadfairInputError(f"{run_dir}: no best checkpoint yet (status {record.get('status')}); train it first")
    if record["kind"] == "train-slice-classifier":
        model = _classifier(config.model_copy(update={"weights": None}), len(config.labels), print)
    else:
        model = build_segmenter(config.widths, config.bottleneck)
    model.load_state_dict(best["modules"]["model"])
    return record, config, model.to(device).eval(), best


def score_volumes(run_dir: str | Path, volumes_path: str | Path, out: str | Path, *, column: str = "path", level: str | None = None,
                  splits: tuple[str, ...] | None = ("val", "test"), device: str = "cpu", progress: bool = True) -> pd.DataFrame:
    """Score the volumes of any table with a finished MRI run's frozen best checkpoint and the run's preprocessing.

    A ``train-slice-classifier`` run writes the scored-table contract (one row per patient, median of slice
    scores); a ``train-segmenter`` run writes the segmentation table. ``volumes_path`` may be the split cohort
    (``column="path"``), ``degraded.parquet`` (``column="path_degraded"``, one ``level``) or a table of
    reconstructed volumes; columns it lacks come from the run's cohort by ``image_id``. Slices are chosen with
    the true masks, so clean and reconstructed tables score the same slices. ``splits=None`` scores every row.
    """
    check_device(device)
    run_dir = Path(run_dir)
    record, config, model, best = load_frozen(run_dir, device)
    kind = record["kind"]
    table = _volumes_with_cohort(volumes_path, column, config.cohort, level)
    if splits is not None and "split" in table.columns:
        table = table[table["split"].isin(splits)].reset_index(drop=True)
    if table.empty:
        raise RadfairInputError(EMPTY_AFTER_FILTER.format(path=volumes_path, step=f"keeping splits {list(splits or [])}"))
    check_volume_table(table, volumes_path, column)
    _one_volume_per_patient(table, volumes_path)
    data = slice_arrays(table, volumes_path, config.slices, column=column, progress=progress)
    _warn_without_slices(table, data, lambda m: None, str(volumes_path))
    owner = _slice_rows(table, data)
    all_slices, all_rows = np.arange(len(data)), np.arange(len(table))
    meta = {"run": {"run_dir": str(run_dir), "run_id": record["run_id"], "kind": kind, "best_epoch": best["epoch"],
                    "volumes": str(volumes_path), "column": column, "level": level}}
    if kind == "train-slice-classifier":
        labels = config.labels
        for name in (f"y_{k}" for k in labels):  # scoring needs no labels; keep the contract's columns present
            if name not in table.columns:
                table[name] = np.nan
        slice_scores = _score_slices(model, data, table, owner, all_slices, labels, config, device)
        result = _patient_table(table, all_rows, slice_scores, labels)
    else:
        step = SegmenterStep(model, None)
        result = segmentation_table(table, all_rows, _segment_slices(step, data, all_slices, config.eval_batch_size, device))
    write_table(result, out, meta)
    return result


__all__ = ["MRI_LABELS", "SegmenterRunConfig", "SegmenterStep", "SliceClassifierRunConfig", "aggregate_patients", "dice_from_counts", "load_frozen",
           "read_volume_cohort", "resolve_config", "run_segmenter", "run_slice_classifier", "run_spec", "score_volumes",
           "segmentation_table", "soft_dice_loss"]
