"""The ``train-segmenter`` run kind (Study 2, UCSF-PDGM): a tumour U-Net trained on clean volumes, then frozen.

The radfair U-Net with one logit channel, soft Dice + BCE (or L1 on the sigmoid, the paper's code) on the
training slices (``slices.train``; the paper: every slice) (:class:`SegmenterStep`). Outputs
``segmentation.parquet`` (one row per val/test patient, scored on the inference slices ``slices.inference``, the
paper's slices 60-130 whatever the mask): ``dice``, the paper's Dice (appendix "Diagnostic Hyperparameters": "computed
separately for each slice, then averaged across slices per patient"; the mean across patients is the study's),
``n_dice_slices`` (the slices with a defined Dice), ``dice_volume`` (Dice of the stacked slices) with the counts
``intersection, pred_pixels, true_pixels`` it is computed from; ``history.csv``, ``metrics.json``, the best
checkpoint. Per-slice Dice of boolean masks at sigmoid >= 0.5 is :func:`radfair.fairness.dice` under the run's
``empty_slices`` convention (:data:`radfair.fairness.EMPTY_CONVENTIONS`); :func:`dice_from_counts` is the same
formula on summed counts.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..config import StrictModel
from ..errors import EMPTY_AFTER_FILTER, RadfairInputError
from ..execution.kinds import declare
from ..fairness import dice as mask_dice
from ..io import write_json, write_table
from ..models import load_weights
from ..models.mri import build_segmenter
from .inputs import RowView
from .loop import LoopConfig, fit
from .mri_common import best_checkpoint, inference_slices, read_volume_cohort, slice_rows, warn_without_slices
from .steps import OptimConfig, make_optimizer
from .volumes import DownstreamSlices, SegmentationBatches, SliceData, slice_arrays


class SegmenterRunConfig(StrictModel):
    """Everything that determines a trained segmenter. Paper: batch 8, Adam 1e-3, 20 epochs, Dice + L1 (0.5 each)."""

    cohort: str
    column: str = "path"
    widths: list[int] = [64, 128, 256, 512]
    bottleneck: int = 1024
    norm: bool = True  # BatchNorm after every convolution (radfair.models.reconstruction.UNet); records without it: False
    weights: str | None = None  # a local state dict of this U-Net (radfair.models.load_weights) to start from; None: random
    pixel_loss: Literal["bce", "l1"] = "bce"
    dice_weight: float = 0.5
    slices: DownstreamSlices = DownstreamSlices()
    # what a slice whose truth is empty scores (radfair.fairness.dice); the paper is silent. "both_empty_nan": a
    # slice empty in truth and prediction is left out of the patient's mean (neither perfect nor failed), a false
    # positive on it scores 0, so tumour-free slices of the inference range count only through false positives
    empty_slices: Literal["both_empty_nan", "ignore_empty", "empty_is_one"] = "both_empty_nan"
    batch_size: int = 8
    eval_batch_size: int = 32
    seed: int = 0
    optim: OptimConfig = OptimConfig(lr=1e-3, weight_decay=0.0)
    loop: LoopConfig = LoopConfig(epochs=20, patience=5)


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


def segment_slices(step: SegmenterStep, data: SliceData, slices: np.ndarray, batch_size: int, device,
                   empty: str = "both_empty_nan") -> pd.DataFrame:
    """Per-slice counts of the predicted and true masks of the cached slices at positions ``slices``, and each
    slice's Dice (``dice_slice``) under the ``empty`` convention of :func:`radfair.fairness.dice`."""
    step.net.eval()
    batches = SegmentationBatches(RowView(data.images, slices), RowView(data.masks, slices), batch_size, shuffle=False, device=device)
    parts = []
    for batch in batches.epoch(0):
        with torch.autocast(torch.device(device).type, enabled=False):  # scoring in float32 on every device
            pred = step.predict(batch["x"].float())
        true = batch["mask"] > 0.5
        pred_np, true_np = pred[:, 0].cpu().numpy(), true[:, 0].cpu().numpy()
        parts.append(np.stack([(pred_np & true_np).sum((1, 2)), pred_np.sum((1, 2)), true_np.sum((1, 2))], 1))
        parts[-1] = np.concatenate([parts[-1], mask_dice(pred_np, true_np, empty)[:, None]], 1)
    counts = np.concatenate(parts) if parts else np.zeros((0, 4))
    table = data.index.iloc[slices][["image_id", "patient_id", "slice"]].reset_index(drop=True)
    table["intersection"], table["pred_pixels"], table["true_pixels"] = (counts[:, k].astype(np.int64) for k in range(3))
    table["dice_slice"] = counts[:, 3]
    return table


SEGMENTATION_CARRIED = ("image_id", "patient_id", "split", "sex", "age", "age_group")
DICE_RULE = ("dice: mean over the patient's inference slices of per-slice Dice (empty-truth convention {empty}); "
             "dice_volume: Dice of the stacked inference slices")


