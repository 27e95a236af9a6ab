"""The ``train-mitigated-reconstructor`` run kind (reconstruction paper §3.5): fine-tune a finished
``train-reconstructor`` run with a mitigation strategy against a frozen image classifier.

Inputs: ``base_run`` (its ``checkpoints/best.pt`` initialises every module of the reconstructor step; its
reconstructor config must equal this run's), ``classifier_run`` (a finished image ``train-classifier`` run,
loaded from its recorded config and best checkpoint, frozen), ``labels`` (columns ``y_<label>`` of the split
cohort; a subset of the classifier's labels) and ``mitigation.attributes`` (columns of the split cohort;
categories coded in sorted order, missing = −1). Rows: the same reconstruction-training / validation pairs as
``train-reconstructor`` (:func:`radfair.training.reconstruct_run.training_masks`).

Fine-tuning uses the shared loop, monitoring :data:`VALIDATION_KEY` (``val_objective`` in ``history.csv``:
reconstruction loss + task loss + λ · fairness term on the validation pairs, minimised); ``best.pt`` is the
best epoch's own file and is what reconstructs. Outputs: those of ``train-reconstructor`` (``history.csv``,
``checkpoints/best.pt``, ``reconstructed.parquet`` with the same columns) plus ``validation.json``: mean
validation PSNR, mean AUROC over labels and hard worst-case EODD of the classifier on the mitigated validation
reconstructions, at balanced thresholds chosen per label on the classifier's clean-image validation scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pydantic import field_validator

from ..errors import RadfairInputError
from ..execution.store import require_record
from ..fairness import choose_threshold, equalized_odds, weighted_auc
from ..io import read_table, write_json, write_table
from ..training.checkpoint import load_checkpoint
from ..training.classify import load_classifier, predict_scores
from ..training.inputs import ImageBatches, RowView, image_array
from ..training.loop import LoopConfig, fit
from ..training.reconstruct_run import (
    ReconstructorRunConfig,
    paired_rows,
    reconstruct_with_best,
    training_masks,
)
from ..training.reconstruction import build_reconstructor
from ._attach import VALIDATION_KEY, attach_mitigation
from ._config import MitigationConfig
from ._reweighting import MitigationBatches, subgroup_weights


class MitigatedReconstructorRunConfig(ReconstructorRunConfig):
    """:class:`~radfair.training.reconstruct_run.ReconstructorRunConfig` + the mitigation inputs."""

    base_run: str
    classifier_run: str
    labels: list[str]
    mitigation: MitigationConfig
    loop: LoopConfig = LoopConfig(epochs=10, patience=3, monitor=VALIDATION_KEY)

    @field_validator("loop")
    @classmethod
    def _monitors_the_objective(cls, loop: LoopConfig) -> LoopConfig:
        if loop.monitor != VALIDATION_KEY or loop.mode != "min":
            raise ValueError(f"a mitigated run selects its best epoch by {VALIDATION_KEY!r} (mode 'min'), "
                             f"not {loop.monitor!r} ({loop.mode})")
        return loop


def group_codes(table: pd.DataFrame, attributes: list[str]) -> tuple[np.ndarray, dict[str, list[str]]]:
    """(N, A) int64 codes of the attributes (sorted categories as strings; missing = −1) and the categories."""
    codes, categories = [], {}
    for attribute in attributes:
        values = table[attribute].astype("string")
        cats = sorted(values.dropna().unique().tolist())
        codes.append(pd.Categorical(values, categories=cats).codes.astype(np.int64))
        categories[attribute] = cats
    return np.stack(codes, 1) if codes else np.zeros((len(table), 0), np.int64), categories


def hard_eodd(pred: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Worst-case EODD (max over group pairs of |ΔTPR|, |ΔFPR|) per attribute and label, (A, L); NaN where undefined."""
    out = np.full((groups.shape[1], y.shape[1]), np.nan)
    for a in range(groups.shape[1]):
        codes = np.unique(groups[:, a][groups[:, a] >= 0])
        tpr = np.full((len(codes), y.shape[1]), np.nan)
        fpr = np.full_like(tpr, np.nan)
        for i, code in enumerate(codes):
            member = groups[:, a] == code
            for k in range(y.shape[1]):
                pos, neg = member & (y[:, k] == 1), member & (y[:, k] == 0)
                if pos.any():
                    tpr[i, k] = pred[pos, k].mean()
                if neg.any():
                    fpr[i, k] = pred[neg, k].mean()
        if len(codes) >= 2:
            out[a] = equalized_odds(tpr, fpr)["eodd_worst"]
    return out


