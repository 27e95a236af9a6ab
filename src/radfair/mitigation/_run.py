"""The ``train-mitigated-reconstructor`` run kind (reconstruction paper §3.5): fine-tune a finished
``train-reconstructor`` run with a mitigation strategy against a frozen downstream model.

Inputs: ``base_run`` (its ``checkpoints/best.pt`` initialises every module of the reconstructor step; its
reconstructor config must equal this run's), the frozen downstream model named by ``mitigation.task``
(:mod:`._downstream`: ``classifier_run`` for ``classification``, ``segmenter_run`` for ``segmentation``), ``labels``
(columns ``y_<label>`` of the split cohort, a subset of the classifier's labels; none for the segmenter) and
``mitigation.attributes`` (columns of the split cohort; categories coded in sorted order, missing = −1).

Rows: the same reconstruction-training / validation pairs as ``train-reconstructor``
(:func:`radfair.training.reconstruct_run.training_masks`). With ``volumes`` (UCSF-PDGM) these are the kept axial
slices of the volume pairs, from the same slice pipeline (:func:`radfair.training.reconstruct_volumes.volume_training_pairs`),
each with its tumour mask (the segmenter's Dice terms use the slices with tumour, see
:meth:`radfair.mitigation.MitigatedStep.tumour_dice`) and its patient's labels and attributes.

Fine-tuning uses the shared loop, monitoring :data:`VALIDATION_KEY` (``val_objective`` in ``history.csv``:
reconstruction loss + task loss + λ · fairness term on the validation pairs, minimised); ``best.pt`` is the
best epoch's own file and is what reconstructs. Outputs: ``history.csv``, ``checkpoints/best.pt``,
``validation.json`` (:mod:`._validation`) and, for volumes, ``validation_scores.parquet``. The validation images
(or volumes) are reconstructed into ``scratch/``, scored and removed: a sweep keeps one λ of many, and the chosen
run's test images are reconstructed by its scoring run, into that run's scratch (Study 2), or written by a
``reconstruct`` run (:data:`radfair.training.reconstruct_run.RECONSTRUCT`) or with ``reconstruct_splits``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pydantic import field_validator

from ..errors import RadfairInputError
from ..execution.kinds import declare
from ..execution.store import require_record, run_output
from ..io import write_json, write_table
from ..training.checkpoint import load_checkpoint
from ..training.inputs import RowView
from ..training.loop import LoopConfig, fit
from ..training.reconstruct_run import (
    TRAIN_RECONSTRUCTOR,
    ReconstructorRunConfig,
    image_pairs,
    paired_rows,
    reconstruct_best,
    saved_pairs,
    training_masks,
)
from ..training.reconstruct_volumes import SlicePairs, volume_training_pairs
from ..training.reconstruction import build_reconstructor
from ._attach import VALIDATION_KEY, attach_mitigation
from ._config import MitigationConfig
from ._downstream import load_downstream
from ._reweighting import MitigationBatches, subgroup_weights
from ._validation import KEYS, category_codes, image_validation, volume_validation


class MitigatedReconstructorRunConfig(ReconstructorRunConfig):
    """:class:`~radfair.training.reconstruct_run.ReconstructorRunConfig` + the mitigation inputs.

    The frozen downstream model is chosen by ``mitigation.task``: ``classification`` reads ``classifier_run``
    (image ``train-classifier``, or ``train-slice-classifier`` with ``volumes``), ``segmentation`` reads
    ``segmenter_run`` (``train-segmenter``; ``volumes`` only).
    """

    base_run: str
    classifier_run: str | None = None
    segmenter_run: str | None = None
    labels: list[str] = []
    mitigation: MitigationConfig
    loop: LoopConfig = LoopConfig(epochs=10, patience=3, monitor=VALIDATION_KEY)
    reconstruct_splits: tuple[str, ...] = ()  # a sweep's runs write none; its chosen runs' scoring runs reconstruct

    @field_validator("loop")
    @classmethod
    def _monitors_the_objective(cls, loop: LoopConfig) -> LoopConfig:
        if loop.monitor != VALIDATION_KEY or loop.mode != "min":
            raise ValueError(f"a mitigated run selects its best epoch by {VALIDATION_KEY!r} (mode 'min'), "
                             f"not {loop.monitor!r} ({loop.mode})")
        return loop


def group_codes(table: pd.DataFrame, attributes: list[str]) -> tuple[np.ndarray, dict[str, list[str]]]:
    """(N, A) int64 codes of the attributes (sorted categories as strings; missing = −1) and the categories."""
    categories = {a: sorted(table[a].astype("string").dropna().unique().tolist()) for a in attributes}
    codes = [category_codes(table[a], categories[a]) for a in attributes]
    return np.stack(codes, 1) if codes else np.zeros((len(table), 0), np.int64), categories


def _base_weights(config: MitigatedReconstructorRunConfig) -> dict:
    base_record = require_record(config.base_run, {TRAIN_RECONSTRUCTOR.name})
    base_config = ReconstructorRunConfig.model_validate(base_record["config"])
    if base_config.reconstructor != config.reconstructor:
        raise RadfairInputError(f"{config.base_run}: its reconstructor settings differ from this run's; expected the same "
                                f"architecture ({base_config.reconstructor.kind})")
    if base_config.volumes != config.volumes:
        raise RadfairInputError(f"{config.base_run}: its volumes settings ({base_config.volumes}) differ from this run's "
                                f"({config.volumes}); expected the slices the base reconstructor trained on")
    base_best = load_checkpoint(run_output(config.base_run, "best_checkpoint"))
    if base_best is None:
        raise RadfairInputError(f"{config.base_run}: no best checkpoint; train the base reconstructor first")
    return base_best


def _training_pairs(config, pairs: pd.DataFrame, pairs_path: Path, columns: list[str], progress: bool) -> SlicePairs:
    """What fine-tunes: the image pairs, or the kept slices of the volume pairs (with their tumour masks)."""
    if config.volumes is not None:
        return volume_training_pairs(pairs, pairs_path, config.volumes, columns=columns, progress=progress)
    return SlicePairs(pairs, *image_pairs(config, pairs, pairs_path, progress), None)


def run_mitigated_training(config_dict: dict, ctx) -> dict[str, str]:
    """The ``train-mitigated-reconstructor`` run: fine-tune a finished reconstructor with a fairness strategy."""
    config = MitigatedReconstructorRunConfig.model_validate(config_dict)
    base_best = _base_weights(config)
    device = torch.device(ctx.device)
    downstream = load_downstream(config, device)
    classification = config.mitigation.task == "classification"
    unknown = [label for label in config.labels if label not in downstream.labels]
    if classification and (unknown or not config.labels):
        raise RadfairInputError(f"labels: {unknown or 'none'} are not outputs of {config.classifier_run}; "
                                f"expected some of {downstream.labels}")
    label_index = [downstream.labels.index(label) for label in config.labels] if classification else None
    attributes = config.mitigation.attributes
    y_columns = [f"y_{label}" for label in config.labels] if classification else []
    pairs, pairs_path = saved_pairs(paired_rows(config, columns=y_columns + attributes)[0], ctx.run_dir)
    source = _training_pairs(config, pairs, pairs_path, y_columns + attributes, ctx.progress)
    items = source.items
    labels = items[y_columns].to_numpy(np.float32)
    groups, categories = group_codes(items, attributes)
    train_mask, val_mask = training_masks(items)

    def batches(mask, train):
        rows = np.flatnonzero(mask)
        weights = subgroup_weights(groups[rows]) if train and config.mitigation.strategy == "reweighting" else None
        masks = None if source.masks is None else RowView(source.masks, rows)
        return MitigationBatches(RowView(source.degraded, rows), RowView(source.clean, rows), labels[rows], groups[rows],
                                 config.batch_size, shuffle=train, seed=config.seed, device=device, weights=weights, masks=masks)

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        base = build_reconstructor(config.reconstructor, config.seed)
        for name, module in base.modules.items():
            module.load_state_dict(base_best["modules"][name])
            module.to(device)
        if hasattr(base, "to"):
            base.to(device)
        step = attach_mitigation(base, config.mitigation, downstream.model, image_size=downstream.image_size,
                                 scaling=downstream.scaling, label_index=label_index,
                                 group_sizes=[len(categories[a]) for a in attributes])
        unit = "slices" if config.volumes is not None else "pairs"
        ctx.log(f"mitigation {config.mitigation.strategy} (λ={config.mitigation.weight:g}, {config.mitigation.task}) of "
                f"{config.reconstructor.kind} on {config.level}: {int(train_mask.sum())} train / {int(val_mask.sum())} val {unit}")
        result = fit(step, batches(train_mask, True), batches(val_mask, False), config.loop, ctx.run_dir, device=device,
                     progress=ctx.progress, log=ctx.log)
    write_table(pd.DataFrame(result.history), ctx.run_dir / "history.csv")
    # the validation reconstructions are scratch: scored here, then removed (a sweep trains many λ and keeps one; the
    # chosen run's test images are reconstructed by its scoring run, into that run's scratch)
    scratch = ctx.run_dir / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    table = reconstruct_best(step, pairs, batches, config, ctx.run_dir, device, splits=("val",), folder=scratch,
                             progress=ctx.progress)
    if config.volumes is None:
        summary = image_validation(config, downstream, label_index, pairs, pairs_path, table, scratch, device, groups,
                                   ctx.progress)
    else:
        summary = volume_validation(config, scratch, pairs, categories, device, ctx.progress,
                                    scores_path=ctx.run_dir / "validation_scores.parquet")
    shutil.rmtree(scratch, ignore_errors=True)
    best = load_checkpoint(ctx.run_dir / "checkpoints" / "best.pt")
    performance_key, fairness_key = KEYS[config.mitigation.task]
    write_json(ctx.run_dir / "validation.json", {
        **summary, "performance_key": performance_key, "fairness_key": fairness_key, "categories": categories,
        "best_epoch": best["epoch"], "monitor": f"val_{VALIDATION_KEY}", "strategy": config.mitigation.strategy,
        "weight": config.mitigation.weight, "task": config.mitigation.task})
    outputs = dict(TRAIN_MITIGATED_RECONSTRUCTOR.outputs)
    if config.volumes is None:
        del outputs["validation_scores"]
    if config.reconstruct_splits:
        reconstruct_best(step, pairs, batches, config, ctx.run_dir, device, splits=config.reconstruct_splits, progress=ctx.progress)
    else:
        del outputs["reconstructed"]
    return outputs


TRAIN_MITIGATED_RECONSTRUCTOR = declare(
    "train-mitigated-reconstructor", settings=MitigatedReconstructorRunConfig, function=run_mitigated_training,
    outputs={**TRAIN_RECONSTRUCTOR.outputs, "validation": "validation.json", "validation_scores": "validation_scores.parquet"},
    optional={"validation_scores", "reconstructed"})  # volumes only; with reconstruct_splits only


__all__ = ["MitigatedReconstructorRunConfig", "TRAIN_MITIGATED_RECONSTRUCTOR", "group_codes", "run_mitigated_training"]