def segmentation_table(cohort: pd.DataFrame, rows: np.ndarray, slice_counts: pd.DataFrame) -> pd.DataFrame:
    """One row per patient of ``cohort.iloc[rows]`` that has slices, in cohort order.

    ``dice``: the mean of the patient's per-slice Dice (``slice_counts["dice_slice"]``), slices whose Dice is
    undefined (NaN under the convention) left out; NaN when none is defined (the patient then drops out of group
    means, :func:`radfair.fairness.group_dice`). ``n_dice_slices``: the slices averaged; ``n_slices``: the slices
    scored; ``dice_volume``: Dice of the stacked slices from the summed counts ``intersection, pred_pixels,
    true_pixels``. Reconstruction paper, appendix "Diagnostic Hyperparameters"."""
    grouped = slice_counts.groupby("patient_id", sort=False)
    per = pd.DataFrame({"dice": grouped["dice_slice"].mean(), "n_dice_slices": grouped["dice_slice"].count()})
    per = per.join(grouped[["intersection", "pred_pixels", "true_pixels"]].sum())
    per.insert(2, "dice_volume", dice_from_counts(per["intersection"], per["pred_pixels"], per["true_pixels"]))
    per["n_slices"] = grouped.size()
    per = per.reset_index()
    base = cohort.iloc[rows]
    base = base[base["patient_id"].isin(per["patient_id"])]
    keep = [c for c in SEGMENTATION_CARRIED if c in base.columns]
    return base[keep].reset_index(drop=True).merge(per, on="patient_id", how="left")


def _segmenter(config: SegmenterRunConfig, device, log=print) -> SegmenterStep:
    net = build_segmenter(config.widths, config.bottleneck, config.norm)
    if config.weights:
        counts = load_weights(net, config.weights)
        log(f"weights {config.weights}: {counts['matched']} of {counts['model_tensors']} tensors loaded")
    net = net.to(device)
    return SegmenterStep(net, make_optimizer(net.parameters(), config.optim), config.pixel_loss, config.dice_weight)


def run_segmenter(config_dict: dict, ctx) -> dict[str, str]:
    """The ``train-segmenter`` run: train on the train volumes' training slices (validation loss on the val volumes'),
    then per-patient Dice of val and test on their inference slices with the best checkpoint."""
    config = SegmenterRunConfig.model_validate(config_dict)
    cohort, _ = read_volume_cohort(config.cohort, config.column, None)
    data = slice_arrays(cohort, config.cohort, config.slices.training(), column=config.column, progress=ctx.progress)
    warn_without_slices(cohort, data.index, ctx.log, config.cohort, "slices.train")
    owner = slice_rows(cohort, data)
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
        step = _segmenter(config, device, ctx.log)
        ctx.log(f"U-Net segmenter {config.widths}/{config.bottleneck}: {len(train_rows)} train / {len(val_rows)} val slices, "
                f"{sum(p.numel() for p in step.net.parameters()):,} parameters, device {device}")
        result = fit(step, batches(train_rows, True), batches(val_rows, False), config.loop, ctx.run_dir, device=device,
                     progress=ctx.progress, log=ctx.log)
    best = best_checkpoint(ctx.run_dir)
    step.net.load_state_dict(best["modules"]["model"])
    scored = cohort["split"].isin(("val", "test")).to_numpy()
    infer, rows = inference_slices(cohort, config.cohort, config.slices, data, config.column, ctx.progress)
    warn_without_slices(cohort[scored], infer.index.iloc[rows], ctx.log, config.cohort, "slices.inference")
    counts = segment_slices(step, infer, rows, config.eval_batch_size, device, config.empty_slices)
    table = segmentation_table(cohort, np.flatnonzero(scored), counts)
    meta = {"run": {"kind": "train-segmenter", "best_epoch": best["epoch"], "threshold": "sigmoid >= 0.5",
                    "dice": DICE_RULE.format(empty=config.empty_slices), "column": config.column}}
    write_table(table, ctx.run_dir / "segmentation.parquet", meta)
    write_table(pd.DataFrame(result.history), ctx.run_dir / "history.csv")
    write_json(ctx.run_dir / "metrics.json", {
        "best_epoch": best["epoch"], "epochs_run": len(result.history), "stopped_early": result.stopped_early,
        "dice": {s: _mean_or_none(table.loc[table["split"] == s, "dice"]) for s in ("val", "test")}})
    return dict(TRAIN_SEGMENTER.outputs)


def _mean_or_none(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.mean()) if len(values) else None


TRAIN_SEGMENTER = declare(
    "train-segmenter", settings=SegmenterRunConfig, function=run_segmenter,
    outputs={"segmentation": "segmentation.parquet", "history": "history.csv", "metrics": "metrics.json",
             "best_checkpoint": "checkpoints/best.pt"})


__all__ = ["DICE_RULE", "SEGMENTATION_CARRIED", "SegmenterRunConfig", "SegmenterStep", "TRAIN_SEGMENTER", "dice_from_counts", "run_segmenter",
           "segment_slices", "segmentation_table", "soft_dice_loss"]