def _nanmax(values) -> float | None:
    values = np.asarray(values, dtype=float)
    return float(np.nanmax(values)) if np.isfinite(values).any() else None


def _nanmean(values) -> float | None:
    values = np.asarray(values, dtype=float)
    return float(np.nanmean(values)) if np.isfinite(values).any() else None


def _number(value) -> float | None:
    """A float for JSON, None where undefined (NaN)."""
    return None if value is None or not np.isfinite(value) else float(value)


def run_mitigated_training(config_dict: dict, ctx) -> dict[str, str]:
    config = MitigatedReconstructorRunConfig.model_validate(config_dict)
    if config.volumes is not None:
        raise RadfairInputError("train-mitigated-reconstructor takes image pairs (X-ray); NIfTI volumes (`volumes`) are "
                                "not supported yet")
    base_record = require_record(config.base_run, {"train-reconstructor"})
    base_config = ReconstructorRunConfig.model_validate(base_record["config"])
    if base_config.reconstructor != config.reconstructor:
        raise RadfairInputError(f"{config.base_run}: its reconstructor settings differ from this run's; expected the same "
                                f"architecture ({base_config.reconstructor.kind})")
    base_best = load_checkpoint(Path(config.base_run) / "checkpoints" / "best.pt")
    if base_best is None:
        raise RadfairInputError(f"{config.base_run}: no best checkpoint; train the base reconstructor first")
    device = torch.device(ctx.device)
    classifier, classifier_config = load_classifier(config.classifier_run, device)
    if classifier_config.input != "images":
        raise RadfairInputError(f"{config.classifier_run}: a classifier on {classifier_config.input}; expected one trained on images")
    unknown = [label for label in config.labels if label not in classifier_config.labels]
    if unknown:
        raise RadfairInputError(f"{config.classifier_run}: labels {unknown} are not outputs of the classifier; "
                                f"expected some of {classifier_config.labels}")
    label_index = [classifier_config.labels.index(label) for label in config.labels]
    attributes = config.mitigation.attributes
    y_columns = [f"y_{label}" for label in config.labels]
    pairs, _ = paired_rows(config, columns=y_columns + attributes)
    pairs_path = ctx.run_dir / "pairs.parquet"
    if not pairs_path.is_file():
        write_table(pairs, pairs_path)
    pairs = pd.read_parquet(pairs_path)
    labels = pairs[y_columns].to_numpy(np.float32)
    groups, categories = group_codes(pairs, attributes)
    degraded = image_array(pairs, pairs_path, config.image_size, column="path_degraded", progress=ctx.progress)
    clean = image_array(pairs, pairs_path, config.image_size, column="path_clean", progress=ctx.progress)
    train_mask, val_mask = training_masks(pairs)

    def batches(mask, train):
        rows = np.flatnonzero(mask)
        weights = subgroup_weights(groups[rows]) if train and config.mitigation.strategy == "reweighting" else None
        return MitigationBatches(RowView(degraded, rows), RowView(clean, rows), labels[rows], groups[rows], config.batch_size,
                                 shuffle=train, seed=config.seed, device=device, weights=weights)

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        base = build_reconstructor(config.reconstructor, config.seed)
        for name, module in base.modules.items():
            module.load_state_dict(base_best["modules"][name])
            module.to(device)
        if hasattr(base, "to"):
            base.to(device)
        step = attach_mitigation(base, config.mitigation, classifier, image_size=classifier_config.image_size,
                                 label_index=label_index, group_sizes=[len(categories[a]) for a in attributes])
        ctx.log(f"mitigation {config.mitigation.strategy} (λ={config.mitigation.weight:g}) of {config.reconstructor.kind} on "
                f"{config.level}: {int(train_mask.sum())} train / {int(val_mask.sum())} val pairs")
        result = fit(step, batches(train_mask, True), batches(val_mask, False), config.loop, ctx.run_dir, device=device,
                     progress=ctx.progress, log=ctx.log)
    write_table(pd.DataFrame(result.history), ctx.run_dir / "history.csv")
    table = reconstruct_with_best(step, pairs, batches, ctx.run_dir, config.seed)
    best = load_checkpoint(ctx.run_dir / "checkpoints" / "best.pt")
    summary = validation_summary(config, classifier, classifier_config, pairs, pairs_path, table, ctx, device,
                                 label_index, groups, categories)
    write_json(ctx.run_dir / "validation.json", {**summary, "best_epoch": best["epoch"], "monitor": f"val_{VALIDATION_KEY}",
                                                 "strategy": config.mitigation.strategy, "weight": config.mitigation.weight})
    return {"history": "history.csv", "best_checkpoint": "checkpoints/best.pt", "reconstructed": "reconstructed.parquet",
            "validation": "validation.json"}


def validation_summary(config, classifier, classifier_config, pairs, pairs_path, table, ctx, device, label_index,
                       groups, categories) -> dict:
    """Validation PSNR, mean AUROC and hard worst-case EODD of the classifier on the mitigated reconstructions."""
    val_pairs = np.flatnonzero((pairs["split"] == "val").to_numpy())
    val_recon = np.flatnonzero((table["split"] == "val").to_numpy())
    recon_path = ctx.run_dir / "reconstructed.parquet"
    size = classifier_config.image_size
    y = pairs[[f"y_{label}" for label in config.labels]].to_numpy(float)[val_pairs]
    recon_ids = table["image_id"].to_numpy()[val_recon]
    if not np.array_equal(recon_ids, pairs["image_id"].to_numpy()[val_pairs]):
        raise RuntimeError("reconstructed validation rows are not in the order of the pairs")

    def scores(array, rows):
        source = ImageBatches(RowView(array, rows), torch.zeros(len(rows), 0), 64, shuffle=False, device=device)
        return predict_scores(classifier, source, device)[:, label_index]

    recon_images = image_array(read_table(recon_path, "reconstructed table"), recon_path, size, progress=ctx.progress)
    clean_images = image_array(pairs, pairs_path, size, column="path_clean", progress=ctx.progress)
    p_recon, p_clean = scores(recon_images, val_recon), scores(clean_images, val_pairs)
    auroc, thresholds = {}, {}
    for k, label in enumerate(config.labels):
        known = ~np.isnan(y[:, k])
        defined = known.any() and 0 < y[known, k].sum() < known.sum()
        auroc[label] = float(weighted_auc(y[known, k], p_recon[known, k])) if defined else None
        thresholds[label] = _number(choose_threshold(y[:, k], p_clean[:, k], "balanced"))
    tau = np.array([np.nan if thresholds[label] is None else thresholds[label] for label in config.labels])
    g = groups[val_pairs]
    eodd = hard_eodd((p_recon >= tau).astype(float), y, g)
    eodd_clean = hard_eodd((p_clean >= tau).astype(float), y, g)
    defined_auroc = [v for v in auroc.values() if v is not None]
    return {
        "val_psnr": float(table["psnr"].to_numpy()[val_recon].mean()),
        "val_auroc": float(np.mean(defined_auroc)) if defined_auroc else None,
        # λ is chosen on the mean over (attribute, label) cells of the worst-case-over-groups EODD: the maximum over
        # cells saturates at 1 as soon as one rare finding has a single positive in a small validation group
        "val_eodd": _nanmean(eodd),
        "val_eodd_clean": _nanmean(eodd_clean),
        "val_eodd_max": _nanmax(eodd),
        "eodd_convention": "val_eodd: mean over attributes and labels of the worst case over group pairs of "
                           "max(|dTPR|, |dFPR|); val_eodd_max: the maximum over attributes and labels",
        "auroc": auroc, "thresholds": thresholds,
        "eodd": {a: dict(zip(config.labels, map(_number, eodd[i]), strict=True)) for i, a in enumerate(config.mitigation.attributes)},
        "categories": categories, "n_val": int(len(val_pairs)),
    }
